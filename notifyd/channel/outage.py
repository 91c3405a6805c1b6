"""A broker outage as one channel process sees it: one line when it starts, one when it ends.

librdkafka reports a lost broker at every reconnect attempt (a ``FAIL`` log line and a
``_TRANSPORT`` error each time, several a second with the default backoff). An outage
starts with ``_ALL_BROKERS_DOWN`` and ends when a metadata request succeeds again.
librdkafka's connection-failure lines are logged once each (their text without the
"after N ms in state X" part): a repeat is held back while an outage lasts and for
``REPEAT_WINDOW`` seconds after the same line was last seen, because librdkafka queues
its lines and hands them over in bursts, some only after the outage has ended.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaException

from notifyd.channel import lifecycle

# librdkafka's log facilities for a failed or lost connection.
CONNECTION_FACILITIES = frozenset({"FAIL", "ERROR"})
REPEAT_WINDOW = 60.0
_VARYING = re.compile(r"\s*\(after \d+ms in state [^)]*\)|\s*\d+ identical error\(s\) suppressed")
_MAX_REMEMBERED = 1000


class BrokerOutage(logging.Filter):
    """Whether every broker is down; also the logging filter for librdkafka's own lines."""

    def __init__(self, *, status: lifecycle.StatusReporter, log: Any) -> None:
        super().__init__()
        self._status, self._log = status, log
        self.active = False
        self._since = 0.0
        self._held_back = 0
        self._last_seen: dict[str, float] = {}

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

    async def probe(self, request_metadata: Callable[[], Awaitable[Any]]) -> None:
        """During an outage, end it if a metadata request (which raises while no broker answers) succeeds."""
        if not self.active:
            return
        try:
            await request_metadata()
        except KafkaException:
            return
        self.end()

    @contextmanager
    def filtering(self, client_log: logging.Logger | None) -> Iterator[None]:
        """Filter ``client_log`` (librdkafka's lines) meanwhile; the logger is process-wide."""
        if client_log is None:
            yield
            return
        client_log.addFilter(self)
        try:
            yield
        finally:
            client_log.removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a repeated librdkafka connection-failure line (see the module docstring)."""
        if facility(record) not in CONNECTION_FACILITIES:
            return True
        key, now = _VARYING.sub("", str(record.args[2])), time.monotonic()
        repeated = self.active or now - self._last_seen.get(key, -REPEAT_WINDOW) < REPEAT_WINDOW
        if len(self._last_seen) >= _MAX_REMEMBERED:
            self._last_seen.clear()
        self._last_seen[key] = now
        if repeated:
            self._held_back += 1
        return not repeated


def facility(record: logging.LogRecord) -> str | None:
    """The librdkafka facility of a line confluent-kafka logged as ``"%s [%s] %s" % (fac, name, text)``."""
    args = record.args
    return args[0] if isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], str) else None
