"""Case 1 (each handler style against a bare consumer loop) and case 5 (two daemons against one).

Case 1 times every figure the same way: from the first message handled to the N-th, the
bare loop in its own loop and notifyd's no-op handlers in themselves (``TimedNoop``).
notifyd runs with the delivery ledger off in both cases (``bench.daemon.write_config``): they
compare the delivery path with a bare loop; case 6 (``bench/ledger.py``) measures the ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from bench import feed
from bench.context import Bench, Row
from bench.daemon import FAST_GROUP, ROOT, SAMPLE_PERIOD, Daemon, rss_bytes, watch, write_config
from bench.stats import median, rate, ratio
from notifyd.config.kafka import prefetch_defaults
from notifyd.config.settings import ChannelSettings
from notifyd.records.notification import parse_notification

PARTITIONS = 4
NOOP = "bench.handlers:Noop"
GATED_NOOP = "bench.handlers:GatedNoop"
# Case 1's handler styles: name -> (handler, how the table names it, target ratio to the bare loop).
STYLES = {
    "inline": ("bench.handlers:TimedNoop", "sync handler, blocking = False (on the loop)", 0.9),
    "coroutine": ("bench.handlers:TimedAsyncNoop", "async def send", 0.8),
    "pool": ("bench.handlers:TimedBlockingNoop", "plain sync handler (thread pool)", 0.5),
}
# Read in turn with the styles: the bare loop with notifyd's parse in place of json.loads. Its ratio
# tells how much of a style's gap to the bare loop is parsing, and how much the rest of the path.
PARSE_ONLY = "parse"
MEMORY_CONCURRENCY, MEMORY_WAIT, MEMORY_COUNT, MEMORY_LIMIT_MIB = 1000, 0.05, 50_000, 60
# librdkafka's default prefetch (64 MiB) ends a little over 100k notifications in: a lone
# daemon then waits on a fetch halfway through, each of two does not, and two came out
# at 2.4 times one on 2 cores.
# A case-1 channel's librdkafka read-ahead (default concurrency), which the bare loop is also
# run with: on Tansu a small queue is read ~2x as fast, and only then is the ratio notifyd's own cost.
READ_AHEAD = prefetch_defaults(ChannelSettings.concurrency)
WHOLE_TOPIC_PREFETCH = {"queued.max.messages.kbytes": 2_097_151, "queued.min.messages": 10_000_000}


def bare_loop(bootstrap: str, topic: str, count: int, *, timeout: float = 120.0,
              settings: dict[str, Any] | None = None,
              decode: Callable[[bytes], Any] = json.loads) -> tuple[float, float]:
    """Notifications/s of the plainest consumer (``consume`` + ``json.loads`` + ``store_offsets``), first to last.

    Also the CPU seconds a notification, of this whole process, as ``TimedNoop`` measures them.
    ``settings`` go over librdkafka's defaults (``READ_AHEAD``: a channel's read-ahead);
    ``decode`` reads each value in place of ``json.loads``.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare.{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.offset.store": False, **FAST_GROUP,
                         **(settings or {})})
    consumer.subscribe([topic])
    seen, first, first_cpu = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout
    try:
        while seen < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    decode(message.value())
                    consumer.store_offsets(message)
                    seen += 1
                    if seen == 1:  # timed like TimedNoop: from the first message to the count-th
                        first, first_cpu = time.perf_counter(), time.process_time()
        if seen < count:
            return float("nan"), float("nan")
        return (seen - 1) / (time.perf_counter() - first), (time.process_time() - first_cpu) / (seen - 1)
    finally:
        consumer.close()


