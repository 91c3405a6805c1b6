"""Case 1 (throughput ceiling against a bare consumer loop) and case 5 (two daemons against one)."""

from __future__ import annotations

import json
import time

from confluent_kafka import Consumer

from bench import feed
from bench.context import Bench, Row
from bench.daemon import FAST_GROUP, Daemon, rss_bytes, watch, write_config
from bench.stats import rate, ratio

PARTITIONS = 4
NOOP = "bench.handlers:Noop"
GATED_NOOP = "bench.handlers:GatedNoop"
# librdkafka's default prefetch (64 MiB) ends a little over 100k notifications in: a lone
# daemon then waits on a fetch halfway through, each of two does not, and two came out
# at 2.4 times one on 2 cores.
WHOLE_TOPIC_PREFETCH = {"queued.max.messages.kbytes": 2_097_151, "queued.min.messages": 10_000_000}


def bare_loop(bootstrap: str, topic: str, count: int, *, timeout: float = 120.0) -> float:
    """Notifications/s of the plainest consumer: ``consume`` + ``json.loads`` + ``store_offsets``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare.{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.offset.store": False, **FAST_GROUP})
    consumer.subscribe([topic])
    seen, first = 0, None
    deadline = time.monotonic() + timeout
    try:
        while seen < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    json.loads(message.value())
                    consumer.store_offsets(message)
                    seen += 1
            if first is None and seen:
                first = (time.monotonic(), seen)  # like the daemon's figure: from the first batch on
        return (seen - first[1]) / (time.monotonic() - first[0]) if first and seen >= count else float("nan")
    finally:
        consumer.close()


def notifyd_rate(bench: Bench, topic: str, count: int, *, peaks: dict[str, int]) -> float:
    """Notifications/s of ``notifyd run`` with one no-op channel over ``topic``; records peak RSS."""
    workdir = bench.directory("throughput")
    channels = {"bulk": {"topics": [topic], "handler": NOOP, "group_id": bench.name("bulk")}}
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels), workdir)
    try:
        daemon.start().wait_ready()
        pids = {"supervisor": daemon.process.pid, "channel": daemon.channel_pids()[0]}

        def probe() -> None:
            for role, pid in pids.items():
                peaks[role] = max(peaks.get(role, 0), rss_bytes(pid))

        return rate(watch([daemon], count, timeout=300, probe=probe))
    finally:
        daemon.stop()


def case_throughput(bench: Bench) -> list[Row]:
    """200k notifications, the bare loop and notifyd over the same topic in the same run."""
    count = bench.sizes.bulk
    topic = bench.name("bench.bulk")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count)
    bare, daemon, peaks = [], [], {}
    for _ in range(bench.sizes.throughput_runs):
        bare.append(bare_loop(bench.bootstrap, topic, count))
        daemon.append(notifyd_rate(bench, topic, count, peaks=peaks))
    ratios = [ratio(d, b) for d, b in zip(daemon, bare)]
    ceiling = Row("throughput.ratio", "notifyd / bare loop", ratios, "×", "≥ 0.8")
    ceiling.met = ceiling.median >= 0.8
    return [
        Row("throughput.bare", f"bare confluent-kafka loop, {count:,} notifications", bare, "/s"),
        Row("throughput.notifyd", "notifyd run, one channel, no-op handler", daemon, "/s"),
        ceiling,
        Row("footprint.load.supervisor", "RSS under case 1, supervisor (peak)", [peaks.get("supervisor", 0) / 2**20],
            "MiB"),
        Row("footprint.load.channel", "RSS under case 1, channel process (peak)", [peaks.get("channel", 0) / 2**20],
            "MiB"),
    ]


def scaled_rate(bench: Bench, daemons: int, count: int) -> float:
    """Notifications/s of ``daemons`` daemons with the same config sharing one channel's partitions.

    The daemons join and settle on an empty topic, and their handler holds its first call
    until the topic is full: with the producer still running, a daemon as fast as the
    producer would measure the producer. Meanwhile each consumer fetches all of its share
    (``WHOLE_TOPIC_PREFETCH``), so the figure is the daemons' own work, as on hosts of
    their own, and not the broker's, which shares these cores.
    """
    topic, group = bench.name("bench.scale"), bench.name("scale")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    gate = bench.directory("scale") / "gate"
    channels = {"shared": {"topics": [topic], "handler": GATED_NOOP, "options": {"gate": str(gate)},
                           "group_id": group, "consumer_config": WHOLE_TOPIC_PREFETCH}}
    running: list[Daemon] = []
    try:
        for _ in range(daemons):
            workdir = bench.directory("scale")
            config = write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels)
            running.append(Daemon(config, workdir).start())
        for daemon in running:
            daemon.wait_ready()
        _wait_balanced(running, PARTITIONS)
        feed.fill(bench.bootstrap, topic, count)
        gate.touch()
        return rate(watch(running, count, timeout=300))
    finally:
        for daemon in running:
            daemon.stop()


def _wait_balanced(daemons: list[Daemon], partitions: int, timeout: float = 60.0) -> None:
    """Until every daemon owns some partitions and together they own them all, once each."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [daemon.assigned() for daemon in daemons]
        if all(owned) and sum(map(len, owned)) == partitions == len(set().union(*owned)):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the group did not settle: {[sorted(d.assigned()) for d in daemons]}")


def case_scaling(bench: Bench) -> list[Row]:
    """The same bulk through one daemon, then through two with the same config."""
    one, two = [], []
    for _ in range(bench.sizes.runs):
        one.append(scaled_rate(bench, 1, bench.sizes.scale_bulk))
        two.append(scaled_rate(bench, 2, bench.sizes.scale_bulk))
    ratios = [ratio(b, a) for a, b in zip(one, two)]
    return [
        Row("scale.one", f"one daemon, {bench.sizes.scale_bulk:,} notifications, {PARTITIONS} partitions", one, "/s"),
        Row("scale.two", "two daemons, same config and group", two, "/s"),
        Row("scale.ratio", "two daemons / one", ratios, "×", note="2 cores; the topic was full before either read"),
    ]
