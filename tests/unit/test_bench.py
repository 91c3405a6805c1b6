"""The benchmark's pure parts: statistics, the results page, the generated config."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest
import yaml

from bench import feed, isolation, report, stats
from bench.context import Row
from bench.handlers import Flaky, failing
from bench.validate import config_data
from notifyd.api import Notification, RetryableError
from notifyd.config.loading import check_text


def test_median_and_percentile():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert math.isnan(stats.median([]))
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 0.5) == pytest.approx(50.5)
    assert stats.percentile(values, 0.99) == pytest.approx(99.01)
    assert stats.percentile([7.0], 0.99) == 7.0


def test_rate_counts_from_the_first_progress_only():
    # Start-up (count 0) is left out: 1,000 items between t=2 and t=3.
    samples = [(0.0, 0.0), (1.0, 0.0), (2.0, 500.0), (2.5, 1000.0), (3.0, 1500.0)]
    assert stats.rate(samples) == pytest.approx(1000.0)
    assert math.isnan(stats.rate([(0.0, 0.0), (1.0, 10.0)]))


def test_ratio_never_divides_by_zero():
    assert stats.ratio(8.0, 10.0) == 0.8
    assert math.isnan(stats.ratio(1.0, 0.0))


def test_row_median_ignores_runs_that_failed():
    assert Row("k", "figure", [1.0, float("nan"), 3.0]).median == 2.0


def test_markdown_page_quotes_medians_runs_targets_and_the_machine():
    rows = [Row("throughput.notifyd", "notifyd", [30_000.0, 28_000.0, 29_500.5], "/s"),
            Row("throughput.ratio", "notifyd / bare loop", [0.2, 0.25, 0.3], "×", "≥ 0.8", met=False)]
    page = report.render_markdown({"1. Throughput ceiling": rows}, {"cpu": "Test CPU", "cores": "2"},
                                  command="bench/run.py --quick")
    assert "- **cpu**: Test CPU" in page
    assert "| notifyd | 29,500 /s | 30,000, 28,000, 29,500 |  |  |" in page
    assert "| notifyd / bare loop | 0.25 × | 0.20, 0.25, 0.30 | ≥ 0.8 | **no** |" in page
    assert "![benchmark figures](latest.png)" in page


def test_numbers_read_well():
    assert report.number(float("nan")) == "n/a"
    assert report.number(123456.7, "/s") == "123,457"
    assert report.number(42.25) == "42.2"
    assert report.number(0.0456) == "0.046"


def test_the_200_channel_file_is_valid():
    text = yaml.safe_dump(config_data(), sort_keys=False)
    config, findings = check_text(text, "bench.yaml", {})
    assert findings == []
    assert len(config.channels) == 200


def test_a_fixed_share_of_ids_fails_and_the_case_agrees_with_the_handler():
    ids = [feed.notification_id(index) for index in range(10_000)]
    share = sum(failing(i, 30) for i in ids) / len(ids)
    assert 0.28 < share < 0.32
    assert [failing(i, 30) for i in ids] == [failing(i, 30) for i in ids]  # the same in every process
    assert not any(failing(i, 0) for i in ids)
    assert all(isolation.is_healthy(index) != failing(ids[index], isolation.PERCENT) for index in range(1000))


def test_flaky_fails_its_ids_every_time_and_reports_the_healthy_ones(tmp_path):
    ids = [feed.notification_id(index) for index in range(200)]
    bad = next(i for i in ids if failing(i, 30))
    good = [i for i in ids if not failing(i, 30)][:5]
    handler = Flaky(path=str(tmp_path / "out.json"), healthy=5, percent=30)

    async def deliver() -> None:
        for attempt in (1, 2, 3):
            with pytest.raises(RetryableError):
                await handler.send(Notification(id=bad, channel="c", attempt=attempt))
        for notification_id in good:
            await handler.send(Notification(id=notification_id, channel="c", data={"sent_at": time.time() - 0.5}))

    asyncio.run(deliver())
    handler.close()
    summary = json.loads((tmp_path / "out.json").read_text())
    assert (summary["delivered"], summary["failed_calls"], summary["retried_calls"]) == (5, 3, 2)
    assert summary["rate"] > 0
    assert len(summary["latencies"]) == 5 and all(0.5 <= latency < 5 for latency in summary["latencies"])


def test_nocost_alternates_the_trees_and_compares_round_by_round():
    from bench import nocost

    orders = [[nocost.round_order(r, s)[0] for s in range(3)] for r in range(2)]
    assert orders == [["head", "baseline", "head"], ["baseline", "head", "baseline"]]
    assert nocost.per_round_ratios([90.0, 100.0], [100.0, 0.0])[0] == 0.9
    assert math.isnan(nocost.per_round_ratios([90.0, 100.0], [100.0, 0.0])[1])
    runs = {"head": [(96.0, 2e-6), (90.0, 2e-6), (99.0, 2e-6)], "baseline": [(100.0, 1e-6)] * 3}
    head, base, share, cpu = nocost.style_rows("inline", "on the loop", runs, "abc123")
    assert (head.runs, base.median) == ([96.0, 90.0, 99.0], 100.0)
    assert share.median == pytest.approx(0.96) and share.met and share.target == "≥ 0.95"
    assert cpu.runs == [2.0, 2.0, 2.0] and "abc123 1.00 µs" in cpu.note
    runs["head"][0] = (94.0, 2e-6)
    assert not nocost.style_rows("inline", "on the loop", runs, "abc123")[2].met


def test_nocost_without_its_baseline_ref_reports_why_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import tempfile

    from bench import nocost

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(nocost.GitError, match="worktree add"), nocost.baseline_tree("0" * 40):
        pass
    assert list(tmp_path.iterdir()) == []
