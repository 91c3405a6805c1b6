"""Case 4: start-up time to READY=1 with ten channels, and memory at idle."""

from __future__ import annotations

import time

from bench import feed
from bench.context import Bench, Row
from bench.daemon import Daemon, rss_bytes, write_config
from bench.stats import median

CHANNELS = 10
SETTLE = 3.0  # seconds after READY=1 before idle memory is read: imports and first fetches are over


def one_run(bench: Bench) -> tuple[float, int, int]:
    """Seconds to READY=1, supervisor RSS and the median channel-process RSS at idle."""
    topics = [bench.name(f"bench.idle{i}") for i in range(CHANNELS)]
    feed.create_topics(bench.bootstrap, topics, partitions=1)
    channels = {f"idle{i}": {"topics": [topic], "handler": "bench.handlers:Noop", "group_id": bench.name("idle")}
                for i, topic in enumerate(topics)}
    workdir = bench.directory("footprint")
    daemon = Daemon(write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels=channels), workdir)
    try:
        ready = daemon.start().wait_ready()
        time.sleep(SETTLE)  # idle on purpose: this is the figure being measured
        channel_rss = median([rss_bytes(pid) for pid in daemon.channel_pids()])
        return ready, rss_bytes(daemon.process.pid), int(channel_rss)
    finally:
        daemon.stop()


def case_footprint(bench: Bench) -> list[Row]:
    runs = [one_run(bench) for _ in range(bench.sizes.runs)]
    return [
        Row("footprint.startup", f"start-up to READY=1, {CHANNELS} channels", [r[0] for r in runs], "s"),
        Row("footprint.idle.supervisor", "RSS at idle, supervisor", [r[1] / 2**20 for r in runs], "MiB"),
        Row("footprint.idle.channel", "RSS at idle, one channel process", [r[2] / 2**20 for r in runs], "MiB"),
    ]
