"""Whether a notification may be sent: the claim state machine, lease and dedupe-window arithmetic.

Pure: functions of a ledger record, the caller's identity and the time. A record moves
``claimed`` -> ``sent`` (the provider accepted) or ``claimed`` -> ``failed`` (given up), with
``claimed`` -> ``waiting`` -> ``claimed`` for each retry;
a claim whose owner stops renewing it expires after the lease, so a notification held by
a process that died is sent by the next one, not lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"
# An attempt failed and a retry follows: nobody is sending it now, so whichever process the
# retry comes back to (the delay tiers have a group of their own) may claim it at once.
WAITING = "waiting"

SEND = "send"              # claim it and send
DUPLICATE = "duplicate"    # sent within the window: do not send again
HELD = "held"              # another live owner holds the claim: try again later


class Record(NamedTuple):
    """What the ledger holds about one notification id of one channel (a tuple: ~0.3 us to build, on every send)."""

    state: str
    owner: str
    claimed_at: float
    sent_at: float | None = None
    provider_id: str | None = None
    attempts: int = 0
    received_at: float | None = None  # when the channel first claimed it; only ``notifyd trace`` reads it


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one attempt; ``retry_after`` (seconds) only when ``HELD``."""

    action: str
    retry_after: float = 0.0


SEND_IT = Verdict(SEND)
DUPLICATE_IT = Verdict(DUPLICATE)


def decide(record: Record | None, *, owner: str, now: float, window: float, lease: float,
           owner_gone: bool = False) -> Verdict:
    """May ``owner`` send at ``now``, given what the ledger holds?

    ``owner_gone``: the claim's owner is known to be dead (a process of this host that no
    longer exists), so its claim expires now instead of at the end of the lease.
    """
    if record is None or record.state in (FAILED, WAITING):
        return SEND_IT
    if record.state == SENT:
        return DUPLICATE_IT if within_window(record, now=now, window=window) else SEND_IT
    if record.owner == owner:
        return SEND_IT  # our own claim: a retry renews it
    left = 0.0 if owner_gone else lease_left(record, now=now, lease=lease)
    return Verdict(HELD, retry_after=left) if left > 0 else SEND_IT


def within_window(record: Record, *, now: float, window: float) -> bool:
    """Whether a sent record still suppresses a resend (a clock step back counts as inside)."""
    return record.sent_at is not None and now - record.sent_at < window


def lease_left(record: Record, *, now: float, lease: float) -> float:
    """Seconds until a claim expires; 0 once it has."""
    return max(0.0, record.claimed_at + lease - now)


def prune_before(*, now: float, retention: float, window: float) -> float:
    """Records untouched since this time may go: past the retention and never inside the dedupe window."""
    return now - max(retention, window)
