"""The benchmark's pure parts: statistics, the results page, the generated config."""

from __future__ import annotations

import math

import pytest
import yaml

from bench import report, stats
from bench.context import Row
from bench.validate import config_data
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
