"""The benchmark's pure parts (statistics, the results page) and its smallest real case."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench import barelatency, feed, report, stats
from bench.context import Row
from bench.daemon import FAST_GROUP
from bench.validate import config_data
from notifyd.config.loading import check_text

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.kafka
def test_quick_validate_case_writes_a_table_and_a_plot(tmp_path):
    pytest.importorskip("matplotlib")  # the bench extra
    result = subprocess.run([sys.executable, "bench/run.py", "--quick", "--case", "validate", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "latest.md").read_text()
    assert "notifyd validate-config, 200 channels" in page
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.kafka
def test_the_bare_latency_reference_reads_each_stamped_notification(kafka, unique):
    topic = unique("bench.bare")
    kafka.create_topics(topic, partitions=2)
    sent_at = time.time()
    for index in range(20):
        kafka.produce(topic, feed.notification(index, sent_at=sent_at), key=f"user{index}")
    kafka.flush()
    config = {"bootstrap.servers": kafka.bootstrap, "group.id": unique("bench.bare"),
              "auto.offset.reset": "earliest", **FAST_GROUP}
    latencies = barelatency.read_latencies(config, topic, 20, timeout=30)
    assert len(latencies) == 20
    assert all(0 <= latency < time.time() - sent_at + 0.01 for latency in latencies)


@pytest.mark.kafka
def test_steady_produces_exactly_rate_times_seconds(kafka, unique):
    # The bare reference is told the count before the producer starts.
    topic = unique("bench.steady")
    kafka.create_topics(topic)
    assert feed.steady(kafka.bootstrap, topic, per_second=200, seconds=0.5) == 100
    assert len(kafka.read(topic, 100)) == 100
