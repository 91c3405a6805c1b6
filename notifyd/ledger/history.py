"""A notification's history from what the ledger holds: pure, for ``notifyd trace``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from notifyd.ledger.decision import CLAIMED, FAILED, SENT, Record
from notifyd.ledger.store import Event
from notifyd.records.outcome import iso


@dataclass(frozen=True)
class Step:
    """One moment of a notification's history in one channel."""

    at: float
    channel: str
    event: str
    attempt: int
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        """The step for ``--format json``, its time also as ISO 8601 UTC."""
        return {**asdict(self), "time": iso(self.at)}


def history(records: list[tuple[str, Record]], events: list[Event]) -> list[Step]:
    """Every step, oldest first: when it was received, the latest claim, the noted events, each record's outcome."""
    steps = [Step(at, channel, kind, attempt, detail) for channel, _id, at, kind, attempt, detail in events]
    steps += _received(records, steps)
    for channel, record in records:
        if record.state != FAILED:  # a given-up record's time is when it was given up
            steps.append(Step(record.claimed_at, channel, "claimed", record.attempts, f"by {record.owner}"))
        outcome = _outcome(channel, record)
        if outcome is not None:
            steps.append(outcome)
    return sorted(steps, key=lambda step: (step.at, _ORDER_AT_ONE_TIME.get(step.event, 2)))


_ORDER_AT_ONE_TIME = {"received": 0, "claimed": 1}


def _received(records: list[tuple[str, Record]], noted: list[Step]) -> list[Step]:
    """Each channel's first sight of the notification: its first claim, or an earlier noted step (a hold)."""
    first: dict[str, float] = {}
    moments = [(step.channel, step.at) for step in noted]
    moments += [(channel, record.received_at) for channel, record in records if record.received_at is not None]
    for channel, at in moments:
        first[channel] = min(at, first.get(channel, at))
    return [Step(at, channel, "received", 0) for channel, at in first.items()]


def _outcome(channel: str, record: Record) -> Step | None:
    if record.state == SENT:
        detail = f"provider id {record.provider_id}" if record.provider_id else ""
        return Step(record.sent_at or record.claimed_at, channel, "sent", record.attempts, detail)
    if record.state == FAILED:
        return Step(record.claimed_at, channel, "given_up", record.attempts, "dead-lettered or skipped")
    if record.state == CLAIMED:
        return None  # in progress, or its owner died: the claim step says so
    return None


def render(notification_id: str, steps: list[Step]) -> str:
    """The history as text: one aligned line a step."""
    lines = [f"notification {notification_id}"]
    for step in steps:
        detail = f"  {step.detail}" if step.detail else ""
        lines.append(f"{iso(step.at)}  {step.channel:<12} {step.event:<21} attempt {step.attempt}{detail}")
    return "\n".join(lines)
