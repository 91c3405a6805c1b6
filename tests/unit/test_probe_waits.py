"""An operator command's probe asks for metadata in doubling waits, so a Ctrl-C need not sit out --timeout."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from notifyd.tools.runner import FIRST_PROBE_WAIT, _metadata_within


class SilentAdmin:
    """An admin client whose metadata waits all fail with ``error``, until the ``answer_at``-th."""

    def __init__(self, error: int = KafkaError._TRANSPORT, answer_at: int | None = None) -> None:
        self.error, self.answer_at = error, answer_at
        self.waits: list[float] = []

    def list_topics(self, *, timeout: float) -> Any:
        self.waits.append(timeout)
        if len(self.waits) == self.answer_at:
            return "metadata"
        raise KafkaException(KafkaError(self.error))


def test_each_wait_doubles_and_the_last_ends_at_the_timeout() -> None:
    admin = SilentAdmin()
    with pytest.raises(KafkaException):
        _metadata_within(admin, 3.0)
    assert admin.waits[:3] == [FIRST_PROBE_WAIT, 2 * FIRST_PROBE_WAIT, 4 * FIRST_PROBE_WAIT]
    assert len(admin.waits) == 4 and 2.9 < admin.waits[3] <= 3.0


def test_an_answer_to_a_later_wait_is_the_probe_s_answer() -> None:
    admin = SilentAdmin(answer_at=3)
    assert _metadata_within(admin, 60.0) == "metadata"
    assert admin.waits == [FIRST_PROBE_WAIT, 2 * FIRST_PROBE_WAIT, 4 * FIRST_PROBE_WAIT]


def test_an_error_other_than_an_unreachable_broker_ends_the_probe_at_once() -> None:
    admin = SilentAdmin(error=KafkaError._AUTHENTICATION)
    with pytest.raises(KafkaException):
        _metadata_within(admin, 60.0)
    assert admin.waits == [FIRST_PROBE_WAIT]
