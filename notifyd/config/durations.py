"""Durations in the config file: seconds as a number, or text such as ``5s``, ``2m``, ``1h30m``, ``7d``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?[smhd])+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# The schema's pattern for the text form: ``parse_duration`` accepts what it matches, and also
# an all-zero text (0s) that the schema's look-ahead refuses, as it refuses the number 0.
DURATION_PATTERN = r"^(?=[0-9.smhd]*[1-9])([0-9]+(\.[0-9]+)?[smhd])+$"


def parse_duration(value: float | str) -> float:
    """Seconds in ``value``; raises ``ValueError`` for text that is not a duration."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not _WHOLE.match(text):
        raise ValueError(f"{value!r} is not a duration such as 5s, 2m, 1h30m or 7d")
    return float(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text)))


def format_duration(seconds: float) -> str:
    """The shortest text of a whole number of seconds in one unit: ``30s``, ``2m``, ``8h``, ``1d``."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
