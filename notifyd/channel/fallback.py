"""Failover: what the channel gives up on goes to its ``fallback`` instead of the DLQ.

A notification is handed on while the channel's circuit is open (the gate's
``CircuitOpen``) or once it has exhausted its retries; a permanent failure or an invalid
record is the notification's own fault and still goes to the DLQ. Two routes:

- **another channel**: the original record (key, value and headers, byte for byte) plus
  ``notifyd.fallback.from`` and ``notifyd.fallback.reason`` is produced to that
  channel's first topic (``notifyd.channel.handoff``); the offset is finished once the
  broker has it. A record the topic refuses as too large is dead-lettered.
- **an inline handler**: built in this process and tried once; its failure goes to the
  DLQ with ``notifyd.provider`` naming it.

A record that already came through a fallback is never handed on again: it goes to the
DLQ, so a notification cannot bounce between channels (``validate-config`` also rejects
fallback loops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from notifyd.channel.backoff import retryable
from notifyd.channel.dlq import Headers
from notifyd.channel.flow.gate import CircuitOpen
from notifyd.channel.job import Job, where
from notifyd.records import dlqheaders as h

DeadLetter = Callable[..., None]  # DeadLetterer.dead_letter(job, error, extra=headers)


class Route(Protocol):
    """Where a handed-on job goes: another channel's topic, or an inline handler."""

    target: str

    def hand_off(self, job: Job, reason: str, added: Headers) -> None:
        """Take ``job`` (``added``: the headers saying where it came from); finish or dead-letter it in the end."""


def came_through_fallback(job: Job) -> bool:
    """Whether ``job``'s record was handed to this channel by another one's fallback."""
    return any(name == h.HEADER_FALLBACK_FROM for name, _ in job.message.headers() or ())


def fallback_reason(outcome: BaseException) -> str | None:
    """Why a failed job goes to the fallback; None if it goes to the DLQ (its own fault)."""
    if isinstance(outcome, CircuitOpen):
        return h.FALLBACK_CIRCUIT_OPEN
    return h.FALLBACK_RETRIES_EXHAUSTED if retryable(outcome) else None


def origin_headers(channel: str, reason: str) -> Headers:
    """The headers saying where a handed-on record came from, and why."""
    return [(h.HEADER_FALLBACK_FROM, channel.encode("utf-8")), (h.HEADER_FALLBACK_REASON, reason.encode("utf-8"))]


class Failover:
    """One channel's ``give up`` step: hand the job to the fallback route, or dead-letter it."""

    def __init__(self, route: Route, *, channel: str, dead_letter: DeadLetter, counter: Any, log: Any) -> None:
        self._route, self._channel, self._dead_letter = route, channel, dead_letter
        self._counter, self._log = counter, log  # counter: notifyd_fallbacks_total

    def __call__(self, job: Job, outcome: BaseException) -> None:
        """Hand ``job`` to the fallback if it may go there, else dead-letter it."""
        reason = fallback_reason(outcome)
        if reason is None or came_through_fallback(job):
            self._dead_letter(job, outcome)
            return
        self._counter.labels(self._channel, self._route.target, reason).inc()
        # During an outage every notification goes over: the "circuit opened" warning already said why.
        emit = self._log.info if reason == h.FALLBACK_CIRCUIT_OPEN else self._log.warning
        emit("notification handed to the fallback", **where(job), fallback=self._route.target, reason=reason,
             attempts=job.attempts, error_class=type(outcome).__name__)
        self._route.hand_off(job, reason, origin_headers(self._channel, reason))
