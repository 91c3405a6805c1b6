"""How the HTTP handlers' requests travel: aiohttp for HTTP/1.1 providers, httpx for HTTP/2 ones."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.handlers.answer import Headers, HttpAnswer
from notifyd.handlers.apns import ApnsHandler
from notifyd.handlers.fcm import FcmHandler
from notifyd.handlers.http import HttpHandler, encode_body
from notifyd.handlers.slack import SlackHandler
from notifyd.handlers.transport import AiohttpTransport, HttpxTransport, NoAnswerError, Transport
from notifyd.handlers.twilio import TwilioHandler
from notifyd.handlers.webhook import WebhookHandler, payload
from tests.kit.httpserver import ProviderServer, Reply, Request
from tests.kit.providers import SlackStandIn, TwilioStandIn, WebhookReceiver, basic_auth, deliver_all, deliver_once

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-signing-key-for-tests!").decode()
ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "auth-token-very-secret-1234"
HOOK_SECRET = "stand-in-secret-token"


def note(n: int = 1, **fields: str) -> Notification:
    return Notification(**{"id": f"n-{n}", "channel": "c", "to": "+15005550006", "subject": "Hi",
                           "body": "Your code is 123456", **fields})


def closed_port() -> int:
    with socket.socket() as sock:  # free a moment ago, closed now: connecting is refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deliver_in_turn(handler: HttpHandler, *notifications: Notification) -> None:
    """Send notifications one after another through the same client, then close it."""

    async def run() -> None:
        try:
            for notification in notifications:
                await handler.send(notification)
        finally:
            await handler.close()

    asyncio.run(run())


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer(lambda request: Reply(200, "ok")) as running:
        yield running


def http1_handlers(url: str) -> list[HttpHandler]:
    return [WebhookHandler(url=f"{url}/hook"), SlackHandler(webhook_url=f"{url}/services/T/B/x"),
            TwilioHandler(account_sid=ACCOUNT, auth_token=TOKEN, base_url=url, **{"from": "+15005550000"})]


def test_webhook_slack_and_twilio_send_http_1_1_through_aiohttp(server: ProviderServer) -> None:
    for handler in http1_handlers(server.url):
        deliver_once(handler, note())
    assert [r.http_version for r in server.requests] == ["1.1"] * 3
    assert all("aiohttp" in r.headers["user-agent"] for r in server.requests)


def test_push_handlers_stay_on_httpx_with_http2() -> None:
    assert ApnsHandler.http2 and FcmHandler.http2
    assert not any(h.http2 for h in (WebhookHandler, SlackHandler, TwilioHandler))


def test_webhook_body_is_exactly_the_signed_bytes_as_plain_json() -> None:
    stand_in = WebhookReceiver(SECRET)
    with ProviderServer(stand_in) as server:
        deliver_once(WebhookHandler(url=f"{server.url}/hook", secret=SECRET), note())
    [request] = stand_in.delivered  # the receiver verified the signature over these bytes
    timestamp = int(request.headers["webhook-timestamp"])
    assert request.body == payload(note(), event_type="notification", timestamp=timestamp)
    assert request.headers["content-type"] == "application/json"


def test_slack_json_is_encoded_as_httpx_encoded_it() -> None:
    stand_in = SlackStandIn()
    with ProviderServer(stand_in) as server:
        deliver_once(SlackHandler(webhook_url=server.url + stand_in.hook_path, blocks=False), note(body="Grüße"))
    [request] = server.requests
    assert request.body == '{"text":"*Hi*\\nGrüße"}'.encode()
    assert request.headers["content-type"] == "application/json"


def test_twilio_basic_auth_encodes_credentials_as_utf8() -> None:
    token = "tökén-secret-1234"  # aiohttp's own default, latin-1, would send other bytes
    stand_in = TwilioStandIn(ACCOUNT, ACCOUNT, token)
    with ProviderServer(stand_in) as server:
        deliver_once(TwilioHandler(account_sid=ACCOUNT, auth_token=token, base_url=server.url,
                                   **{"from": "+15005550000"}), note())
    assert len(stand_in.delivered) == 1
    assert server.requests[0].headers["authorization"] == basic_auth(ACCOUNT, token)
    assert server.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_cookies_a_provider_sets_are_not_sent_with_the_next_notification() -> None:
    def set_cookie(request: Request) -> Reply:
        return Reply(200, "ok", {"Set-Cookie": f"session=from-{request.headers['webhook-id']}; Path=/"})

    with ProviderServer(set_cookie) as server:
        # A host name: aiohttp's default jar would keep no cookies of an IP address anyway.
        deliver_in_turn(WebhookHandler(url=f"http://localhost:{server.port}/hook"), note(1), note(2))
    assert [r.headers["webhook-id"] for r in server.requests] == ["n-1", "n-2"]
    assert "cookie" not in server.requests[1].headers


@dataclass
class Rendezvous:
    """Holds every request until ``expected`` have arrived; after ``deadline`` seconds answers 503."""

    expected: int
    deadline: float = 10.0
    arrived: int = 0
    everyone: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, request: Request) -> Reply:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.everyone.set()
        try:
            await asyncio.wait_for(self.everyone.wait(), self.deadline)
        except TimeoutError:
            return Reply(503, f"only {self.arrived} of {self.expected} requests arrived")
        return Reply(200, "ok")


def test_nothing_caps_requests_in_flight_below_the_channels_concurrency() -> None:
    # Above 100, the default pool cap of both aiohttp and httpx.
    stand_in = Rendezvous(expected=150)
    with ProviderServer(stand_in) as server:
        handler = WebhookHandler(url=f"{server.url}/hook", timeout=30)
        outcomes = deliver_all(handler, *(note(n) for n in range(stand_in.expected)))
    assert outcomes == [None] * stand_in.expected
    assert stand_in.arrived == stand_in.expected


def secret_handlers(url: str) -> list[tuple[HttpHandler, str]]:
    """Handlers aimed at ``url``, each with the secret its errors must never show."""
    return [(SlackHandler(webhook_url=f"{url}/services/T1/B1/{HOOK_SECRET}"), HOOK_SECRET),
            (TwilioHandler(account_sid=ACCOUNT, auth_token=TOKEN, base_url=url, **{"from": "X"}), TOKEN)]


@pytest.mark.parametrize("which", [0, 1], ids=["slack", "twilio"])
def test_connection_refused_is_retryable_and_shows_no_secret(which: int) -> None:
    handler, secret = secret_handlers(f"http://127.0.0.1:{closed_port()}")[which]
    with pytest.raises(RetryableError, match="(?i)connect") as caught:
        deliver_once(handler, note())
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999"])
@pytest.mark.parametrize("which", [0, 1], ids=["slack", "twilio"])
def test_a_malformed_url_is_permanent_and_shows_no_secret(url: str, which: int) -> None:
    handler, secret = secret_handlers(url)[which]
    with pytest.raises(PermanentError, match="invalid URL") as caught:
        deliver_once(handler, note())
    assert secret not in str(caught.value)


@pytest.mark.parametrize("make", [lambda: AiohttpTransport(timeout=0.3),
                                  lambda: HttpxTransport(timeout=0.3, options={})], ids=["aiohttp", "httpx"])
def test_both_clients_name_a_timeout_a_timeout(make: Callable[[], Transport]) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)

        async def run() -> None:
            transport = make()
            try:
                await transport.send("POST", f"http://127.0.0.1:{silent.getsockname()[1]}/", content=b"{}",
                                     headers={})
            finally:
                await transport.close()

        with pytest.raises(NoAnswerError, match="(?i)timeout"):
            asyncio.run(run())


def test_json_and_form_bodies_are_encoded_as_httpx_encodes_them() -> None:
    assert encode_body(json={"a": "é", "b": [1, 2]}, content=None, data=None) == (
        '{"a":"é","b":[1,2]}'.encode(), "application/json")
    assert encode_body(json=None, content=None, data={"To": "+1 555", "Body": "a&b"}) == (
        b"To=%2B1+555&Body=a%26b", "application/x-www-form-urlencoded")
    assert encode_body(json=None, content=b"raw", data=None) == (b"raw", None)


def test_an_answer_reads_the_same_whichever_client_fetched_it() -> None:
    headers = Headers([("Retry-After", "5"), ("Content-Type", "text/plain; charset=latin-1"), ("X-A", "1"),
                       ("x-a", "2")])
    answer = HttpAnswer(429, "Too Many Requests", headers, "trop tôt".encode("latin-1"))
    assert answer.headers.get("retry-after") == "5" and answer.headers["X-A"] == "1, 2"
    assert answer.text == "trop tôt" and not answer.is_success
    with pytest.raises(ValueError):
        answer.json()


class ForwardProxy:
    """A socket that answers every request 200 and keeps each request line (a proxy sees absolute URLs)."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.request_lines.append(head.split(b"\r\n", 1)[0].decode())
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


def test_http_proxy_from_the_environment_is_used_unless_no_proxy_exempts_the_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ForwardProxy()

    async def run() -> list[str | None]:
        server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "exempt.example")
        handler = WebhookHandler(url="http://hooks.example.test/incoming")
        try:
            await handler.send(note())
            transport = handler.transport
            assert isinstance(transport, AiohttpTransport)
            return [transport.proxy_for("http://exempt.example/x"), transport.proxy_for("https://hooks.example.test/")]
        finally:
            await handler.close()
            server.close()

    exempt, https = asyncio.run(run())
    assert proxy.request_lines == ["POST http://hooks.example.test/incoming HTTP/1.1"]
    assert exempt is None and https is None  # no HTTPS_PROXY set: https goes direct
