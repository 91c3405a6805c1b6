"""The fcm handler against a local server answering like FCM HTTP v1 and Google's token endpoint."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.config.validation import semantic_problems
from notifyd.handlers.fcm import FcmHandler
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.providers import FcmStandIn, fcm_error, make_service_account

DEVICE = "fcm-registration-token-1"


@dataclass
class Fcm:
    stand_in: FcmStandIn
    server: ProviderServer
    account: dict[str, str]

    def handler(self, **options: Any) -> FcmHandler:
        base = {"service_account_json": json.dumps(self.account), "base_url": self.server.url}
        return FcmHandler(**{**base, **options})


@pytest.fixture
def fcm() -> Iterator[Fcm]:
    stand_in = FcmStandIn(public_key=None)
    with ProviderServer(stand_in) as server:
        account, stand_in.public_key = make_service_account(f"{server.url}/token")
        yield Fcm(stand_in, server, account)


def push(to: str | None = DEVICE, **fields: Any) -> Notification:
    return Notification(**{"id": "n-1", "channel": "android", "to": to, "subject": "Package delivered",
                           "body": "Left at the front door", "data": {"order": 42, "kind": "delivery"}, **fields})


def deliver(handler: FcmHandler, *notifications: Notification) -> list[BaseException | None]:
    """Send one after another on one loop, as the channel process would; the outcome of each."""

    async def run() -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        try:
            for notification in notifications:
                try:
                    await handler.send(notification)
                    outcomes.append(None)
                except Exception as exc:
                    outcomes.append(exc)
            return outcomes
        finally:
            await handler.close()

    return asyncio.run(run())


def deliver_one(handler: FcmHandler, notification: Notification) -> None:
    [outcome] = deliver(handler, notification)
    if outcome is not None:
        raise outcome


def test_sends_a_v1_message_with_string_data_and_android_options(fcm: Fcm) -> None:
    handler = fcm.handler(android_priority="high", ttl=600, collapse_key="orders")
    deliver_one(handler, push())
    assert fcm.stand_in.delivered == [{
        "token": DEVICE,
        "notification": {"title": "Package delivered", "body": "Left at the front door"},
        "data": {"order": "42", "kind": "delivery"},
        "android": {"priority": "high", "ttl": "600s", "collapse_key": "orders"},
    }]


def test_the_access_token_is_cached_until_it_expires(fcm: Fcm) -> None:
    assert deliver(fcm.handler(), push(), push(), push()) == [None] * 3
    assert len(fcm.stand_in.tokens_issued) == 1
    # A token within google-auth's refresh margin (a few minutes) counts as expired.
    fcm.stand_in.token_lifetime = 60
    assert deliver(fcm.handler(), push(), push()) == [None] * 2
    assert len(fcm.stand_in.tokens_issued) == 3


def test_a_refused_access_token_is_retryable_and_replaced(fcm: Fcm) -> None:
    handler = fcm.handler()

    async def run() -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        for step in range(2):
            if step == 1:
                fcm.stand_in.tokens_issued.append("rotated-elsewhere")
            for _ in range(2):
                try:
                    await handler.send(push())
                    outcomes.append(None)
                except RetryableError as exc:
                    outcomes.append(exc)
        await handler.close()
        return outcomes

    outcomes = asyncio.run(run())
    assert outcomes[:2] == [None, None] and isinstance(outcomes[2], RetryableError) and outcomes[3] is None
    assert "UNAUTHENTICATED" in str(outcomes[2])


@pytest.mark.parametrize(
    "reply",
    [fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
     fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
               "INVALID_ARGUMENT"),
     fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")],
)
def test_dead_or_invalid_tokens_are_permanent(fcm: Fcm, reply: Reply) -> None:
    fcm.stand_in.outcomes[DEVICE] = reply
    code = reply.body["error"]["details"][0]["errorCode"]  # type: ignore[index]
    with pytest.raises(PermanentError, match=f"FCM {code} \\(HTTP {reply.status}\\)"):
        deliver_one(fcm.handler(), push())


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [(fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"), None),
     (fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"), None),
     (Reply(429, fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED").body,
            {"Retry-After": "60"}), 60.0)],
)
def test_unavailable_internal_and_quota_are_retryable(fcm: Fcm, reply: Reply, retry_after: float | None) -> None:
    fcm.stand_in.outcomes[DEVICE] = reply
    with pytest.raises(RetryableError) as caught:
        deliver_one(fcm.handler(), push())
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(("status", "error"), [(400, PermanentError), (503, RetryableError)])
def test_a_garbled_error_code_is_decided_by_the_http_status(fcm: Fcm, status: int, error: type[Exception]) -> None:
    garbled = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": ["UNREGISTERED"]}
    fcm.stand_in.outcomes[DEVICE] = Reply(status, {"error": {"status": {"x": 1}, "details": [garbled]}})
    with pytest.raises(error, match=f"HTTP {status}"):
        deliver_one(fcm.handler(), push())


def test_a_key_the_token_endpoint_refuses_is_permanent_and_never_shown(fcm: Fcm) -> None:
    impostor, _ = make_service_account(fcm.account["token_uri"])
    with pytest.raises(PermanentError, match="OAuth2 token refused") as caught:
        deliver_one(fcm.handler(service_account_json=json.dumps(impostor)), push())
    assert "PRIVATE KEY" not in str(caught.value) and fcm.stand_in.delivered == []


def test_an_unreachable_token_endpoint_is_retryable(fcm: Fcm) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    account = {**fcm.account, "token_uri": f"http://127.0.0.1:{port}/token"}
    with pytest.raises(RetryableError, match="unreachable"):
        deliver_one(fcm.handler(service_account_json=json.dumps(account)), push())


def test_no_registration_token_is_permanent(fcm: Fcm) -> None:
    with pytest.raises(PermanentError, match="no registration token"):
        deliver_one(fcm.handler(), push(to=None))


def test_validate_config_checks_the_service_account(tmp_path: Path, fcm: Fcm) -> None:
    broken = tmp_path / "sa.json"
    broken.write_text('{"type": "service_account"')
    no_project = {k: v for k, v in fcm.account.items() if k != "project_id"}
    channels = {
        "missing": {"service_account_file": str(tmp_path / "nope.json")},
        "broken": {"service_account_file": str(broken)},
        "no_project": {"service_account_json": json.dumps(no_project)},
        "fine": {"service_account_json": json.dumps(fcm.account)},
    }
    config = {name: {"topics": [name], "handler": "fcm", "options": o} for name, o in channels.items()}
    problems = {path[1]: (path[-1], message) for path, message, _ in semantic_problems(config, None)}
    assert set(problems) == {"missing", "broken", "no_project"}
    assert problems["missing"][1].startswith("cannot read the service account")
    assert problems["broken"][1].startswith("not a usable service-account JSON")
    assert problems["no_project"][0] == "project_id"
