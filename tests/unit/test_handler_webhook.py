"""The webhook handler against a local receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.config.validation import semantic_problems
from notifyd.handlers.webhook import Signer, WebhookHandler, iso_timestamp, signature
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.providers import WebhookReceiver, deliver_once

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-signing-key-for-tests!").decode()


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ProviderServer]]:
    stand_in = WebhookReceiver(SECRET)
    with ProviderServer(stand_in) as server:
        yield stand_in, server


def event(**fields: Any) -> Notification:
    return Notification(**{"id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "channel": "hooks", "subject": "Order shipped",
                           "body": "Your order is on its way", "data": {"order": 42}, **fields})


def test_posts_signed_json_the_reference_library_verifies(receiver: tuple[WebhookReceiver, ProviderServer]) -> None:
    stand_in, server = receiver
    deliver_once(WebhookHandler(url=f"{server.url}/hooks/orders", secret=SECRET, headers={"x-tenant": "acme"}), event())
    [request] = stand_in.delivered
    assert request.headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert request.headers["x-tenant"] == "acme"
    body = Webhook(SECRET).verify(request.body, request.headers)
    assert body["type"] == "notification"
    assert body["data"]["body"] == "Your order is on its way" and body["data"]["data"] == {"order": 42}


def test_signature_matches_the_spec_example() -> None:
    # The worked example of the Standard Webhooks specification.
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    payload = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signature(key, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, payload=payload) == expected


def test_a_signer_reused_for_many_messages_signs_each_as_if_alone() -> None:
    # The signer copies a keyed HMAC state per message: nothing of one message may leak into the next.
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signer = Signer(key)
    messages = [(f"msg_{n}", 1614265330 + n, b'{"n": %d}' % n) for n in range(5)]
    for msg_id, timestamp, payload in messages:
        assert signer.sign(msg_id=msg_id, timestamp=timestamp, payload=payload) == signature(
            key, msg_id=msg_id, timestamp=timestamp, payload=payload)
    assert signer.sign(msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330,
                       payload=b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_payload_timestamp_is_iso_8601_utc() -> None:
    assert iso_timestamp(1614265330) == "2021-02-25T15:02:10Z"
    assert iso_timestamp(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_client_errors_are_permanent(receiver: tuple[WebhookReceiver, ProviderServer], status: int) -> None:
    stand_in, server = receiver
    stand_in.outcomes["/hook"] = Reply(status, "endpoint disabled")
    with pytest.raises(PermanentError, match=f"HTTP {status}: endpoint disabled"):
        deliver_once(WebhookHandler(url=f"{server.url}/hook", secret=SECRET), event())


@pytest.mark.parametrize(("status", "retry_after"), [(408, None), (429, 30.0), (500, None), (503, 2.0)])
def test_timeouts_throttling_and_server_errors_are_retryable(
    receiver: tuple[WebhookReceiver, ProviderServer], status: int, retry_after: float | None
) -> None:
    stand_in, server = receiver
    headers = {"Retry-After": str(int(retry_after))} if retry_after else {}
    stand_in.outcomes["/hook"] = Reply(status, "busy", headers)
    with pytest.raises(RetryableError) as caught:
        deliver_once(WebhookHandler(url=f"{server.url}/hook", secret=SECRET), event())
    assert caught.value.retry_after == retry_after


def test_a_secret_the_receiver_echoes_is_hidden_even_where_the_text_is_cut(
    receiver: tuple[WebhookReceiver, ProviderServer],
) -> None:
    # The error keeps 200 characters of the answer; a secret straddling that cut must not leave its head behind.
    stand_in, server = receiver
    token = "Bearer s3cr3t-api-token-0123456789"
    stand_in.outcomes["/hooks/echo"] = Reply(400, "x" * 170 + f" authorization: {token}")
    handler = WebhookHandler(url=f"{server.url}/hooks/echo", secret=SECRET, headers={"authorization": token})
    with pytest.raises(PermanentError) as caught:
        deliver_once(handler, event())
    assert "s3cr3t" not in str(caught.value) and "Bearer" not in str(caught.value)


def test_a_wrong_secret_is_refused_by_the_receiver(receiver: tuple[WebhookReceiver, ProviderServer]) -> None:
    _, server = receiver
    other = "whsec_" + base64.b64encode(b"another-key").decode()
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        deliver_once(WebhookHandler(url=f"{server.url}/hook", secret=other), event())
    assert other not in str(caught.value)


def test_to_overrides_the_url_only_when_allowed(receiver: tuple[WebhookReceiver, ProviderServer]) -> None:
    stand_in, server = receiver
    handler = WebhookHandler(url=f"{server.url}/default", secret=SECRET, allow_url_override=True)
    deliver_once(handler, event(to=f"{server.url}/custom"))
    deliver_once(WebhookHandler(url=f"{server.url}/default", secret=SECRET), event(to=f"{server.url}/custom"))
    assert [r.path for r in stand_in.delivered] == ["/custom", "/default"]
    with pytest.raises(PermanentError, match="not an http"):
        deliver_once(WebhookHandler(url=f"{server.url}/d", allow_url_override=True), event(to="ftp://x"))


def test_validate_config_rejects_a_malformed_secret() -> None:
    channel = {"topics": ["t"], "handler": "webhook", "options": {"url": "https://example.com", "secret": "whsec_%%"}}
    [(path, message, _)] = list(semantic_problems({"hooks": channel}, None))
    assert path == ("channels", "hooks", "options", "secret") and "whsec_" in message


def test_without_a_fixed_url_each_notification_names_its_own(receiver: tuple[WebhookReceiver, ProviderServer]) -> None:
    stand_in, server = receiver
    deliver_once(WebhookHandler(secret=SECRET, allow_url_override=True), event(to=f"{server.url}/users/7"))
    assert [r.path for r in stand_in.delivered] == ["/users/7"]
    with pytest.raises(PermanentError, match="no URL"):
        deliver_once(WebhookHandler(secret=SECRET, allow_url_override=True), event())


def test_validate_config_wants_a_url_unless_overrides_are_allowed() -> None:
    def problems(options: dict[str, Any]) -> list[str]:
        channel = {"topics": ["t"], "handler": "webhook", "options": options}
        return [message for _, message, _ in semantic_problems({"hooks": channel}, None)]

    assert problems({}) == ["'url' is a required property"]
    assert problems({"allow_url_override": True}) == []