def notifyd_rate(bench: Bench, topic: str, count: int, *, style: str, peaks: dict[str, int], root: Path = ROOT,
                 channel: dict[str, Any] | None = None) -> tuple[float, float]:
    """Notifications/s of ``notifyd run``, one channel of a ``STYLES`` handler, timed by the handler itself.

    Also the channel process's CPU seconds a notification. ``root``: the tree whose notifyd
    runs; ``channel``: more settings of the channel (one that sets ``ledger`` itself gets no
    top-level ``ledger`` key).
    """
    workdir = bench.directory(f"throughput-{style}")
    result = workdir / "rate"
    channel = channel or {}
    channels = {"bulk": {"topics": [topic], "handler": STYLES[style][0], "group_id": bench.name("bulk"),
                         "options": {"path": str(result), "count": count}, **channel}}
    config = write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels,
                          ledger=None if "ledger" in channel else False)
    daemon = Daemon(config, workdir, root=root)
    try:
        daemon.start().wait_ready()
        probe = _rss_probe(daemon, peaks)
        deadline = time.monotonic() + 300
        while not result.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {style} handler did not reach {count} calls; see {daemon.log_path}")
            probe()
            time.sleep(SAMPLE_PERIOD)
        rate, cpu = result.read_text().split()
        return float(rate), float(cpu)
    finally:
        daemon.stop()


def _rss_probe(daemon: Daemon, peaks: dict[str, int]) -> Callable[[], None]:
    """A function that records the supervisor's and the channel process's peak RSS in ``peaks``."""
    pids = {"supervisor": daemon.process.pid, "channel": daemon.channel_pids()[0]}

    def probe() -> None:
        for role, pid in pids.items():
            peaks[role] = max(peaks.get(role, 0), rss_bytes(pid))

    return probe


def coroutine_memory(bench: Bench, topic: str, count: int) -> tuple[float, float]:
    """Peak and steady RSS (MiB) of a channel process with ``MEMORY_CONCURRENCY`` coroutines waiting at once.

    Steady is the median of the samples taken while it delivers, every ``SAMPLE_PERIOD``.
    """
    workdir = bench.directory("memory")
    channels = {"wide": {"topics": [topic], "handler": "bench.handlers:Wait", "options": {"seconds": MEMORY_WAIT},
                         "concurrency": MEMORY_CONCURRENCY, "group_id": bench.name("wide")}}
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels), workdir)
    samples: list[int] = []
    try:
        daemon.start().wait_ready()
        pid = daemon.channel_pids()[0]
        watch([daemon], count, timeout=300, probe=lambda: samples.append(rss_bytes(pid)))
        return max(samples) / 2**20, median(samples) / 2**20
    finally:
        daemon.stop()


def case_throughput(bench: Bench) -> list[Row]:
    """The bare loop and each handler style over the same topic, each style between two runs of the bare loop.

    This machine's speed drifts, for both sides alike: the bare loop alone has read 214k
    and 307k notifications/s a minute apart. So a style is compared with the mean of the
    bare runs just before and just after it, not with one bare run minutes away.
    """
    count = bench.sizes.bulk
    topic = bench.name("bench.bulk")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count)
    bare = [bare_loop(bench.bootstrap, topic, count, settings=READ_AHEAD)]
    rates: dict[str, list[tuple[float, float]]] = {style: [] for style in [*STYLES, PARSE_ONLY]}
    flanks: dict[str, list[tuple[float, float]]] = {style: [] for style in rates}  # the bare runs around each
    peaks: dict[str, int] = {}
    for run in range(bench.sizes.throughput_runs):
        for style in _rotated([*STYLES, PARSE_ONLY], run):  # no style always runs first or last
            rates[style].append(_read(bench, topic, count, style=style, peaks=peaks))
            bare.append(bare_loop(bench.bootstrap, topic, count, settings=READ_AHEAD))
            flanks[style].append(_mean_pair(bare[-2], bare[-1]))
    rows = [Row("throughput.bare", f"bare confluent-kafka loop, {count:,} notifications, notifyd's read-ahead",
                [b[0] for b in bare], "/s", note="before the first read and after each, the parse-only one too"),
            Row("throughput.bare.cpu", "bare loop, CPU a notification", [b[1] * 1e6 for b in bare], "µs")]
    for style, (_handler, label, target) in STYLES.items():
        rows += _style_rows(style, label, target, rates[style], flanks[style])
    rows.append(Row("throughput.ratio.parse", "bare loop with notifyd's parse in place of json.loads / bare loop",
                    [ratio(r[0], b[0]) for r, b in zip(rates[PARSE_ONLY], flanks[PARSE_ONLY])], "×",
                    note="read in turn with the styles; the rest of a style's gap is its delivery path"))
    plain = bare_loop(bench.bootstrap, topic, count)[0]
    rows.append(Row("throughput.bare.defaults", "bare loop with librdkafka's default read-ahead", [plain], "/s",
                    note=f"notifyd's: {median([b[0] for b in bare]) / plain:.2f}× as fast"))
    load = [Row(f"footprint.load.{role}", f"RSS under case 1, {role} (peak)", [peaks.get(role, 0) / 2**20], "MiB")
            for role in ("supervisor", "channel")]
    return [*rows, *_memory_rows([coroutine_memory(bench, topic, min(count, MEMORY_COUNT))]), *load]


