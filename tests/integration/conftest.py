"""Fixtures of the broker tests: channel processes in threads, always stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifyd.config.settings import Config
from tests.kit.worker import Worker


@pytest.fixture
def start() -> Iterator[Callable[..., Worker]]:
    """Start ``serve`` in a thread: ``start(config, channel)``; every worker is finished at teardown."""
    workers: list[Worker] = []

    def begin(config: Config, channel: str, status: Any = None) -> Worker:
        workers.append(Worker(config, channel, status))
        return workers[-1]

    yield begin
    for worker in workers:
        worker.finish()
