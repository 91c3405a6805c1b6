"""The HTTP handlers' shared error mapping: statuses, Retry-After, transport failures."""

from __future__ import annotations

import asyncio
import email.utils
import socket

import pytest

from notifyd.api import Notification, RetryableError
from notifyd.handlers.http import is_retryable_status, parse_retry_after
from notifyd.handlers.webhook import WebhookHandler


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (404, False), (408, True),
                                                   (410, False), (425, True), (429, True), (500, True),
                                                   (502, True), (503, True)])
def test_which_statuses_are_worth_retrying(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0
    for unreadable in (None, "", "soon", "-5", "1.5e3", "\u00b2"):  # str.isdigit() holds for '²', float() refuses it
        assert parse_retry_after(unreadable, now=now) is None


def test_retry_after_in_all_three_http_date_formats() -> None:
    # RFC 9110 5.6.7: a recipient MUST accept IMF-fixdate, the obsolete RFC 850 form and asctime, all GMT.
    now = 784111777.0 - 30  # 30 s before Sun, 06 Nov 1994 08:49:37 GMT
    for value in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"):
        assert parse_retry_after(value, now=now) == 30, value


def test_a_server_that_never_answers_is_retryable_after_the_client_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        handler = WebhookHandler(url=f"http://127.0.0.1:{silent.getsockname()[1]}/hook", timeout=0.3)

        async def run() -> None:
            try:
                await handler.send(Notification(id="n-1", channel="hooks", body="hi"))
            finally:
                await handler.close()

        with pytest.raises(RetryableError, match="(?i)timeout"):
            asyncio.run(run())
