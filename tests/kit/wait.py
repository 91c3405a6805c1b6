"""Waiting on a condition with a deadline: the suite never sleeps a fixed time.

``wait_until`` polls from a plain test or helper; ``wait_until_async`` polls from a
coroutine, yielding to the event loop between looks so the work it waits for can run.
Both return the condition's first truthy result, and on timeout fail with what they
were waiting for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        _check(deadline, timeout, what)
        time.sleep(interval)
    return result


async def wait_until_async(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition",
                           interval: float = 0.005) -> Any:
    """``wait_until`` for coroutines: sleeps with ``asyncio.sleep``, so the loop keeps running."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        _check(deadline, timeout, what)
        await asyncio.sleep(interval)
    return result


def _check(deadline: float, timeout: float, what: str) -> None:
    if time.monotonic() >= deadline:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
