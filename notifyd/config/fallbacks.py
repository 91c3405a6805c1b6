"""Checks of the channels' ``fallback`` keys: unknown targets and loops (a -> a, a -> b -> a).

Pure: the parsed channels come in, (key path, message) pairs come out; the caller places
them in the file. An inline ``{handler, options}`` fallback is checked by the handler
checks in ``validation``, as a channel's own handler is.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from typing import Any

from notifyd.config.findings import Path


def fallback_problems(channels: dict[str, dict[str, Any]], known: Collection[str]) -> Iterator[tuple[Path, str]]:
    """Every fallback naming a channel that does not exist, or leading back to its own channel."""
    for name, channel in channels.items():
        target = channel.get("fallback")
        if not isinstance(target, str):
            continue
        path: Path = ("channels", name, "fallback")
        if target not in known:
            yield path, _unknown_message(target, known)
            continue
        cycle = fallback_cycle(name, channels)
        if cycle is not None:
            yield path, f"fallback loop: {' -> '.join(cycle)}; a notification would bounce between them"


def fallback_cycle(start: str, channels: dict[str, dict[str, Any]]) -> list[str] | None:
    """The chain of channel fallbacks from ``start`` back to ``start`` (``[a, b, a]``); None if it ends."""
    chain = [start]
    target = channels[start].get("fallback")
    while isinstance(target, str) and target in channels:
        chain.append(target)
        if target == start:
            return chain
        if target in chain[:-1]:
            return None  # a loop further on, reported at its own channels
        target = channels[target].get("fallback")
    return None


def _unknown_message(target: str, known: Collection[str]) -> str:
    message = f"fallback names an unknown channel {target!r}"
    close = difflib.get_close_matches(target, list(known), n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message} (channels: {', '.join(sorted(known))})"
