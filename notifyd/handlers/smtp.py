"""The ``smtp`` handler: email through an SMTP server (STARTTLS or implicit TLS, AUTH).

Replies about this message (a refused recipient, refused content) decide between
permanent (5xx) and retryable (4xx), and so does a 552 to MAIL FROM, which refuses the
message's declared SIZE. Failures of the channel's own setup — connecting, TLS, login,
any other refusal of the sender — are retryable whatever their code: the next message
would fail the same way, so dead-lettering each one would lose a whole outage's mail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, ClassVar

import aiosmtplib
from aiosmtplib.email import extract_recipients, parse_address

from notifyd.api import Handler, Notification, OptionProblem, PermanentError, RetryableError

DEFAULT_SUBMISSION_PORT = 587
DEFAULT_TLS_PORT = 465
MESSAGE_TOO_LARGE = 552


class SmtpHandler(Handler):
    """Sends each notification as one email to ``notification.to``."""

    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "sender"],
        "dependentRequired": {"username": ["password"], "password": ["username"]},
        "properties": {
            "host": {"type": "string", "minLength": 1, "description": "SMTP server host name."},
            "port": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "description": "Default: 465 with use_tls, else 587.",
            },
            "sender": {
                "type": "string",
                "minLength": 3,
                "description": "From address, e.g. 'Example <no-reply@example.com>'; also the envelope sender.",
            },
            "username": {"type": "string", "minLength": 1, "description": "AUTH user. Default: no login."},
            "password": {"type": "string", "description": "AUTH password; use a ${VAR} reference."},
            "starttls": {
                "type": "boolean",
                "default": True,
                "description": "Require STARTTLS on a plain connection (ignored with use_tls). Default: true.",
            },
            "use_tls": {
                "type": "boolean",
                "default": False,
                "description": "Implicit TLS from the first byte (port 465). Default: false.",
            },
            "validate_certs": {
                "type": "boolean",
                "default": True,
                "description": "Verify the server certificate and host name. Default: true.",
            },
            "ca_file": {
                "type": "string",
                "minLength": 1,
                "description": "PEM bundle of CAs to trust instead of the system's. Default: system CAs.",
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 30,
                "description": "Seconds for connecting and for each SMTP command. Default: 30.",
            },
            "max_connections": {
                "type": "integer",
                "minimum": 1,
                "maximum": 64,
                "default": 2,
                "description": "Connections kept open per process; SMTP sends one message at a time on each. Default: 2.",
            },
        },
    }

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        use_tls: bool = False,
        validate_certs: bool = True,
        ca_file: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 2,
    ) -> None:
        super().__init__(host=host, sender=sender, port=port, username=username, starttls=starttls, use_tls=use_tls)
        self._sender = sender
        self._client_options: dict[str, Any] = {
            "hostname": host,
            "port": port or (DEFAULT_TLS_PORT if use_tls else DEFAULT_SUBMISSION_PORT),
            "username": username,
            "password": password,
            "use_tls": use_tls,
            "start_tls": starttls and not use_tls,
            "validate_certs": validate_certs,
            "cert_bundle": ca_file,
            "timeout": timeout,
        }
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[aiosmtplib.SMTP] = []

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, channel: Mapping[str, Any]) -> Iterable[OptionProblem]:
        if options.get("use_tls") and options.get("starttls"):
            yield ("starttls",), "starttls and use_tls exclude each other; use_tls already encrypts from the start"
        if "@" not in options["sender"]:
            yield ("sender",), f"{options['sender']!r} is not an email address"
        ca_file = options.get("ca_file")
        if ca_file is not None:
            yield from _ca_file_problems(ca_file)

    async def send(self, notification: Notification) -> None:
        message = build_message(notification, sender=self._sender)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        async with self._slots:
            idle = self._idle.pop() if self._idle else None
            try:
                client = await self._deliver(idle, message)
            except aiosmtplib.SMTPException as exc:
                raise classify(exc, recipient=notification.to or "") from None
            except OSError as exc:
                raise RetryableError(f"SMTP connection to {self._where()} failed: {exc}") from None
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _quit(client)

    async def _deliver(self, client: aiosmtplib.SMTP | None, message: EmailMessage) -> aiosmtplib.SMTP:
        if client is not None:
            try:
                await client.send_message(message)
                return client
            except aiosmtplib.SMTPServerDisconnected:
                client.close()  # the server closed a connection that sat idle: a fresh one gets one try
            except BaseException:
                client.close()  # after a refusal the session state is uncertain: never reuse it
                raise
        client = aiosmtplib.SMTP(**self._client_options)
        try:
            await client.connect()
            await client.send_message(message)
        except BaseException:
            client.close()
            raise
        return client

    def _where(self) -> str:
        return f"{self._client_options['hostname']}:{self._client_options['port']}"


def build_message(notification: Notification, *, sender: str) -> EmailMessage:
    """The email for ``notification``: plain text, plus an HTML alternative when given."""
    to = notification.to
    if not to or "@" not in to or any(c in to for c in "\r\n"):
        raise PermanentError(f"{to!r} is not an email address")
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = to
        message["Subject"] = " ".join((notification.subject or "").split())
        for address in extract_recipients(message):  # what send_message would put on RCPT TO
            parse_address(address)
    # The stdlib's header parser raises more than ValueError on some malformed addresses
    # ("a@[": AttributeError); parsing is pure, so a retry would fail the same way.
    except Exception as exc:
        raise PermanentError(f"cannot address the email to {to!r}: {type(exc).__name__}: {exc}") from None
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = _message_id(notification.id, sender)
    message.set_content(notification.body or "")
    if notification.html:
        message.add_alternative(notification.html, subtype="html")
    return message


# Words of the 4xx replies relays and SES give a sender over its rate; no reply code says it alone.
THROTTLING_WORDS = ("throttl", "rate limit", "sending rate", "too many messages", "too many connections")


def classify(exc: aiosmtplib.SMTPException, *, recipient: str) -> Exception:
    """``PermanentError`` or ``RetryableError`` for a failed send (pure: reads the exception only)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return _by_code(refused.code, f"SMTP {refused.code} refused recipient {recipient}: {refused.message}")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code(exc.code, f"SMTP {exc.code} refused the message: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return RetryableError(f"SMTP login failed ({exc.code}): {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused) and exc.code == MESSAGE_TOO_LARGE:
        # MAIL FROM carries SIZE= when the server offers it; 552 then refuses this message's size (RFC 1870).
        return PermanentError(f"SMTP {exc.code} refused the message's size: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"SMTP server replied {exc.code}: {exc.message}"
        return RetryableError(message, throttled=is_throttling_reply(exc.code, message))
    return RetryableError(f"SMTP {type(exc).__name__}: {exc}")


def _by_code(code: int, message: str) -> Exception:
    if 500 <= code < 600:
        return PermanentError(message)
    return RetryableError(message, throttled=is_throttling_reply(code, message))


def is_throttling_reply(code: int, message: str) -> bool:
    """A 4xx reply that says the sender goes too fast (SES: "454 Throttling failure: Maximum sending rate exceeded")."""
    text = message.lower()
    return 400 <= code < 500 and any(word in text for word in THROTTLING_WORDS)


def _message_id(notification_id: str, sender: str) -> str:
    # Stable across redeliveries, so a duplicate (at-least-once) can be recognised by the reader.
    digest = hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2].strip(" >") or "notifyd.invalid"
    return f"<{digest}@{domain}>"


def _ca_file_problems(ca_file: str) -> Iterable[OptionProblem]:
    if not os.path.isfile(ca_file):
        yield ("ca_file",), f"file {ca_file!r} does not exist"
        return
    try:
        ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        yield ("ca_file",), f"{ca_file!r} is not a PEM CA bundle: {exc}"


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await asyncio.wait_for(client.quit(), timeout=5)
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        client.close()
