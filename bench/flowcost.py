"""Case 6: what flow control costs when it never holds anything back (issue 22, item 7).

The same no-op channel over the same topic, alternately without flow control and with
a ``rate_limit`` far above any achievable rate plus a ``circuit_breaker`` that never
opens: the gate then admits every attempt at once, and its cost is its bookkeeping.
"""

from __future__ import annotations

from bench import feed
from bench.context import Bench, Row
from bench.daemon import Daemon, watch, write_config
from bench.stats import rate, ratio
from bench.throughput import NOOP, PARTITIONS

UNREACHABLE = {"rate_limit": {"per_second": 10_000_000}, "circuit_breaker": {}}


def channel_rate(bench: Bench, topic: str, count: int, *, flow: dict) -> float:
    """Notifications/s of ``notifyd run`` with one no-op channel over ``topic``, with ``flow`` settings."""
    workdir = bench.directory("flowcost")
    channels = {"bulk": {"topics": [topic], "handler": NOOP, "group_id": bench.name("bulk"), **flow}}
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels), workdir)
    try:
        daemon.start().wait_ready()
        return rate(watch([daemon], count, timeout=300))
    finally:
        daemon.stop()


def case_flow_cost(bench: Bench) -> list[Row]:
    """Throughput with and without an unreachable rate limit and an idle circuit breaker, alternating."""
    count = bench.sizes.bulk
    topic = bench.name("bench.flowcost")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count)
    plain, gated = [], []
    for _ in range(bench.sizes.throughput_runs):
        plain.append(channel_rate(bench, topic, count, flow={}))
        gated.append(channel_rate(bench, topic, count, flow=UNREACHABLE))
    ratios = [ratio(g, p) for g, p in zip(gated, plain)]
    cost = Row("flowcost.ratio", "with flow control / without", ratios, "×", "≥ 0.95")
    cost.met = cost.median >= 0.95
    return [
        Row("flowcost.plain", f"no-op channel, no flow control, {count:,} notifications", plain, "/s"),
        Row("flowcost.gated", "the same with rate_limit 10M/s and circuit_breaker {}", gated, "/s"),
        cost,
    ]
