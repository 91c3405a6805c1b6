"""Where the reliability figures go: an ignored folder, unless NOTIFYD_RESULTS_DIR names another."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.figures import ROOT, Figures, results_path


def test_a_test_run_writes_to_the_ignored_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFYD_RESULTS_DIR", raising=False)
    assert results_path() == ROOT / ".notifyd" / "results" / "reliability.md"


def test_the_environment_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFYD_RESULTS_DIR", str(tmp_path / "out"))
    assert results_path() == tmp_path / "out" / "reliability.md"
    monkeypatch.setenv("NOTIFYD_RESULTS_DIR", "bench/results")
    assert results_path() == ROOT / "bench" / "results" / "reliability.md"


def test_a_run_rewrites_its_sections_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "reliability.md"
    first = Figures(merged=frozenset({"durations"}))
    first.add("kill", lost=0, seconds=1.5)
    first.add("durations", a="1.0")
    first.write(path)
    second = Figures(merged=frozenset({"durations"}))
    second.add("outage", lost=0)
    second.add("durations", b="2.0")
    assert second.write(path) == path
    text = path.read_text()
    assert "## kill" in text and "| seconds | 1.50 |" in text and "## outage" in text
    assert "| a | 1.0 |" in text and "| b | 2.0 |" in text
    assert Figures().write(path) is None  # nothing collected: the file is left alone
