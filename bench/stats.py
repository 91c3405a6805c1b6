"""Medians, percentiles and ratios of benchmark runs; pure functions, no I/O."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median of ``values``; NaN when there are none (a case that did not run)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation between sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def rate(samples: Sequence[tuple[float, float]]) -> float:
    """Items per second between the first sample that saw progress and the last sample.

    ``samples`` are ``(time, count)`` pairs from polling a counter; starting at the
    first non-zero count leaves start-up (group join) out of the figure.
    """
    moving = [(t, n) for t, n in samples if n > 0]
    if len(moving) < 2 or moving[-1][0] <= moving[0][0]:
        return float("nan")
    (t0, n0), (t1, n1) = moving[0], moving[-1]
    return (n1 - n0) / (t1 - t0)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN instead of a ZeroDivisionError."""
    return numerator / denominator if denominator else float("nan")
