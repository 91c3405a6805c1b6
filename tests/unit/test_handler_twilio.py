"""The twilio handler against a local server answering like the Twilio Messages API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.config.validation import semantic_problems
from notifyd.handlers.twilio import TwilioHandler
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.providers import TwilioStandIn, basic_auth, deliver_once, twilio_error

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "auth-token-very-secret-1234"


@pytest.fixture
def twilio() -> Iterator[tuple[TwilioStandIn, ProviderServer]]:
    stand_in = TwilioStandIn(ACCOUNT, ACCOUNT, TOKEN)
    with ProviderServer(stand_in) as server:
        yield stand_in, server


def sms(to: str | None = "+15005550006", body: str | None = "Your code is 123456") -> Notification:
    return Notification(id="n-1", channel="sms", to=to, body=body)


def make(server: ProviderServer, **options: Any) -> TwilioHandler:
    base = {"account_sid": ACCOUNT, "auth_token": TOKEN, "from": "+15005550000", "base_url": server.url}
    return TwilioHandler(**{**base, **options})


def test_sends_the_body_as_a_form_with_basic_auth(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    stand_in, server = twilio
    deliver_once(make(server), sms())
    assert stand_in.delivered == [{"To": "+15005550006", "Body": "Your code is 123456", "From": "+15005550000"}]
    assert server.requests[0].headers["authorization"] == basic_auth(ACCOUNT, TOKEN)
    assert server.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_messaging_service_and_api_key_auth(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    stand_in, server = twilio
    stand_in.username = "SK0123456789abcdef0123456789abcdef"
    handler = TwilioHandler(
        account_sid=ACCOUNT, auth_token=TOKEN, api_key_sid=stand_in.username,
        messaging_service_sid="MG0123456789abcdef0123456789abcdef", base_url=server.url,
    )
    deliver_once(handler, sms())
    assert stand_in.delivered[0]["MessagingServiceSid"] == "MG0123456789abcdef0123456789abcdef"
    assert "From" not in stand_in.delivered[0]


@pytest.mark.parametrize(
    ("code", "message"),
    [(21211, "The 'To' number +1555 is not a valid phone number."),
     (21610, "Attempt to send to unsubscribed recipient")],
)
def test_invalid_or_unsubscribed_number_is_permanent(
    twilio: tuple[TwilioStandIn, ProviderServer], code: int, message: str
) -> None:
    stand_in, server = twilio
    stand_in.outcomes["+1555"] = twilio_error(code, message)
    with pytest.raises(PermanentError, match=f"Twilio error {code}: ") as caught:
        deliver_once(make(server), sms(to="+1555"))
    assert message in str(caught.value)


def test_rate_limit_is_retryable_with_retry_after(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    stand_in, server = twilio
    stand_in.outcomes["+15005550009"] = twilio_error(20429, "Too Many Requests", 429, {"Retry-After": "7"})
    with pytest.raises(RetryableError, match="Twilio error 20429") as caught:
        deliver_once(make(server), sms(to="+15005550009"))
    assert caught.value.retry_after == 7


def test_a_full_sender_queue_is_throttling_not_permanent(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    # 21611 comes with HTTP 400, but the sender's queue drains: https://www.twilio.com/docs/api/errors/21611
    stand_in, server = twilio
    stand_in.outcomes["+15005550009"] = twilio_error(
        21611, "This 'From' number has exceeded the maximum number of queued messages")
    with pytest.raises(RetryableError, match="Twilio error 21611") as caught:
        deliver_once(make(server), sms(to="+15005550009"))
    assert caught.value.throttled


@pytest.mark.parametrize(("status", "error"), [(400, PermanentError), (503, RetryableError)])
def test_a_garbled_error_code_is_decided_by_the_http_status(twilio: tuple[TwilioStandIn, ProviderServer],
                                                            status: int, error: type[Exception]) -> None:
    stand_in, server = twilio
    stand_in.outcomes["+15005550009"] = Reply(status, {"code": [21611], "message": "odd"})
    with pytest.raises(error, match=f"HTTP {status}"):
        deliver_once(make(server), sms(to="+15005550009"))


def test_server_error_is_retryable(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    stand_in, server = twilio
    stand_in.outcomes["+15005550009"] = Reply(503, "<html>Service Unavailable</html>")
    with pytest.raises(RetryableError, match="HTTP 503"):
        deliver_once(make(server), sms(to="+15005550009"))


def test_wrong_credentials_are_permanent_and_never_shown(twilio: tuple[TwilioStandIn, ProviderServer]) -> None:
    _, server = twilio
    with pytest.raises(PermanentError, match="Twilio error 20003") as caught:
        deliver_once(make(server, auth_token="wrong-token-also-secret"), sms())
    assert "wrong-token-also-secret" not in str(caught.value)


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = TwilioHandler(account_sid=ACCOUNT, auth_token=TOKEN, base_url=f"http://127.0.0.1:{port}", **{"from": "X"})
    with pytest.raises(RetryableError, match="(?i)connect") as caught:
        deliver_once(handler, sms())
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("notification", [sms(to=None), sms(body=None)])
def test_missing_recipient_or_body_is_permanent(notification: Notification) -> None:
    handler = TwilioHandler(account_sid=ACCOUNT, auth_token=TOKEN, base_url="http://127.0.0.1:9", **{"from": "X"})
    with pytest.raises(PermanentError):
        deliver_once(handler, notification)


def test_options_need_a_sender() -> None:
    channel = {"topics": ["t"], "handler": "twilio", "options": {"account_sid": ACCOUNT, "auth_token": TOKEN}}
    problems = list(semantic_problems({"sms": channel}, None))
    assert problems and problems[0][0][:3] == ("channels", "sms", "options")
