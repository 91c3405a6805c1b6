"""The retry decision: whether a failure is worth another attempt, and how long to wait first.

The wait comes from the channel's fixed schedule, or exponential backoff with full jitter.
"""

from __future__ import annotations

import random

from notifyd.api import PermanentError
from notifyd.channel.flow.gate import CircuitOpen
from notifyd.config.settings import BackoffPolicy, ChannelSettings
from notifyd.records.notification import InvalidNotification


def retryable(outcome: BaseException) -> bool:
    """Anything but a permanent or input error may succeed later: a bug, a 503, a reset connection.

    ``CircuitOpen`` is not retried here: it goes to the channel's fallback at once.
    """
    return not isinstance(outcome, (PermanentError, InvalidNotification, CircuitOpen))


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
