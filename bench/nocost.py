"""Case 9: no cost when nothing fails (issue 20.8): case 1's no-op channel, this tree against a baseline.

The baseline is a git ref (``--baseline-ref``, ``BASELINE_REF`` by default: main just
before the retry tiers landed) checked out by the case into a temporary ``git worktree``
and removed afterwards. Its notifyd runs with the same venv, its tree first on PYTHONPATH
and as the working directory. Both trees read the same topic on the same broker with the
same YAML and the same handler code (this tree's ``bench/handlers.py``, copied over the
baseline's), and each handler times itself from its first call to its N-th.

Both are given a channel's read-ahead in the YAML (``READ_AHEAD``): the baseline's
default was librdkafka's, which reads Tansu at about half the rate (case 1), so the
figure would measure that default and not the code. Each round runs every style once in
each tree, the two trees in turn and in the other order the next round, so both see the
same load from whatever else shares the cores. The figure is HEAD's rate over the
baseline's, per round, and its median.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import feed
from bench.context import Bench, Row
from bench.daemon import ROOT
from bench.stats import median, ratio
from bench.throughput import PARTITIONS, READ_AHEAD, STYLES, notifyd_rate

BASELINE_REF = "9abe566"  # "Merge branch 'failover'": main's last commit before "Merge retries on Kafka delay topics"
TARGET = 0.95  # within 5% of the baseline's throughput
TREES = ("head", "baseline")
# The same YAML for both trees: the ledger off on the channel (the baseline refuses a top-level
# ``ledger: false``; its ledger was off by default), and a channel's read-ahead (above).
CHANNEL = {"ledger": False, "consumer_config": READ_AHEAD}


@contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    """A detached ``git worktree`` of ``ref`` with this tree's bench handlers, removed on exit."""
    scratch = Path(tempfile.mkdtemp(prefix="notifyd-baseline-"))
    tree = scratch / "tree"
    try:
        _git("worktree", "add", "--detach", "--quiet", str(tree), ref)
        try:
            shutil.copyfile(ROOT / "bench" / "handlers.py", tree / "bench" / "handlers.py")
            yield tree
        finally:
            _git("worktree", "remove", "--force", str(tree))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class GitError(Exception):
    """git could not make or remove the baseline's worktree."""


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120,
                              check=False)
    except OSError as exc:
        raise GitError(f"git: {exc}") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])}: {done.stderr.strip()}")
    return done.stdout.strip()


def round_order(round_index: int, style_index: int) -> tuple[str, ...]:
    """Which tree runs first: HEAD and the baseline take turns from style to style and from round to round."""
    return TREES if (round_index + style_index) % 2 == 0 else TREES[::-1]


def per_round_ratios(head: list[float], baseline: list[float]) -> list[float]:
    """HEAD's figure over the baseline's, round by round (NaN where either is missing)."""
    return [ratio(h, b) for h, b in zip(head, baseline)]


def style_rows(style: str, label: str, runs: dict[str, list[tuple[float, float]]], ref: str) -> list[Row]:
    """HEAD's and the baseline's rates, their ratio against ``TARGET``, and the ratio of CPU a notification."""
    head, base = runs["head"], runs["baseline"]
    share = Row(f"nocost.ratio.{style}", f"{label}: HEAD / {ref}", per_round_ratios([r[0] for r in head],
                                                                                  [r[0] for r in base]),
                "×", f"≥ {TARGET:g}")
    share.met = share.median >= TARGET
    cpu = Row(f"nocost.cpu.{style}", f"{label}: CPU a notification, HEAD / {ref}",
              per_round_ratios([r[1] for r in head], [r[1] for r in base]), "×",
              note=f"HEAD {median([r[1] for r in head]) * 1e6:.2f} µs, {ref} {median([r[1] for r in base]) * 1e6:.2f} µs")
    return [Row(f"nocost.head.{style}", f"{label}, HEAD", [r[0] for r in head], "/s"),
            Row(f"nocost.baseline.{style}", f"{label}, {ref}", [r[0] for r in base], "/s"),
            share, cpu]


def case_nocost(bench: Bench) -> list[Row]:
    """Each handler style in HEAD and in the baseline, alternating, over one full topic."""
    ref = bench.baseline_ref or BASELINE_REF
    count, rounds = bench.sizes.bulk, bench.sizes.throughput_runs
    topic = bench.name("bench.nocost")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count)
    runs = {style: {tree: [] for tree in TREES} for style in STYLES}
    load: list[float] = []
    try:
        with baseline_tree(ref) as baseline:
            roots = {"head": ROOT, "baseline": baseline}
            for index in range(rounds):
                load.append(os.getloadavg()[0])
                for position, style in enumerate(STYLES):
                    for tree in round_order(index, position):
                        runs[style][tree].append(notifyd_rate(bench, topic, count, style=style, peaks={},
                                                              root=roots[tree], channel=CHANNEL))
    except GitError as exc:  # no git, or not the ref (a shallow clone): the other cases' results still count
        return [Row("nocost.skipped", f"not run: {exc}", [], "")]
    rows = [Row("nocost.load", f"load average (1 min) at each round's start, {count:,} notifications a run",
                load, "")]
    for style, (_handler, label, _target) in STYLES.items():
        rows += style_rows(style, label, runs[style], ref)
    return rows
