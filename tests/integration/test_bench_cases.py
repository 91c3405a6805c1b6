"""The benchmark's smallest real cases, against the real test broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import barelatency, feed
from bench.daemon import FAST_GROUP

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.kafka
def test_fill_and_steady_leave_out_what_keep_refuses(kafka, unique):
    topic = unique("bench.keep")
    kafka.create_topics(topic)
    assert feed.fill(kafka.bootstrap, topic, 10, keep=lambda index: index % 2 == 0) == 5
    assert feed.steady(kafka.bootstrap, topic, per_second=200, seconds=0.1, keep=lambda index: index < 5) == 5
    ids = sorted(json.loads(message.value())["id"] for message in kafka.read(topic, 10))
    assert ids == sorted([f"n-{index}" for index in (0, 2, 4, 6, 8)] + [f"n-{index}" for index in range(5)])
