"""Case 2: an I/O-bound handler (an HTTP call answered after 50 ms) at several concurrency limits.

Each level runs twice: through notifyd's own ``webhook`` handler (a signed JSON POST over
aiohttp) against the slow server, and through ``Wait`` (a bare 50 ms ``asyncio.sleep``),
which separates what the daemon's scheduling achieves from what the HTTP client adds.
"""

from __future__ import annotations

import base64
import math
import subprocess
import sys

from bench import feed
from bench.context import Bench, Row
from bench.daemon import ROOT, SAMPLE_PERIOD, Daemon, watch, write_config
from bench.stats import rate, ratio
from notifyd.tools.devbroker import free_port

DELAY = 0.05
PARTITIONS = 4
PROBE_SECONDS, PROBE_MAX = 0.5, 500
# Signed like a production webhook, so the figure includes the HMAC of every body.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"notifyd-bench-signing-key-32byte").decode()


def start_server(port: int, delay: float = DELAY) -> subprocess.Popen[bytes]:
    """The slow HTTP server in its own process; returns once it listens."""
    server = subprocess.Popen([sys.executable, "-m", "bench.slowserver", str(port), str(delay)], cwd=ROOT,
                              stdout=subprocess.PIPE)
    if server.stdout.readline().strip() != b"listening":
        server.kill()
        raise RuntimeError("the slow HTTP server did not start")
    return server


def one_run(bench: Bench, url: str, instant_url: str) -> dict[str, float]:
    """One daemon with a channel per handler and level; each channel's topic filled and drained in turn.

    ``ceiling`` is the webhook channel at the top level against a server that answers at
    once: what the HTTP handler can do at all in this process, where ``concurrency / 50 ms``
    stops being the limit.
    """
    handlers = {"http": ("webhook", {"url": url, "secret": WEBHOOK_SECRET}),
                "sleep": ("bench.handlers:Wait", {"seconds": DELAY}),
                "ceiling": ("webhook", {"url": instant_url, "secret": WEBHOOK_SECRET})}
    levels = [(kind, level) for kind in ("http", "sleep") for level in bench.sizes.levels]
    levels.append(("ceiling", max(bench.sizes.levels)))
    topics = {f"{kind}{level}": bench.name(f"bench.{kind}{level}") for kind, level in levels}
    feed.create_topics(bench.bootstrap, topics.values(), partitions=PARTITIONS)
    channels = {f"{kind}{level}": {"topics": [topics[f"{kind}{level}"]], "handler": handlers[kind][0],
                                   "options": handlers[kind][1], "concurrency": level,
                                   "group_id": bench.name(f"{kind}{level}")} for kind, level in levels}
    workdir = bench.directory("concurrency")
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels), workdir)
    rates = {}
    try:
        daemon.start().wait_ready()
        done = 0.0
        for kind, level in levels:
            topic = topics[f"{kind}{level}"]
            bound = math.inf if kind == "ceiling" else level / DELAY
            # A short probe sizes the measured batch: far below the bound, a batch sized
            # for the bound would take minutes to drain.
            probe = PROBE_MAX if math.isinf(bound) else min(PROBE_MAX, max(10, int(bound * PROBE_SECONDS)))
            feed.fill(bench.bootstrap, topic, probe)
            guess = rate(watch([daemon], probe, timeout=180, baseline=done))
            if math.isnan(guess):  # the probe was done between two samples: at least this fast
                guess = probe / SAMPLE_PERIOD
            done += probe
            expected = min(bound, 1.5 * guess)
            count = max(20, int(expected * bench.sizes.concurrency_seconds))
            feed.fill(bench.bootstrap, topic, count)
            rates[f"{kind}{level}"] = rate(watch([daemon], count, timeout=180, baseline=done))
            done += count
    finally:
        daemon.stop()
    return rates


def case_concurrency(bench: Bench) -> list[Row]:
    """Throughput against the bound ``concurrency / 50 ms`` at each level, up to the HTTP ceiling."""
    slow, instant = start_server(port := free_port()), start_server(instant_port := free_port(), 0.0)
    try:
        runs = [one_run(bench, f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{instant_port}/")
                for _ in range(bench.sizes.runs)]
    finally:
        for server in (slow, instant):
            server.kill()
            server.wait()
    top = max(bench.sizes.levels)
    rows = _level_rows(runs, "sleep", "asyncio.sleep(0.05)", bench.sizes.levels)
    rows.append(Row("io.ceiling.rate", f"webhook handler, server answers at once, concurrency {top}: "
                    "throughput (the HTTP ceiling)", [run[f"ceiling{top}"] for run in runs], "/s"))
    rows += _level_rows(runs, "http", "webhook handler, server answers in 50 ms", bench.sizes.levels,
                        ceiling=f"ceiling{top}")
    return rows


def _level_rows(runs: list[dict[str, float]], kind: str, label: str, levels: tuple[int, ...], *,
                ceiling: str | None = None) -> list[Row]:
    """Throughput and its share of the bound at each level; with a ``ceiling``, of the lower of the two."""
    rows = []
    for level in levels:
        bound = level / DELAY
        rows.append(Row(f"io.{kind}.rate.{level}", f"{label}, concurrency {level}: throughput",
                        [run[f"{kind}{level}"] for run in runs], "/s", f"bound {bound:,.0f}/s"))
        if ceiling is None:
            share = Row(f"io.{kind}.ratio.{level}", f"{label}, concurrency {level}: throughput / bound",
                        [ratio(run[f"{kind}{level}"], bound) for run in runs], "×", "≥ 0.8")
        else:
            rows.append(Row(f"io.{kind}.bound.{level}", f"{label}, concurrency {level}: throughput / bound",
                            [ratio(run[f"{kind}{level}"], bound) for run in runs], "×"))
            share = Row(f"io.{kind}.ratio.{level}",
                        f"{label}, concurrency {level}: throughput / lower of bound and HTTP ceiling",
                        [ratio(run[f"{kind}{level}"], min(bound, run[ceiling])) for run in runs], "×", "≥ 0.8")
        share.met = share.median >= 0.8
        rows.append(share)
    return rows
