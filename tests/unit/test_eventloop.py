"""The channel process's event loop: uvloop when installed, asyncio's own without it."""

from __future__ import annotations

import asyncio
import sys

import pytest

from notifyd.channel.eventloop import loop_factory


def test_the_loop_is_uvloop_where_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")  # a dependency wherever it has wheels
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)


def test_without_uvloop_the_stock_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an import on Windows meets
    assert loop_factory() is None
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert isinstance(runner.get_loop(), asyncio.BaseEventLoop)
