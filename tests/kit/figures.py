"""The reliability suite's figures: printed after the run and written to ``reliability.md``.

The file goes to the folder named by ``NOTIFYD_RESULTS_DIR``, by default the ignored
``.notifyd/results/``, so a test run leaves the working tree clean; ``make bench`` names
``bench/results`` to refresh the committed copy. Each scenario owns one ``## name``
section; a run rewrites the sections of the scenarios it ran and keeps the others, so
running one file does not erase the rest. Sections named in ``merged`` (per-test
durations) are updated row by row instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = "NOTIFYD_RESULTS_DIR"
FILE_NAME = "reliability.md"
TITLE = "# Reliability suite: figures of the last run of each scenario"
INTRO = ("Written by the reliability suite, `tests/reliability`: `make bench` refreshes the committed copy in\n"
         "bench/results, a plain test run writes .notifyd/results. Lost must be 0 in every row; duplicates are\n"
         "at-least-once redeliveries; times are wall-clock seconds on the test machine.")


class Figures:
    """Rows of ``name: value`` per scenario, collected during a session."""

    def __init__(self, *, merged: frozenset[str] = frozenset()) -> None:
        self.sections: dict[str, dict[str, str]] = {}
        self.merged = merged

    def add(self, scenario: str, **values: object) -> None:
        section = self.sections.setdefault(scenario, {})
        for name, value in values.items():
            section[name] = f"{value:.2f}" if isinstance(value, float) else str(value)

    def render(self, scenario: str) -> str:
        return _render(scenario, self.sections[scenario])

    def write(self, path: Path | None = None) -> Path | None:
        """Merge this session's sections into ``path`` (default: ``results_path()``); return where."""
        if not self.sections:
            return None
        path = path or results_path()
        sections = _read_sections(path)
        for name, rows in self.sections.items():
            sections[name] = {**sections.get(name, {}), **rows} if name in self.merged else dict(rows)
        body = "\n".join(_render(name, sections[name]) for name in sorted(sections))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{TITLE}\n\n{INTRO}\n\n{body}")
        return path


def results_path() -> Path:
    """``reliability.md`` in ``$NOTIFYD_RESULTS_DIR`` (relative to the repository), else in ``.notifyd/results``."""
    return ROOT / os.environ.get(RESULTS_DIR, ".notifyd/results") / FILE_NAME


def _render(scenario: str, rows: dict[str, str]) -> str:
    table = "\n".join(f"| {name} | {value} |" for name, value in rows.items())
    return f"## {scenario}\n\n| figure | value |\n|---|---|\n{table}\n"


def _read_sections(path: Path) -> dict[str, dict[str, str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    sections = {}
    for part in re.split(r"^(?=## )", text, flags=re.MULTILINE):
        if part.startswith("## "):
            lines = part.splitlines()
            rows = [line.strip("| ").split(" | ", 1) for line in lines[1:] if line.startswith("| ")]
            sections[lines[0][3:].strip()] = {row[0]: row[1] for row in rows[1:] if len(row) == 2}
    return sections
