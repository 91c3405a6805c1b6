"""Running ``async def`` tests: the suite has no asyncio plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def on_a_loop(test: Callable[[], Any]) -> Callable[[], None]:
    """Run an ``async def`` test on a fresh event loop."""

    def run() -> None:
        asyncio.run(test())

    return run
