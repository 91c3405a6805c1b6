"""Routing a wait onto a channel's delay tiers, like a timing wheel: largest tier that fits first.

A record in tier ``d`` is due ``d`` seconds after it was written there, so within one tier
partition due times rise with the offsets and the partition's head is always the next one
due. When less than the smallest tier remains, the record waits in the smallest tier until
its final due time: that is the only place where a record can be held behind an earlier
one, by less than the smallest tier's delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A record this close to its due time is delivered: a hop for a few ms is not worth a produce.
DUE_SLACK = 0.01


@dataclass(frozen=True)
class Hop:
    """The next tier a record waits in, and when it leaves it (epoch seconds)."""

    tier: int  # index into the ladder
    due: float


def next_hop(*, now: float, due: float, ladder: Sequence[float]) -> Hop | None:
    """Where a record due at ``due`` waits next; None when it is due now."""
    remaining = due - now
    if remaining <= DUE_SLACK:
        return None
    for tier in range(len(ladder) - 1, -1, -1):
        if ladder[tier] <= remaining:
            return Hop(tier, now + ladder[tier])
    return Hop(0, due)


def wait_before(hop_due: float, *, now: float) -> float:
    """Seconds a record read from a tier must still wait there (0 when its hop is due).

    Exact, with no ``DUE_SLACK``: a record is never let through before its time (send_at
    is "no earlier than"). The slack let one through up to 10 ms early, hidden while every
    resume fetched the record again; a kept record goes from its timer straight to delivery.
    """
    return max(0.0, hop_due - now)
