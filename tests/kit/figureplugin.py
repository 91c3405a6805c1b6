"""The reliability suite's figures as a pytest plugin: the fixture scenarios add them to, per-test
durations, printed after the run and written to the results folder (tests/kit/figures.py).

A plugin of the top conftest, not the suite's own conftest, because under xdist (``make test``)
the controller loads only the top one, and it is the controller that prints and writes: the
worker that ran the scenarios hands their figures over when it finishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.figures import Figures

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
        # From the location, not the node id: xdist's --dist loadgroup appends the group to that.
        path, _line, test = report.location
        _figures.add(DURATIONS, **{f"{Path(path).name}::{test}": f"{report.duration:.1f}{outcome}"})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: its controller writes and prints
        session.config.workeroutput["reliability_figures"] = _figures.sections
    elif set(_figures.sections) - {DURATIONS}:
        _written.append(_figures.write())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist's controller: take a finished worker's scenario figures (the durations it has already)."""
    sections = getattr(node, "workeroutput", {}).get("reliability_figures", {})
    _figures.sections.update({name: rows for name, rows in sections.items() if name != DURATIONS})


def pytest_terminal_summary(terminalreporter) -> None:
    for name in sorted(_figures.sections):
        terminalreporter.write_line("")
        terminalreporter.write(_figures.render(name))
    for path in _written:
        terminalreporter.write_line(f"reliability figures written to {path}")
