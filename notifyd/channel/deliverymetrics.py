"""One channel's delivery series: bound to its label once, written once per pass.

prometheus_client's multiprocess values are mmap writes under a process-wide lock, each
with a ``getpid()`` check: a counter increment costs ~1.2 us and a histogram
observation ~2.4 us here, against ~9 us for a whole no-op delivery. Counters are
therefore tallied in a dict and durations counted per bucket, and ``flush`` writes
them once per pass of the delivery loop.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from notifyd.api import PermanentError, SkipNotification
from notifyd.metrics import ATTEMPT_RESULTS as RESULTS
from notifyd.metrics import ChannelMetrics
from notifyd.recipients.hold import HeldBack


class DurationTally:
    """Observations of one histogram child, counted per bucket and added to it by ``flush``.

    prometheus_client has no public call that adds many observations at once, so the
    flush adds to the child's bucket and sum values as ``Histogram.observe`` does (the
    same ``amount <= bound`` rule). Where a release lays the child out otherwise, every
    observation goes through ``observe``: slower, never wrong (tests compare both).
    """

    def __init__(self, child: Any) -> None:
        self._child = child
        bounds = list(getattr(child, "_upper_bounds", ()))
        buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
        batched = bool(bounds) and bounds[-1] == float("inf") and isinstance(buckets, list) \
            and len(buckets) == len(bounds) and all(hasattr(v, "inc") for v in [*buckets, total])
        self._bounds = bounds if batched else []
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation until the next flush."""
        if not self._bounds:
            self._child.observe(seconds)
            return
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def flush(self) -> None:
        """Add the observations counted since the last flush to the histogram."""
        if not any(self._counts):
            return
        counts, self._counts = self._counts, [0] * len(self._bounds)
        total, self._sum = self._sum, 0.0
        self._child._sum.inc(total)
        for value, count in zip(self._child._buckets, counts):
            if count:
                value.inc(count)


class DeliveryMetrics:
    """Records attempts and dead letters of one channel; ``flush`` writes them."""

    def __init__(self, metrics: ChannelMetrics, channel: str) -> None:
        self._metrics, self._channel = metrics, channel
        self._duration = DurationTally(metrics.duration.labels(channel))
        self._delivered = metrics.delivered.labels(channel)
        self._attempts = {result: metrics.attempts.labels(channel, result) for result in RESULTS}
        self._tally: dict[Any, int] = {}
        self._successes = 0  # the common outcome, kept out of the dict

    def attempt(self, outcome: BaseException | None, seconds: float) -> None:
        """One attempt that took ``seconds`` and ended in ``outcome`` (None: delivered)."""
        self._duration.observe(seconds)
        if outcome is None:
            self._successes += 1
        elif isinstance(outcome, SkipNotification):
            self._add(self._metrics.skipped.labels(self._channel, outcome.reason))
        elif not isinstance(outcome, HeldBack):  # held back (quiet hours) before its send: not an attempt
            self._add(self._attempts[result_label(outcome)])

    def dead_lettered(self, reason: str) -> None:
        """A notification given up for ``reason`` (written to the DLQ, or dropped without one)."""
        self._add(self._metrics.dead_lettered.labels(self._channel, reason))

    def flush(self) -> None:
        """Write the counts and durations tallied since the last flush."""
        self._duration.flush()
        tally, self._tally = self._tally, {}
        if self._successes:
            for counter in (self._delivered, self._attempts["success"]):
                tally[counter] = tally.get(counter, 0) + self._successes
            self._successes = 0
        for counter, count in tally.items():
            counter.inc(count)

    def _add(self, counter: Any) -> None:
        self._tally[counter] = self._tally.get(counter, 0) + 1


def result_label(outcome: BaseException | None) -> str:
    """The ``result`` label of an attempt's outcome."""
    if outcome is None:
        return "success"
    return "permanent_error" if isinstance(outcome, PermanentError) else "retryable_error"
