"""Case 8: healthy notifications with 30% of the others failing for ever, against none failing (issue 20, item 2).

``bench.handlers:Flaky`` fails a fixed 30% of notification ids on every attempt (a
``RetryableError``), chosen by a hash of the id, so they share the keys and partitions
of the rest. Each mode reads a topic of its own holding the same healthy notifications:
with 0% failing the failing ids are left out, with 30% they are among them. The channel's
config is the same in both, and the two modes alternate in order from run to run.

The failing ones go through the delay topics: ``retry_schedule: [1s, 5s]`` writes each to
the 1 s tier, then to the 5 s tier, and after its third attempt to the DLQ. A mode ends
when every healthy one is delivered and every failing one is dead-lettered; the metrics
and the handler's counts then show each was really attempted three times.

Measured three ways. Throughput over a full 4-partition topic (healthy deliveries/s from
the handler's first call to its last healthy one): with deliveries that do nothing, where
the channel is CPU-bound, and with deliveries that wait 50 ms at concurrency 64 and
failures that come at once, where its concurrency bounds it. Latency (``data.sent_at`` to
the handler's call) at a steady 500 notifications a second over 16 partitions, the
failing ones counted in that rate, with ``fetch.wait.max.ms`` 10 as in case 3, while a bare
consumer (``bench.barelatency``, a group of its own) reads the same topic: its latency is
the broker's share, which the failing ones' retry traffic raises too. Not case 3's
1,000/s: with 30% of those failing, Tansu (which serves this machine's whole run on about
one core) spent a whole core on the retries' writes and reads, so the figure measured the
broker; at 500/s it stayed under 0.9 of a core in both modes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench import feed, latency, throughput
from bench.context import Bench, Row
from bench.daemon import Daemon, write_config
from bench.handlers import failing
from bench.stats import median, percentile, ratio

PERCENT = 30
MODES = (0, PERCENT)
KINDS = ("bulk", "io", "steady")
SCHEDULE = ["1s", "5s"]
TIERS = ("1s", "5s")
ATTEMPTS = len(SCHEDULE) + 1
PER_SECOND = 500
TUNED_FETCH = {"fetch.wait.max.ms": 10}
# The network-bound measurement: healthy deliveries wait 50 ms (case 2's provider), failing
# ones fail at once (a refused connection); the bound is IO_CONCURRENCY / IO_WAIT.
IO_WAIT, IO_CONCURRENCY = 0.05, 64
CHECK_PERIOD = 0.5  # a /metrics scrape costs the supervisor CPU; only the end is watched


def is_healthy(index: int) -> bool:
    """Whether the index-th notification of a topic is one ``Flaky`` delivers at the first attempt."""
    return not failing(feed.notification_id(index), PERCENT)


def run_mode(bench: Bench, *, percent: int, kind: str) -> dict[str, Any]:
    """One daemon through one topic of ``percent`` failing notifications; the handler's summary and the metrics.

    ``kind``: ``bulk`` (a full topic, no-op deliveries), ``io`` (a full topic, deliveries
    that wait ``IO_WAIT``) or ``steady`` (``PER_SECOND``, stamped).
    """
    partitions, total, extra = _kind(bench, kind)
    healthy = sum(map(is_healthy, range(total)))
    keep = is_healthy if percent == 0 else (lambda index: True)
    topic, dlq = bench.name("bench.isolation"), bench.name("bench.isolation.dlq")
    feed.create_topics(bench.bootstrap, [topic, dlq], partitions=partitions)
    workdir = bench.directory(f"isolation.{kind}{percent}")
    out = workdir / "flaky.json"
    options = {"path": str(out), "healthy": healthy, "percent": percent, **extra.pop("options", {})}
    channel = {"topics": [topic], "handler": "bench.handlers:Flaky", "group_id": bench.name("isolation"),
               "options": options, "retry_schedule": SCHEDULE, "dlq": dlq, **extra}
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels={"flaky": channel}),
                    workdir)
    if kind != "steady":
        feed.fill(bench.bootstrap, topic, total, keep=keep)
    bare: list[float] = []  # steady only: a bare consumer's latencies over the same topic
    try:
        daemon.start().wait_ready()
        if kind == "steady":
            _wait(lambda: len(daemon.assigned(topic)) == partitions, 30,
                  "the channel was never assigned its partitions")
            bare = _steady_with_bare_reader(bench, topic, healthy if percent == 0 else total, keep)
        failures = total - healthy if percent else 0
        _wait(lambda: _finished(daemon, healthy, failures), 300, f"not every notification settled; see {daemon.log_path}")
        metrics = _metrics(daemon)
    finally:
        daemon.stop()
    return {**json.loads(out.read_text()), **metrics, "failing": failures, "healthy": healthy, "total": total,
            "bare": bare}


def _steady_with_bare_reader(bench: Bench, topic: str, count: int, keep: Callable[[int], bool]) -> list[float]:
    """Feed ``topic`` at the steady rate while a bare consumer reads it too; the bare consumer's latencies.

    The bare consumer (``bench.barelatency``, a group of its own) reads the same records at
    the same moments as the channel, without notifyd: its latency is the broker's share,
    failing notifications' retry traffic on the broker included.
    """
    with latency.BareReader(bench, topic, count, TUNED_FETCH) as reader:
        feed.steady(bench.bootstrap, topic, per_second=PER_SECOND, seconds=bench.sizes.latency_seconds, keep=keep)
        return reader.latencies()


def _kind(bench: Bench, kind: str) -> tuple[int, int, dict[str, Any]]:
    """Partitions, notifications and channel settings of one ``kind`` of measurement."""
    if kind == "steady":
        total = feed.steady_count(per_second=PER_SECOND, seconds=bench.sizes.latency_seconds)
        return latency.PARTITIONS, total, {"consumer_config": TUNED_FETCH}
    if kind == "io":
        return throughput.PARTITIONS, bench.sizes.isolation_bulk // 5, {"concurrency": IO_CONCURRENCY,
                                                                         "options": {"seconds": IO_WAIT}}
    return throughput.PARTITIONS, bench.sizes.isolation_bulk, {}


def _metrics(daemon: Daemon) -> dict[str, float]:
    """Retries written to each tier, notifications dead-lettered, the retries' mean lateness."""
    metrics = {tier: daemon.metric("notifyd_retries_scheduled_total", tier=tier) for tier in TIERS}
    metrics["dead_lettered"] = daemon.metric("notifyd_notifications_dead_lettered_total")
    metrics["lateness"] = ratio(daemon.metric("notifyd_delay_lateness_seconds_sum"),
                                daemon.metric("notifyd_delay_lateness_seconds_count"))
    return metrics


