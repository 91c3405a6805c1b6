"""The circuit breaker: closed, open while the provider fails, half-open while one probe runs.

Opens after ``consecutive_failures`` transient failures in a row, or when at least
``failure_ratio`` of the attempts (``min_attempts`` of them at least) within the last
``window`` seconds failed. While open, one attempt at a time is let through as a probe,
every ``probe_interval`` seconds; its success closes the circuit, its failure keeps it
open. Outcomes of attempts that were already in flight when it opened are ignored.
"""

from __future__ import annotations

from collections import deque

from notifyd.config.settings import BreakerPolicy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
SUCCESS, FAILURE, NEUTRAL = "success", "failure", "neutral"  # NEUTRAL: the provider answered; no verdict


class CircuitBreaker:
    """One channel process's circuit; every method takes the clock reading ``now``."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state = CLOSED
        self.next_probe = 0.0
        self._in_a_row = 0
        self._second, self._attempts, self._failures = 0, 0, 0  # the second being counted
        self._seconds: deque[tuple[int, int, int]] = deque()  # earlier (second, attempts, failures), oldest first

    def admit(self, now: float) -> float:
        """0 if an attempt may start now (taking the probe when open); else seconds to wait."""
        if self.state == CLOSED:
            return 0.0
        if self.state == OPEN and now >= self.next_probe:
            self.state = HALF_OPEN
            return 0.0
        return max(self.next_probe - now, 0.0) or self.policy.probe_interval

    def record(self, verdict: str, now: float, *, probe: bool) -> str | None:
        """Count an outcome; the new state if it changed the state, else None."""
        if self.state != CLOSED:
            return self._probed(verdict, now) if probe else None
        if int(now) != self._second:
            self._next_second(int(now))
        if verdict == SUCCESS:  # the hot path: two additions
            self._in_a_row = 0
            self._attempts += 1
        elif verdict == FAILURE:
            self._in_a_row += 1
            self._attempts += 1
            self._failures += 1
            if self._tripped():
                return self._open(now)
        return None

    def record_successes(self, count: int, now: float) -> None:
        """Count ``count`` successes at once, as ``count`` calls of ``record(SUCCESS, now, probe=False)`` would."""
        if self.state != CLOSED or not count:
            return
        if int(now) != self._second:
            self._next_second(int(now))
        self._in_a_row = 0
        self._attempts += count

    def _probed(self, verdict: str, now: float) -> str | None:
        if verdict == SUCCESS:
            self.state, self._in_a_row = CLOSED, 0
            self._seconds.clear()
            self._attempts = self._failures = 0
            return CLOSED
        if verdict == NEUTRAL:  # this notification's own problem: probe again with another one
            self.state, self.next_probe = OPEN, now
            return None
        return self._open(now)

    def _open(self, now: float) -> str | None:
        changed = self.state == CLOSED
        self.state, self.next_probe = OPEN, now + self.policy.probe_interval
        return OPEN if changed else None

    def _next_second(self, second: int) -> None:
        seconds = self._seconds
        if self._attempts:
            seconds.append((self._second, self._attempts, self._failures))
        self._second, self._attempts, self._failures = second, 0, 0
        while seconds and seconds[0][0] <= second - self.policy.window:
            seconds.popleft()

    def _tripped(self) -> bool:
        if self._in_a_row >= self.policy.consecutive_failures:
            return True
        attempts = self._attempts + sum(entry[1] for entry in self._seconds)
        failures = self._failures + sum(entry[2] for entry in self._seconds)
        return attempts >= self.policy.min_attempts and failures >= self.policy.failure_ratio * attempts
