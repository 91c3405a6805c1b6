"""Sampling of the per-notification log lines, so that a provider outage is not a log flood.

Modelled on zap's sampler: in a channel process, each of the ``SAMPLED`` messages logs its
first ``FIRST`` lines of every second; the rest of that second are left out and counted.
The next line of that message carries ``suppressed``, how many were left out before it, and
a second after the first left-out line a ``log lines left out`` line reports any count that
no later line carried. Every notification is still counted in the metrics and traced in the
ledger, and a dead-lettered one is in the DLQ. At ``log_level: debug`` nothing is sampled.

A failure logged in full cost ~25% of a CPU-bound channel's time with 30% of its
notifications failing (bench case 8, profiled with py-spy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

SAMPLED = frozenset({
    "delivery failed, will retry",
    "notification held back",
    "notification failed, writing it to the dlq",
    "notification failed; the channel has no dlq, skipped",
    "the fallback handler failed too",
    "delivered through the fallback",
})
FIRST = 20
INTERVAL = 1.0
LEFT_OUT = "log lines left out"


@dataclass
class _Window:
    start: float
    logged: int = 0
    left_out: int = 0


class LineSampler:
    """Decides which lines of each sampled message are logged; also a structlog processor."""

    def __init__(self, messages: frozenset[str] = SAMPLED, *, first: int = FIRST, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._messages, self._first, self._interval, self._clock = messages, first, interval, clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        message = event.get("event")
        if message not in self._messages:
            return event
        left_out = self.admit(message)
        if left_out is None:
            self._report_later()
            raise structlog.DropEvent
        if left_out:
            event["suppressed"] = left_out
        return event

    def admit(self, message: str) -> int | None:
        """None if this line of ``message`` is left out; else how many were left out before it (and not reported)."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(message)
            if window is None or now - window.start >= self._interval:
                carried = window.left_out if window else 0
                self._windows[message] = _Window(now, logged=1)
                return carried
            if window.logged < self._first:
                window.logged += 1
                return 0
            window.left_out += 1
            return None

    def take_overdue(self) -> tuple[dict[str, int], float | None]:
        """The left-out counts of windows that have ended, each reported here once; and the
        seconds until the first running window with lines left out ends (None if there is none)."""
        now = self._clock()
        with self._lock:
            overdue = {message: window.left_out for message, window in self._windows.items()
                       if window.left_out and now - window.start >= self._interval}
            for message in overdue:
                self._windows[message].left_out = 0
            running = [window.start + self._interval - now for window in self._windows.values() if window.left_out]
            self._timer = None
        return overdue, min(running, default=None)

    def report(self) -> None:
        """Log one line per message whose ended window left lines out that no later line reported."""
        overdue, pending = self.take_overdue()
        log = structlog.get_logger("notifyd.logsampling")
        for message, count in overdue.items():
            log.info(LEFT_OUT, line=message, suppressed=count)
        if pending is not None:  # lines left out since the timer was set, in a window still running
            self._report_later(pending)

    def _report_later(self, delay: float | None = None) -> None:
        """At most one timer at a time; it reports what the windows ended by then left out."""
        with self._lock:
            if self._timer is not None:
                return
            timer = self._timer = threading.Timer(self._interval if delay is None else delay, self.report)
        timer.daemon = True
        timer.start()
