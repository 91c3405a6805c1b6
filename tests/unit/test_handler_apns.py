"""The apns handler against a local HTTP/2 + TLS server answering like the APNs provider API."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.config.validation import semantic_problems
from notifyd.handlers.apns import TOKEN_LIFETIME, ApnsHandler, ProviderToken, load_signing_key
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.providers import ApnsStandIn, apns_error, deliver_all, make_apns_key

DEVICE = "a" * 64
TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.app"


@dataclass
class Apns:
    stand_in: ApnsStandIn
    server: ProviderServer
    key_pem: str
    ca: trustme.CA
    ca_file: Path

    def handler(self, **options: Any) -> ApnsHandler:
        base = {"team_id": TEAM, "key_id": KEY_ID, "topic": TOPIC, "private_key": self.key_pem,
                "base_url": self.server.url, "ca_file": str(self.ca_file)}
        return ApnsHandler(**{**base, **options})


@pytest.fixture
def apns(tmp_path: Path) -> Iterator[Apns]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key_pem, public_key = make_apns_key()
    stand_in = ApnsStandIn(public_key, TEAM, KEY_ID, TOPIC)
    with ProviderServer(stand_in, tls=ca, tmp_dir=tmp_path) as server:
        yield Apns(stand_in, server, key_pem, ca, ca_file)


def push(to: str = DEVICE, **fields: Any) -> Notification:
    return Notification(**{"id": "n-1", "channel": "ios", "to": to, "subject": "New message",
                           "body": "Ada: see you at 6", "data": {"thread": "t-9"}, **fields})


def deliver_one(handler: ApnsHandler, notification: Notification) -> None:
    [outcome] = deliver_all(handler, notification)
    if outcome is not None:
        raise outcome


def test_pushes_over_http2_with_the_apns_headers(apns: Apns) -> None:
    handler = apns.handler(expiration=3600, sound="default", priority=5)
    deliver_one(handler, push(data={"thread": "t-9", "collapse_id": "chat-t-9"}))
    [request] = apns.stand_in.delivered
    assert request.http_version == "2" and request.path == f"/3/device/{DEVICE}"
    assert request.headers["apns-topic"] == TOPIC
    assert request.headers["apns-id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "notifyd:n-1"))
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "5"
    assert request.headers["apns-collapse-id"] == "chat-t-9"
    assert abs(int(request.headers["apns-expiration"]) - (time.time() + 3600)) < 30
    assert request.json() == {"aps": {"alert": {"title": "New message", "body": "Ada: see you at 6"},
                                      "sound": "default"}, "thread": "t-9"}
    token = request.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token)["kid"] == KEY_ID


def test_background_push_carries_content_available_only(apns: Apns) -> None:
    deliver_one(apns.handler(push_type="background", priority=5), push())
    [request] = apns.stand_in.delivered
    assert request.json() == {"aps": {"content-available": 1}, "thread": "t-9"}
    assert request.headers["apns-push-type"] == "background"


@pytest.mark.parametrize(
    "reply", [apns_error(410, "Unregistered", timestamp=1700000000000), apns_error(400, "BadDeviceToken"),
              apns_error(413, "PayloadTooLarge")],
)
def test_dead_or_bad_device_tokens_are_permanent(apns: Apns, reply: Reply) -> None:
    apns.stand_in.outcomes[DEVICE] = reply
    reason = json.loads(reply.encoded()[0])["reason"]
    with pytest.raises(PermanentError, match=f"HTTP {reply.status} {reason}"):
        deliver_one(apns.handler(), push())


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [(apns_error(429, "TooManyRequests"), None), (apns_error(500, "InternalServerError"), None),
     (apns_error(503, "ServiceUnavailable", headers={"Retry-After": "4"}), 4.0)],
)
def test_throttling_and_server_errors_are_retryable(apns: Apns, reply: Reply, retry_after: float | None) -> None:
    apns.stand_in.outcomes[DEVICE] = reply
    with pytest.raises(RetryableError) as caught:
        deliver_one(apns.handler(), push())
    assert caught.value.retry_after == retry_after
    # A 429 is about one device token: retried for that notification, the channel not slowed.
    assert caught.value.throttled is False


def test_concurrent_pushes_share_one_connection_and_one_token(apns: Apns) -> None:
    devices = [f"{i:064x}" for i in range(1, 21)]
    outcomes = deliver_all(apns.handler(), *(push(to=d, id=f"n-{d}") for d in devices))
    assert outcomes == [None] * 20
    assert len(apns.stand_in.delivered) == 20
    assert len({r.client_port for r in apns.stand_in.delivered}) == 1
    assert len({r.headers["authorization"] for r in apns.stand_in.delivered}) == 1


def test_a_token_signed_with_another_key_is_permanent_and_the_key_never_shown(apns: Apns) -> None:
    other_pem, _ = make_apns_key()
    with pytest.raises(PermanentError, match="HTTP 403 InvalidProviderToken") as caught:
        deliver_one(apns.handler(private_key=other_pem), push())
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize("reply", [apns_error(403, "ExpiredProviderToken"), apns_error(400, "IdleTimeout")])
def test_an_expired_provider_token_or_an_idle_timeout_is_retryable(apns: Apns, reply: Reply) -> None:
    apns.stand_in.outcomes[DEVICE] = reply
    with pytest.raises(RetryableError, match=json.loads(reply.encoded()[0])["reason"]):
        deliver_one(apns.handler(), push())


def test_untrusted_server_certificate_is_not_accepted(apns: Apns) -> None:
    handler = apns.handler(ca_file=None)  # the system CAs never signed the stand-in's certificate
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        deliver_one(handler, push())


@pytest.mark.parametrize("to", [None, "not-hex", "ab/../x"])
def test_a_recipient_that_is_not_a_device_token_is_permanent(apns: Apns, to: str | None) -> None:
    with pytest.raises(PermanentError, match="not a device token"):
        deliver_one(apns.handler(), push(to=to))
    assert apns.server.requests == []


def test_provider_token_is_reused_then_renewed_and_discarded_on_expiry() -> None:
    key_pem, public_key = make_apns_key()
    token = ProviderToken(key=load_signing_key(key_pem), key_id=KEY_ID, team_id=TEAM)
    first = token.current(now=1_000_000)
    assert token.current(now=1_000_000 + TOKEN_LIFETIME - 1) == first
    renewed = token.current(now=1_000_000 + TOKEN_LIFETIME)
    assert renewed != first
    assert jwt.decode(renewed, public_key, algorithms=["ES256"], options={"verify_iat": False})["iss"] == TEAM
    token.discard(renewed)
    newest = token.current(now=1_000_000 + TOKEN_LIFETIME + 1)
    assert newest != renewed
    # The other requests that carried the expired token come back expired too: no renewal each.
    token.discard(renewed)
    assert token.current(now=1_000_000 + TOKEN_LIFETIME + 2) == newest


def test_validate_config_checks_the_key_and_the_priority(tmp_path: Path) -> None:
    bad_key = tmp_path / "AuthKey.p8"
    bad_key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    options = {"team_id": TEAM, "key_id": KEY_ID, "topic": TOPIC, "private_key_file": str(bad_key),
               "ca_file": str(tmp_path / "missing.pem"), "push_type": "background"}
    channel = {"topics": ["t"], "handler": "apns", "options": options}
    problems = {path[-1]: message for path, message, _ in semantic_problems({"ios": channel}, None)}
    assert set(problems) == {"private_key_file", "ca_file", "priority"}
    assert "not an APNs auth key" in problems["private_key_file"]


def test_a_new_connection_replaces_one_the_server_closed(apns: Apns, tmp_path: Path) -> None:
    handler = apns.handler()
    restarted = ApnsStandIn(apns.stand_in.public_key, TEAM, KEY_ID, TOPIC)

    async def run() -> None:
        await handler.send(push(id="before"))
        # The provider goes away (a restart, a GOAWAY); stopped from a thread so that this loop
        # keeps serving the client side of the connection while the server closes it.
        await asyncio.to_thread(apns.server.__exit__, None, None, None)
        with pytest.raises(RetryableError):
            await handler.send(push(id="while-down"))
        with ProviderServer(restarted, tls=apns.ca, tmp_dir=tmp_path, port=apns.server.port):
            await handler.send(push(id="after"))  # back again: the same handler reconnects
            await handler.close()

    asyncio.run(run())
    assert len(apns.stand_in.delivered) == 1 and len(restarted.delivered) == 1