def _finished(daemon: Daemon, healthy: int, failures: int) -> bool:
    return (daemon.delivered() >= healthy
            and daemon.metric("notifyd_notifications_dead_lettered_total") >= failures)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(CHECK_PERIOD)


def case_isolation(bench: Bench) -> list[Row]:
    """Each kind of measurement in each mode; the two modes alternate in order from run to run."""
    results: dict[tuple[str, int], list[dict[str, Any]]] = {(k, p): [] for k in KINDS for p in MODES}
    for run in range(bench.sizes.runs):
        for percent in MODES if run % 2 == 0 else reversed(MODES):
            for kind in KINDS:
                results[kind, percent].append(run_mode(bench, percent=percent, kind=kind))
    bound = f"bound {IO_CONCURRENCY / IO_WAIT:,.0f}/s"
    return (_throughput_rows(results, "bulk", "no-op", f"{1 - PERCENT / 100:.2f} if a failure cost what a delivery does")
            + _throughput_rows(results, "io", f"{IO_WAIT * 1000:g} ms, concurrency {IO_CONCURRENCY}", bound)
            + _latency_rows(results) + _failing_rows(results))


def _throughput_rows(results: dict[tuple[str, int], list[dict[str, Any]]], kind: str, label: str,
                     note: str) -> list[Row]:
    clean, flaky = results[kind, 0], results[kind, PERCENT]
    return [
        Row(f"isolation.{kind}.0", f"{label}: healthy deliveries/s, none failing ({clean[0]['healthy']:,})",
            [r["rate"] for r in clean], "/s"),
        Row(f"isolation.{kind}.{PERCENT}", f"{label}: healthy deliveries/s, {PERCENT}% failing for ever (the same "
            f"{flaky[0]['healthy']:,} among {flaky[0]['total']:,})", [r["rate"] for r in flaky], "/s"),
        Row(f"isolation.{kind}.ratio", f"{label}: healthy throughput, {PERCENT}% failing / none failing",
            [ratio(f["rate"], c["rate"]) for f, c in zip(flaky, clean)], "×", note=note),
    ]


