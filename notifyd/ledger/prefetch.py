"""Reading a consumed batch's ledger records at once, before delivery takes its notifications one by one.

Delivery calls the reader with each batch of jobs (``notifyd.channel.job.Job``: a Kafka
message, its parsed notification once known). The reader parses what is not parsed yet,
setting ``job.notification`` as delivery would, so nothing is parsed twice; a record it
cannot parse is left for delivery to reject as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifyd.ledger.ledger import Ledger
from notifyd.records.notification import InvalidNotification, parse_notification


def batch_reader(ledger: Ledger, *, channel: str, log: Any) -> Callable[[list[Any]], None]:
    """The ``before_submit`` hook of a channel whose ledger is on."""

    def read(jobs: list[Any]) -> None:
        ids = [notification.id for notification in map(_parsed, jobs, [channel] * len(jobs)) if notification]
        if not ids:
            return
        try:
            ledger.prefetch(ids)
        except Exception as exc:  # each claim reads its own record then, and fails there if it must
            log.warning("ledger batch read failed", error=str(exc))

    return read


def _parsed(job: Any, channel: str) -> Any:
    if job.notification is None:
        try:
            job.notification = parse_notification(job.message.value(), channel=channel,
                                                   headers=job.message.headers())
        except InvalidNotification:
            return None
    return job.notification
