"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it receives.

Recipients whose address starts with a key of ``refusals`` are refused at RCPT with that
reply: by default ``busy@...`` gets 450 (try later) and ``nobody@...`` gets 550 (no such
user). ``tls_context`` offers STARTTLS (and requires it), ``implicit_tls_context`` speaks
TLS from the first byte (like port 465); ``users`` turns on AUTH.

Use the ``smtp_server`` fixture (import it into the test module) or ``running_smtp_server``.
"""

from __future__ import annotations

import email.policy
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifyd.tools.devbroker import free_port
from tests.kit.wait import wait_until

DEFAULT_REFUSALS = {
    "busy@": "450 4.2.1 Mailbox busy, try again later",
    "nobody@": "550 5.1.1 No such user here",
}


@dataclass(frozen=True)
class Received:
    """One accepted message."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    peer: Any  # the client's (host, port): one per connection
    login: str | None
    tls: bool


@dataclass
class _Recorder:
    refusals: Mapping[str, str]
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        for prefix, reply in self.refusals.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.original_content or envelope.content)
        login = session.auth_data if session.authenticated else None
        received = Received(
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            message=message,
            peer=session.peer,
            login=login,
            tls=server.transport.get_extra_info("sslcontext") is not None,
        )
        with self.lock:
            self.received.append(received)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A running server: its address and what it has received."""

    def __init__(self, controller: Controller, recorder: _Recorder) -> None:
        self.host = controller.hostname
        self.port = controller.port
        self._recorder = recorder

    @property
    def received(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """At least ``count`` received messages, or AssertionError after ``timeout`` seconds."""
        wait_until(lambda: len(self.received) >= count, timeout=timeout, what=f"{count} message(s) at the SMTP server")
        return self.received


def _authenticator(users: Mapping[str, str]) -> Any:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    return authenticate


@contextmanager
def running_smtp_server(
    *,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls_context: ssl.SSLContext | None = None,
    users: Mapping[str, str] | None = None,
    refusals: Mapping[str, str] = DEFAULT_REFUSALS,
    port: int | None = None,
    data_size_limit: int | None = None,
) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 for the duration of the block (``data_size_limit``: its SIZE, bytes)."""
    recorder = _Recorder(refusals=refusals)
    parameters: dict[str, Any] = {}
    if data_size_limit is not None:
        parameters.update(data_size_limit=data_size_limit)
    if tls_context is not None:
        parameters.update(tls_context=tls_context, require_starttls=True)
    if users is not None:
        parameters.update(authenticator=_authenticator(users), auth_required=True)
        # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS connection is encrypted all along.
        parameters.update(auth_require_tls=tls_context is not None)
    if implicit_tls_context is not None:
        parameters.update(ssl_context=implicit_tls_context, server_hostname="localhost")
    controller = Controller(recorder, hostname="127.0.0.1", port=port or free_port(), **parameters)
    controller.start()
    try:
        yield SmtpServer(controller, recorder)
    finally:
        controller.stop()

