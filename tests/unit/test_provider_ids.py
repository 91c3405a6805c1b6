"""Handlers return the provider's message id, for the delivery ledger and outcome events (real stand-in servers)."""

from __future__ import annotations

import asyncio

from notifyd.handlers.answer import HttpAnswer
from tests.kit.httpserver import ProviderServer
from tests.kit.providers import TwilioStandIn
from tests.unit.test_handler_fcm import fcm, push  # noqa: F401  (the fixture)
from tests.unit.test_handler_twilio import ACCOUNT, TOKEN, make, sms


def send_once(handler, notification):
    async def run():
        try:
            return await handler.send(notification)
        finally:
            await handler.close()

    return asyncio.run(run())


def test_twilio_returns_the_message_sid() -> None:
    with ProviderServer(TwilioStandIn(ACCOUNT, ACCOUNT, TOKEN)) as server:
        assert send_once(make(server), sms()).startswith("SM")


def test_fcm_returns_the_message_name(fcm) -> None:
    assert send_once(fcm.handler(), push()).startswith("projects/")


def test_a_body_without_the_field_gives_none() -> None:
    answer = HttpAnswer(200, "OK", {}, b"not json")
    assert answer.json_field("sid") is None
    assert HttpAnswer(200, "OK", {}, b'{"sid": 7}').json_field("sid") is None
    assert HttpAnswer(200, "OK", {}, b'["sid"]').json_field("sid") is None
