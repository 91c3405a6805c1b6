"""Fixtures of the reliability suite: daemons that are always cleaned up, and the figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemonkit import Daemon
from tests.reliability.figures import Figures

DURATIONS = "durations: seconds per test (pytest call phase)"
_figures = Figures(merged=frozenset({DURATIONS}))


@pytest.fixture(scope="session")
def figures() -> Figures:
    """Where scenarios put their numbers; written to bench/results/reliability.md at the end."""
    return _figures


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``notifyd run`` on a config file; every daemon started is killed at teardown."""
    started: list[Daemon] = []

    def start(config: Path, **environ: str) -> Daemon:
        workdir = tmp_path / f"daemon-{len(started)}"
        workdir.mkdir()
        instance = Daemon(config, workdir).start(**environ)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "tests/reliability/" in report.nodeid:
        outcome = "" if report.passed else f" ({report.outcome})"
        _figures.add(DURATIONS, **{report.nodeid.rpartition("/")[2]: f"{report.duration:.1f}{outcome}"})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if set(_figures.sections) - {DURATIONS}:
        _figures.write()


def pytest_terminal_summary(terminalreporter) -> None:
    for name in sorted(_figures.sections):
        terminalreporter.write_line("")
        terminalreporter.write(_figures.render(name))
