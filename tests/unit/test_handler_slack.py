"""The slack handler against a local server answering like a Slack incoming webhook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.handlers.slack import SlackHandler
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.providers import SlackStandIn, deliver_once


@pytest.fixture
def slack() -> Iterator[tuple[SlackStandIn, ProviderServer]]:
    stand_in = SlackStandIn()
    with ProviderServer(stand_in) as server:
        yield stand_in, server


def note(subject: str | None = "Deploy finished", body: str | None = "api v2.3 is *live*") -> Notification:
    return Notification(id="n-1", channel="chat", subject=subject, body=body)


def test_posts_header_and_section_blocks(slack: tuple[SlackStandIn, ProviderServer]) -> None:
    stand_in, server = slack
    deliver_once(SlackHandler(webhook_url=server.url + stand_in.hook_path), note())
    [payload] = stand_in.delivered
    assert payload["text"] == "*Deploy finished*\napi v2.3 is *live*"
    assert payload["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy finished"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "api v2.3 is *live*"}},
    ]


def test_plain_text_without_blocks(slack: tuple[SlackStandIn, ProviderServer]) -> None:
    stand_in, server = slack
    deliver_once(SlackHandler(webhook_url=server.url + stand_in.hook_path, blocks=False), note(subject=None))
    assert stand_in.delivered == [{"text": "api v2.3 is *live*"}]


@pytest.mark.parametrize(
    ("status", "word"), [(400, "invalid_payload"), (403, "action_prohibited"), (404, "channel_not_found"),
                         (410, "channel_is_archived")],
)
def test_slack_refusals_are_permanent_and_hide_the_url(
    slack: tuple[SlackStandIn, ProviderServer], status: int, word: str
) -> None:
    stand_in, server = slack
    stand_in.outcomes[stand_in.hook_path] = Reply(status, word)
    with pytest.raises(PermanentError, match=f"HTTP {status}: {word}") as caught:
        deliver_once(SlackHandler(webhook_url=server.url + stand_in.hook_path), note())
    assert "stand-in-secret-token" not in str(caught.value)


def test_the_url_an_answer_echoes_is_hidden_even_where_the_text_is_cut(
    slack: tuple[SlackStandIn, ProviderServer],
) -> None:
    # A proxy's error page naming the URL, cut at 200 characters inside it.
    stand_in, server = slack
    url = server.url + stand_in.hook_path
    stand_in.outcomes[stand_in.hook_path] = Reply(403, "x" * (200 - len(url) + 8) + f" denied: {url}")
    with pytest.raises(PermanentError) as caught:
        deliver_once(SlackHandler(webhook_url=url), note())
    assert "/services/T0001/B0001" not in str(caught.value)


def test_unknown_hook_is_permanent(slack: tuple[SlackStandIn, ProviderServer]) -> None:
    _, server = slack
    with pytest.raises(PermanentError, match="no_service"):
        deliver_once(SlackHandler(webhook_url=server.url + "/services/T1/B1/revoked"), note())


def test_rate_limit_is_retryable_with_retry_after(slack: tuple[SlackStandIn, ProviderServer]) -> None:
    stand_in, server = slack
    stand_in.outcomes[stand_in.hook_path] = Reply(429, "rate_limited", {"Retry-After": "12"})
    with pytest.raises(RetryableError) as caught:
        deliver_once(SlackHandler(webhook_url=server.url + stand_in.hook_path), note())
    assert caught.value.retry_after == 12


def test_nothing_to_say_is_permanent() -> None:
    with pytest.raises(PermanentError, match="neither subject nor body"):
        deliver_once(SlackHandler(webhook_url="http://127.0.0.1:9/x"), note(subject=None, body=None))
