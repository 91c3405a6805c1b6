"""The reliability suite's figures: the fixture scenarios add them to, per-test durations, print and write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifyd.tools.devbroker import EmbeddedBroker, free_port
from tests.kit.figures import Figures
from tests.kit.kafka import KafkaKit
from tests.kit.proxy import TcpProxy

DURATIONS = "durations: seconds per test (pytest call phase)"
_figures = Figures(merged=frozenset({DURATIONS}))
_written: list[Path | None] = []


@pytest.fixture(scope="session")
def figures() -> Figures:
    """Where scenarios put their numbers; written to the results folder at the end (tests/kit/figures.py)."""
    return _figures


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "tests/reliability/" in report.nodeid:
        outcome = "" if report.passed else f" ({report.outcome})"
        _figures.add(DURATIONS, **{report.nodeid.rpartition("/")[2]: f"{report.duration:.1f}{outcome}"})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if set(_figures.sections) - {DURATIONS}:
        _written.append(_figures.write())


def pytest_terminal_summary(terminalreporter) -> None:
    for name in sorted(_figures.sections):
        terminalreporter.write_line("")
        terminalreporter.write(_figures.render(name))
    for path in _written:
        terminalreporter.write_line(f"reliability figures written to {path}")


@pytest.fixture
def proxied_kafka(tmp_path) -> Iterator[tuple[TcpProxy, KafkaKit]]:
    """A broker of its own reached only through a TCP proxy the test can cut (advertising the proxy)."""
    proxy = TcpProxy(("127.0.0.1", free_port()))
    broker = EmbeddedBroker(proxy.target[1], advertised=proxy.address, log_path=str(tmp_path / "tansu.log"))
    with broker, proxy:
        kit = KafkaKit(proxy.address)
        yield proxy, kit
        kit.producer.purge()
        kit.close()
