"""When to restart a crashed channel process: backoff, reset and crash-loop limit (pure)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    """How crashed channel processes come back; times in seconds."""

    initial_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 30.0       # an uptime this long resets the backoff
    loop_limit: int = 5              # this many crashes ...
    loop_window: float = 60.0        # ... within this window mean a crash loop
    cool_off: float = 300.0          # a crash-looping channel waits this long, then tries again


@dataclass
class RestartState:
    """Crash history of one channel member."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    consecutive: int = 0
    crashes: deque[float] = field(default_factory=deque)

    def after_crash(self, *, now: float, uptime: float) -> tuple[float, bool]:
        """Record a crash at ``now``; returns (delay before restarting, is a crash loop)."""
        if uptime >= self.policy.stable_after:
            self.consecutive = 0
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > self.policy.loop_window:
            self.crashes.popleft()
        if len(self.crashes) >= self.policy.loop_limit:
            self.crashes.clear()
            self.consecutive = 0
            return self.policy.cool_off, True
        delay = min(self.policy.max_delay, self.policy.initial_delay * (2 ** self.consecutive))
        self.consecutive += 1
        return delay, False