def case_memory(bench: Bench) -> list[Row]:
    """Case 1's memory rows alone, once a run: each run reads ``MEMORY_COUNT`` of a full topic in a group of its own."""
    topic = bench.name("bench.memory")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, bench.sizes.bulk)
    count = min(bench.sizes.bulk, MEMORY_COUNT)
    return _memory_rows([coroutine_memory(bench, topic, count) for _ in range(bench.sizes.runs)])


def _memory_rows(runs: list[tuple[float, float]]) -> list[Row]:
    """The coroutine channel's peak and steady RSS of each run, each against ``MEMORY_LIMIT_MIB``."""
    what = f"RSS of a channel process, {MEMORY_CONCURRENCY:,} coroutines waiting {MEMORY_WAIT * 1000:g} ms"
    rows = [Row("footprint.coroutines.channel", f"{what} (peak)", [r[0] for r in runs], "MiB",
                f"≤ {MEMORY_LIMIT_MIB}"),
            Row("footprint.coroutines.channel.steady", f"{what} (steady: median while delivering)",
                [r[1] for r in runs], "MiB", f"≤ {MEMORY_LIMIT_MIB}")]
    for row in rows:
        row.met = row.median <= MEMORY_LIMIT_MIB
    return rows


def _read(bench: Bench, topic: str, count: int, *, style: str, peaks: dict[str, int]) -> tuple[float, float]:
    """One read of the topic by ``style``: a ``STYLES`` channel, or the bare loop parsing as a channel does."""
    if style == PARSE_ONLY:
        return bare_loop(bench.bootstrap, topic, count, settings=READ_AHEAD, decode=_parse)
    return notifyd_rate(bench, topic, count, style=style, peaks=peaks)


def _parse(value: bytes) -> Any:
    return parse_notification(value, channel="bare")


def _mean_pair(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return (before[0] + after[0]) / 2, (before[1] + after[1]) / 2


def _style_rows(style: str, label: str, target: float, runs: list[tuple[float, float]],
                bare: list[tuple[float, float]]) -> list[Row]:
    """Rate, ratio to the bare loop around each run (``bare``), and CPU a notification, of one handler style."""
    key = "" if style == "inline" else f".{style}"
    share = Row(f"throughput.ratio{key}", f"{label} / bare loop (the runs before and after)",
                [ratio(r[0], b[0]) for r, b in zip(runs, bare)], "×", f"≥ {target:g}")
    share.met = share.median >= target
    bound = ratio(median([b[1] for b in bare]), median([r[1] for r in runs]))  # the ratio where CPU is the limit
    cpu = Row(f"throughput.cpu{key}", f"{label}, CPU a notification", [r[1] * 1e6 for r in runs], "µs",
              note=f"the bare loop's is {bound:.2f} of it")
    return [Row(f"throughput.notifyd{key}", f"notifyd run, one channel, ledger off, no-op {label}",
                [r[0] for r in runs], "/s"),
            share, cpu]


def _rotated(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


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
        _wait_balanced(running, topic, PARTITIONS)
        feed.fill(bench.bootstrap, topic, count)
        gate.touch()
        return rate(watch(running, count, timeout=300))
    finally:
        for daemon in running:
            daemon.stop()


def _wait_balanced(daemons: list[Daemon], topic: str, partitions: int, timeout: float = 60.0) -> None:
    """Until every daemon owns some of ``topic``'s partitions and together they own them all, once each."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [daemon.assigned(topic) for daemon in daemons]
        if all(owned) and sum(map(len, owned)) == partitions == len(set().union(*owned)):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the group did not settle: {[sorted(d.assigned(topic)) for d in daemons]}")


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
