"""The suite's figures: printed after the run and kept in ``bench/results/reliability.md``.

Each scenario owns one ``## name`` section; a run rewrites the sections of the scenarios
it ran and keeps the others, so running one file does not erase the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.md"
TITLE = "# Reliability suite: figures of the last run of each scenario"
INTRO = ("Written by `tests/reliability` (pytest -m reliability). Lost must be 0 in every row;\n"
         "duplicates are at-least-once redeliveries; times are wall-clock seconds on the test machine.")


class Figures:
    """Rows of ``name: value`` per scenario, collected during a session."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, str]] = {}

    def add(self, scenario: str, **values: object) -> None:
        section = self.sections.setdefault(scenario, {})
        for name, value in values.items():
            section[name] = f"{value:.2f}" if isinstance(value, float) else str(value)

    def render(self, scenario: str) -> str:
        rows = "\n".join(f"| {name} | {value} |" for name, value in self.sections[scenario].items())
        return f"## {scenario}\n\n| figure | value |\n|---|---|\n{rows}\n"

    def write(self, path: Path = RESULTS) -> None:
        """Merge this session's sections into ``path``, sections sorted by name."""
        if not self.sections:
            return
        sections = _read_sections(path)
        sections.update({name: self.render(name) for name in self.sections})
        body = "\n".join(sections[name] for name in sorted(sections))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{TITLE}\n\n{INTRO}\n\n{body}")


def _read_sections(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    return {part.splitlines()[0][3:].strip(): part.rstrip("\n") + "\n" for part in parts if part.startswith("## ")}
