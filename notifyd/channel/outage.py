"""A broker outage as one channel process sees it: one line when it starts, one when it ends.

librdkafka reports a lost broker at every reconnect attempt (a ``FAIL`` log line and a
``_TRANSPORT`` error each time, several a second with the default backoff). An outage
starts with ``_ALL_BROKERS_DOWN``; from then until a metadata request succeeds again,
librdkafka's connection-failure lines are held back and counted. The failures that led
up to it (one per broker connection) still show, since they say which address failed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from notifyd.channel import lifecycle

# librdkafka's log facilities for a failed or lost connection.
CONNECTION_FACILITIES = frozenset({"FAIL", "ERROR"})


class BrokerOutage(logging.Filter):
    """Whether every broker is down; also the logging filter for librdkafka's own lines."""

    def __init__(self, *, status: lifecycle.StatusReporter, log: Any) -> None:
        super().__init__()
        self._status, self._log = status, log
        self.active = False
        self._since = 0.0
        self._held_back = 0

    def begin(self, error: str) -> None:
        """Every broker is down: report it once, however often librdkafka repeats it."""
        if self.active:
            return
        self.active, self._since, self._held_back = True, time.monotonic(), 0
        self._status.send(lifecycle.EVENT_BROKER_DOWN, error=error)
        self._log.error("every broker is down", error=error)

    def end(self) -> None:
        """A broker answered again: report how long the outage lasted."""
        if not self.active:
            return
        self.active = False
        self._status.send(lifecycle.EVENT_BROKER_UP)
        self._log.info("broker reachable again", outage_seconds=round(time.monotonic() - self._since, 1),
                       client_lines_held_back=self._held_back)

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop librdkafka's connection-failure lines while an outage is reported."""
        if self.active and facility(record) in CONNECTION_FACILITIES:
            self._held_back += 1
            return False
        return True


def facility(record: logging.LogRecord) -> str | None:
    """The librdkafka facility of a line confluent-kafka logged as ``"%s [%s] %s" % (fac, name, text)``."""
    args = record.args
    return args[0] if isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], str) else None
