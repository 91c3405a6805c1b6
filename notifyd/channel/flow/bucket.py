"""A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

from __future__ import annotations


class TokenBucket:
    """Tokens for attempts; ``now`` is any monotonic clock reading, in seconds."""

    def __init__(self, rate: float, burst: float, *, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        """Take a token if one is there now.

        Refills only when the tokens counted so far run out: a token bucket's promise
        (at most ``burst + rate * t`` in any ``t`` seconds) holds all the same, and an
        attempt far below the rate costs a comparison and a subtraction.
        """
        if self._tokens < 1.0:
            self._refill(now)
            if self._tokens < 1.0:
                return False
        self._tokens -= 1.0
        return True

    def take_up_to(self, count: int, now: float) -> int:
        """Take as many whole tokens as are there now, up to ``count``; how many were taken."""
        if self._tokens < count:
            self._refill(now)
        taken = min(count, int(self._tokens)) if self._tokens >= 1.0 else 0
        self._tokens -= taken
        return taken

    def give_back(self, count: int) -> None:
        """Return ``count`` tokens taken and not used (never beyond the burst)."""
        self._tokens = min(self.burst, self._tokens + count)

    def reserve(self, now: float) -> float:
        """Take the next token, borrowing it if need be; seconds until it is really there.

        Borrowed tokens leave the bucket negative, so waiters reserve one after the other
        and each sleeps exactly until its own token: no waiter wakes to find none.
        """
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate

    def wait(self, now: float) -> float:
        """Seconds until a whole token is there (tokens borrowed by ``reserve`` included); takes nothing."""
        self._refill(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def set_rate(self, rate: float, burst: float, *, now: float) -> None:
        """Change the rate from ``now`` on; tokens earned so far keep, up to the new burst."""
        self._refill(now)
        self.rate, self.burst = rate, burst
        self._tokens = min(self._tokens, burst)

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
