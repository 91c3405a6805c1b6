"""How a channel answers a provider's throttling: halve the rate, pause, then speed up step by step.

Additive increase, multiplicative decrease, as TCP does: one throttling answer halves
the rate factor (never below ``FLOOR``) and pauses the whole channel for the
Retry-After the provider asked for; once the pause is over the factor grows back by
``STEP`` a second until it reaches 1. Throttling answers of attempts already in flight
when the first one came back count once: a decrease per ``COOLDOWN`` at most.
"""

from __future__ import annotations

FLOOR = 1 / 64
STEP = 0.1  # of the full rate, per second: from half speed to full in five seconds
DEFAULT_PAUSE = 1.0  # seconds, when the throttling answer names no Retry-After
COOLDOWN = 1.0


class Aimd:
    """The rate factor in [FLOOR, 1] and the pause that throttling answers set."""

    def __init__(self) -> None:
        self._factor = 1.0  # at self._since
        self._since = float("-inf")
        self.paused_until = float("-inf")
        self._last_decrease = float("-inf")

    def throttled(self, now: float, retry_after: float | None) -> bool:
        """Record a throttling answer; True if it slowed the channel (not an echo of one just seen)."""
        pause = DEFAULT_PAUSE if retry_after is None else max(0.0, retry_after)
        self.paused_until = max(self.paused_until, now + pause)
        if now - self._last_decrease < COOLDOWN:
            return False
        self._last_decrease = now
        self._factor = max(FLOOR, self.factor(now) / 2)
        self._since = self.paused_until
        return True

    @property
    def slowed(self) -> bool:
        """Whether a throttling answer slowed the rate since it last was back at full speed."""
        return self._factor < 1.0

    def factor(self, now: float) -> float:
        """The share of the full rate allowed at ``now``."""
        if self._factor >= 1.0:
            return 1.0
        factor = self._factor + STEP * max(0.0, now - self._since)
        if factor >= 1.0:
            self._factor = 1.0  # recovered: ``slowed`` reads False again
            return 1.0
        return factor

    def pause_left(self, now: float) -> float:
        """Seconds left of the pause; 0 when none."""
        return max(0.0, self.paused_until - now)