def _latency_rows(results: dict[tuple[str, int], list[dict[str, Any]]]) -> list[Row]:
    rows = []
    for fraction in (0.50, 0.99):
        name = f"p{fraction * 100:.0f}"
        figures = {}
        for percent in MODES:
            label = "none failing" if percent == 0 else f"{PERCENT}% failing for ever"
            figures[percent] = [percentile(_steady_part(r["latencies"]), fraction) * 1000
                                for r in results["steady", percent]]
            rows.append(Row(f"isolation.{name}.{percent}", f"healthy ones' {name}, produce → handler, {label}",
                            figures[percent], "ms"))
        rows.append(Row(f"isolation.{name}.ratio", f"healthy ones' {name}, {PERCENT}% failing / none failing",
                        [ratio(f, c) for f, c in zip(figures[PERCENT], figures[0])], "×"))
    rate = PER_SECOND
    rows[0].note = f"{rate * (1 - PERCENT / 100):,.0f}/s, the failing ids left out"
    rows[1].note = f"{rate:,}/s, {rate * PERCENT // 100:,} of them failing"
    return rows + _bare_rows(results)


def _bare_rows(results: dict[tuple[str, int], list[dict[str, Any]]]) -> list[Row]:
    """The bare consumer's p99 over the same topic in the same window, and what notifyd adds to it, per mode."""
    rows, bare = [], {}
    for percent in MODES:
        label = "none failing" if percent == 0 else f"{PERCENT}% failing for ever"
        runs = results["steady", percent]
        bare[percent] = [percentile(_steady_part(r["bare"]), 0.99) * 1000 for r in runs]
        rows.append(Row(f"isolation.bare.p99.{percent}", f"a bare consumer's p99 over the same topic, {label}",
                        bare[percent], "ms", note="the broker's share (bench.barelatency, a group of its own)"))
        added = [percentile(_steady_part(r["latencies"]), 0.99) * 1000 - b for r, b in zip(runs, bare[percent])]
        rows.append(Row(f"isolation.added.p99.{percent}", f"p99 added by notifyd (channel minus bare), {label}",
                        added, "ms"))
    rows.append(Row("isolation.bare.p99.ratio", f"a bare consumer's p99, {PERCENT}% failing / none failing",
                    [ratio(f, c) for f, c in zip(bare[PERCENT], bare[0])], "×"))
    return rows


def _steady_part(latencies: list[float]) -> list[float]:
    return latencies[int(len(latencies) * latency.WARM_UP):]


def _failing_rows(results: dict[tuple[str, int], list[dict[str, Any]]]) -> list[Row]:
    """What became of the failing notifications, all measurements of a run together: each ratio should be 1.00."""
    runs = [_sum(*kinds) for kinds in zip(*(results[kind, PERCENT] for kind in KINDS))]
    rows = [Row("isolation.failing", f"failing notifications, all measurements of a run ({PERCENT}% of each topic)",
                [r["failing"] for r in runs])]
    for key, label in (("1s", "written to the 1 s delay tier"), ("5s", "written to the 5 s delay tier"),
                       ("dead_lettered", f"dead-lettered after {ATTEMPTS} attempts")):
        rows.append(Row(f"isolation.failing.{key}", f"{label} / failing notifications",
                        [ratio(r[key], r["failing"]) for r in runs], "×"))
    rows.append(Row("isolation.failing.attempts", "handler calls of failing ids / failing notifications",
                    [ratio(r["failed_calls"], r["failing"]) for r in runs], "×",
                    note=f"retries among them: {median([ratio(r['retried_calls'], r['failing']) for r in runs]):.2f}"
                         " a notification"))
    for kind, label in (("bulk", "full topic, no-op"), ("io", f"full topic, {IO_WAIT * 1000:g} ms"),
                        ("steady", f"{PER_SECOND}/s")):
        rows.append(Row(f"isolation.lateness.{kind}", f"retries' mean lateness (attempt minus due time), {label}",
                        [r["lateness"] * 1000 for r in results[kind, PERCENT]], "ms",
                        note="notifyd_delay_lateness_seconds"))
    return rows


def _sum(*results: dict[str, Any]) -> dict[str, float]:
    keys = ("failing", "failed_calls", "retried_calls", "dead_lettered", *TIERS)
    return {key: sum(result[key] for result in results) for key in keys}
