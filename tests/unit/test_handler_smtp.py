"""The smtp handler against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.handlers import resolve_handler
from notifyd.handlers.smtp import SmtpHandler, build_message
from notifyd.tools.devbroker import free_port
from tests.kit.providers import deliver_all
from tests.kit.smtp import SmtpServer, running_smtp_server

SENDER = "Notifyd <no-reply@example.com>"


def note(to: str, **fields: Any) -> Notification:
    return Notification(id=fields.pop("id", "n-1"), channel="email", to=to, **{"subject": "Hi", "body": "Hello", **fields})


def plain_handler(server: SmtpServer, **options: Any) -> SmtpHandler:
    return SmtpHandler(host=server.host, port=server.port, sender=SENDER, starttls=False, timeout=5, **options)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no AUTH) refusing busy@ with 450 and nobody@ with 550."""
    with running_smtp_server() as running:
        yield running


def test_builtin_name_resolves() -> None:
    assert resolve_handler("smtp") is SmtpHandler


def test_accepted_with_html_alternative(server: SmtpServer) -> None:
    handler = plain_handler(server)
    outcome = deliver_all(handler, note("ana@example.org", subject="Your code", body="Code: 42", html="<b>Code: 42</b>"))
    assert outcome == [None]
    [received] = server.wait_for(1)
    assert received.recipients == ("ana@example.org",) and received.sender == "no-reply@example.com"
    message = received.message
    assert message["Subject"] == "Your code" and message["To"] == "ana@example.org"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Code: 42"
    assert message.get_body(("html",)).get_content().strip() == "<b>Code: 42</b>"


def test_plain_text_only_and_stable_message_id() -> None:
    first = build_message(note("a@example.org"), sender=SENDER)
    again = build_message(note("a@example.org"), sender=SENDER)
    assert first.get_content_type() == "text/plain"
    assert first["Message-ID"] == again["Message-ID"] and first["Message-ID"].endswith("@example.com>")


def test_450_is_retryable_and_550_permanent(server: SmtpServer) -> None:
    handler = plain_handler(server)
    busy, unknown, fine = deliver_all(
        handler, note("busy@example.org", id="a"), note("nobody@example.org", id="b"), note("ok@example.org", id="c")
    )
    assert isinstance(busy, RetryableError) and "450" in str(busy) and "busy@example.org" in str(busy)
    assert isinstance(unknown, PermanentError) and "550" in str(unknown) and "No such user" in str(unknown)
    assert fine is None
    assert [r.recipients for r in server.wait_for(1)] == [("ok@example.org",)]


def test_a_message_over_the_servers_size_is_permanent() -> None:
    # RFC 1870: the server refuses MAIL FROM ... SIZE=n over its fixed maximum with 552, for good.
    with running_smtp_server(data_size_limit=2000) as server:
        [outcome] = deliver_all(plain_handler(server), note("a@example.org", body="x" * 5000))
    assert isinstance(outcome, PermanentError) and "552" in str(outcome)


def test_bad_address_is_permanent_without_connecting() -> None:
    handler = SmtpHandler(host="127.0.0.1", port=free_port(), sender=SENDER, starttls=False, timeout=2)
    for to in ("not-an-address", "a@example.org\r\nBcc: x@example.org"):
        [outcome] = deliver_all(handler, note(to))
        assert isinstance(outcome, PermanentError)


@pytest.mark.parametrize("to", ["a@b@example.org",  # its mailbox parses as '<>': aiosmtplib raises ValueError
                                "a@[", "a@[ "])  # the stdlib's header parser raises AttributeError, UnboundLocalError
def test_an_address_no_server_will_be_sent_is_permanent(server: SmtpServer, to: str) -> None:
    [outcome] = deliver_all(plain_handler(server), note(to))
    assert isinstance(outcome, PermanentError) and "address" in str(outcome)
    assert not server.received


def test_unreachable_server_is_retryable() -> None:
    handler = SmtpHandler(host="127.0.0.1", port=free_port(), sender=SENDER, starttls=False, timeout=2)
    [outcome] = deliver_all(handler, note("a@example.org"))
    assert isinstance(outcome, RetryableError)


def test_connections_reused_and_bounded(server: SmtpServer) -> None:
    handler = plain_handler(server, max_connections=2)
    outcomes = deliver_all(handler, *(note(f"u{i}@example.org", id=str(i)) for i in range(12)))
    assert outcomes == [None] * 12
    received = server.wait_for(12)
    assert len({r.peer for r in received}) <= 2


def test_reconnects_when_the_idle_connection_was_closed() -> None:
    port = free_port()
    handler = SmtpHandler(host="127.0.0.1", port=port, sender=SENDER, starttls=False, timeout=5)

    async def run() -> None:
        with running_smtp_server(port=port) as first:
            await handler.send(note("a@example.org", id="1"))
            first.wait_for(1)
        with running_smtp_server(port=port) as second:
            await handler.send(note("b@example.org", id="2"))
            assert [r.recipients for r in second.wait_for(1)] == [("b@example.org",)]
        await handler.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ssl.SSLContext, Path]]:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    yield server_context, ca_file


def test_starttls_and_login(certificates: tuple[ssl.SSLContext, Path]) -> None:
    server_context, ca_file = certificates
    with running_smtp_server(tls_context=server_context, users={"mailer": "s3cret-pass"}) as server:
        options = {"host": server.host, "port": server.port, "sender": SENDER, "ca_file": str(ca_file), "timeout": 5}
        good = SmtpHandler(username="mailer", password="s3cret-pass", **options)
        assert deliver_all(good, note("a@example.org")) == [None]
        [received] = server.wait_for(1)
        assert received.tls and received.login == "mailer"

        [refused] = deliver_all(SmtpHandler(username="mailer", password="wrong-pass", **options), note("b@example.org"))
        assert isinstance(refused, RetryableError) and "login" in str(refused)
        assert "wrong-pass" not in str(refused)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd sees STARTTLS only
def test_implicit_tls(certificates: tuple[ssl.SSLContext, Path]) -> None:
    server_context, ca_file = certificates
    with running_smtp_server(implicit_tls_context=server_context, users={"mailer": "pw-1234"}) as server:
        handler = SmtpHandler(host=server.host, port=server.port, sender=SENDER, use_tls=True, starttls=False,
                              ca_file=str(ca_file), username="mailer", password="pw-1234", timeout=5)
        assert deliver_all(handler, note("a@example.org")) == [None]
        [received] = server.wait_for(1)
        assert received.tls and received.login == "mailer"


def test_untrusted_certificate_is_retryable(certificates: tuple[ssl.SSLContext, Path]) -> None:
    server_context, _ = certificates
    with running_smtp_server(tls_context=server_context) as server:
        handler = SmtpHandler(host=server.host, port=server.port, sender=SENDER, timeout=5)
        [outcome] = deliver_all(handler, note("a@example.org"))
        assert isinstance(outcome, RetryableError) and not server.received


def test_check_options(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    options = {"host": "h", "sender": "nobody", "use_tls": True, "starttls": True, "ca_file": str(not_pem)}
    problems = dict(SmtpHandler.check_options(options, channel={}))
    assert set(problems) == {("starttls",), ("sender",), ("ca_file",)}
    missing = {"host": "h", "sender": "a@b.c", "ca_file": str(tmp_path / "none.pem")}
    assert [m for _, m in SmtpHandler.check_options(missing, channel={})] == [
        f"file {str(tmp_path / 'none.pem')!r} does not exist"
    ]
