"""One channel's delivery series: bound to its label once, counters written once per pass.

prometheus_client's multiprocess values are mmap writes under a process-wide lock, each
with a ``getpid()`` check; at tens of thousands of deliveries a second the per-message
increments cost about a tenth of a delivery. Counters are therefore tallied in a dict
and added by ``flush`` once per pass of the delivery loop. The duration histogram is
observed per attempt: it has no public way to add many observations at once.
"""

from __future__ import annotations

from typing import Any

from notifyd.handler import PermanentError
from notifyd.metrics import ChannelMetrics
from notifyd.preparation import SkipNotification

RESULTS = ("success", "retryable_error", "permanent_error")


class DeliveryMetrics:
    """Records attempts and dead letters of one channel; ``flush`` writes the counters."""

    def __init__(self, metrics: ChannelMetrics, channel: str) -> None:
        self._metrics, self._channel = metrics, channel
        self._duration = metrics.duration.labels(channel)
        self._delivered = metrics.delivered.labels(channel)
        self._attempts = {result: metrics.attempts.labels(channel, result) for result in RESULTS}
        self._tally: dict[Any, int] = {}

    def attempt(self, outcome: BaseException | None, seconds: float) -> None:
        """One attempt that took ``seconds`` and ended in ``outcome`` (None: delivered)."""
        self._duration.observe(seconds)
        if isinstance(outcome, SkipNotification):
            self._add(self._metrics.skipped.labels(self._channel, outcome.reason))
            return
        self._add(self._attempts[result_label(outcome)])
        if outcome is None:
            self._add(self._delivered)

    def dead_lettered(self, reason: str) -> None:
        """A notification given up for ``reason`` (written to the DLQ, or dropped without one)."""
        self._add(self._metrics.dead_lettered.labels(self._channel, reason))

    def flush(self) -> None:
        """Write the counts tallied since the last flush."""
        tally, self._tally = self._tally, {}
        for counter, count in tally.items():
            counter.inc(count)

    def _add(self, counter: Any) -> None:
        self._tally[counter] = self._tally.get(counter, 0) + 1


def result_label(outcome: BaseException | None) -> str:
    """The ``result`` label of an attempt's outcome."""
    if outcome is None:
        return "success"
    return "permanent_error" if isinstance(outcome, PermanentError) else "retryable_error"
