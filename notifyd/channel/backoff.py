"""How long to wait before the next delivery attempt: a fixed schedule, or exponential backoff with full jitter."""

from __future__ import annotations

import random

from notifyd.config.settings import BackoffPolicy, ChannelSettings


def compute_delay(policy: BackoffPolicy, attempt: int, *, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after failed ``attempt`` (1 = the first) before the next one.

    A ``retry_after`` the provider asked for (a 429's Retry-After) wins over the policy.
    With ``policy.jitter`` the delay is drawn uniformly from ``[0, exponential delay]``
    ("full jitter"), so retries of many notifications that failed together spread out.
    """
    if retry_after is not None:
        return max(0.0, float(retry_after))
    exponent = max(0, attempt - 1)
    try:
        ceiling = min(policy.max, policy.initial * policy.multiplier ** exponent)
    except OverflowError:  # a huge attempt number with a large multiplier
        ceiling = policy.max
    if not policy.jitter:
        return ceiling
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(settings: ChannelSettings, attempt: int, *, retry_after: float | None,
                rng: random.Random | None = None) -> float:
    """Seconds to wait after failed ``attempt`` under the channel's ``retry_schedule``, else its ``backoff``."""
    schedule = settings.retry_schedule
    if retry_after is not None or not schedule:
        return compute_delay(settings.backoff, attempt, retry_after=retry_after, rng=rng)
    return schedule[min(max(attempt, 1), len(schedule)) - 1]
