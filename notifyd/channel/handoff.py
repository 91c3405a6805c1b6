"""Handing a job's record to another topic, acknowledged: the DLQ, a delay tier, a fallback channel.

The job's offset is finished (``on_written``) only once the broker has the record. A
failed write is produced again every ``RETRY_DELAY`` seconds for as long as the job's
partition is the channel's (else its next owner reads the job again); a record the
topic refuses as too large would be refused forever and hold its partition back, so it
goes to ``on_too_large`` instead, when the caller gives one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from notifyd.channel.job import Job, where
from notifyd.channel.producer import AckedProducer, Headers

RETRY_DELAY = 1.0


class HandOff:
    """Produces jobs' records to one topic through the channel's idempotent, acks=all producer."""

    def __init__(self, producer: AckedProducer, topic: str, *, what: str, log: Any,
                 is_current: Callable[[Job], bool]) -> None:
        self.topic = topic
        self._producer, self._what, self._log, self._is_current = producer, what, log, is_current

    def send(self, job: Job, *, value: bytes | None, headers: Headers, on_written: Callable[[], None],
             on_too_large: Callable[[str], None] | None = None) -> None:
        """Produce ``job``'s key with ``value`` and ``headers``; ``on_written`` once the broker has it."""

        def failed(error: str, too_large: bool) -> None:
            if not self._is_current(job):
                return  # the partition was revoked: its new owner reads the job again
            if too_large and on_too_large is not None:
                return on_too_large(error)
            self._log.error(f"{self._what} write failed, will retry", **where(job), topic=self.topic, error=error)
            asyncio.get_running_loop().call_later(RETRY_DELAY, retry)

        def retry() -> None:
            self.send(job, value=value, headers=headers, on_written=on_written, on_too_large=on_too_large)

        self._producer.write(self.topic, key=job.message.key(), value=value, headers=headers,
                             on_written=on_written, on_failed=failed)
