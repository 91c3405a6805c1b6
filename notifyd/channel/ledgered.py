"""Delivery with the ledger on: each consumed batch's ledger records are read at once, then delivered as usual.

The ledger's claim and mark happen around the handler call (``notifyd.ledger.guard``
wraps the handler); this only adds the batch read, which saves a query per
notification (``notifyd.ledger.prefetch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifyd.channel.delivery import Deliverer
from notifyd.channel.job import Job


class LedgeredDeliverer(Deliverer):
    """A ``Deliverer`` that hands each batch to ``before_submit`` first."""

    def __init__(self, *, before_submit: Callable[[list[Job]], None], **options: Any) -> None:
        super().__init__(**options)
        self._before_submit = before_submit

    def submit(self, jobs: list[Job]) -> None:
        """Read the batch's ledger records, then queue and start as ``Deliverer`` does."""
        self._before_submit(jobs)
        super().submit(jobs)
