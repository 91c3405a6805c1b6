"""Case 6: what the delivery ledger costs, the same channel with ``ledger: off`` and with SQLite.

The no-op channel shows the ledger's cost per notification at the daemon's ceiling
(target: at least half the ledger-off rate); a 50 ms handler shows it where
notifications spend their time waiting on a provider (target: within 5%).
"""

from __future__ import annotations

from typing import Any

import yaml

from bench import feed
from bench.context import Bench, Row
from bench.daemon import Daemon, watch, write_config
from bench.stats import rate, ratio

PARTITIONS = 4
DELAY, SLOW_CONCURRENCY = 0.05, 64
MODES = ("off", "sqlite")


def one_rate(bench: Bench, *, mode: str, handler: tuple[str, dict[str, Any]], concurrency: int, count: int) -> float:
    """Notifications/s of one daemon whose one channel drains ``count`` notifications with the ledger ``mode``."""
    topic, workdir = bench.name("bench.ledger"), bench.directory("ledger")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count)
    channel = {"topics": [topic], "handler": handler[0], "options": handler[1], "concurrency": concurrency,
               "group_id": bench.name("ledger"), "ledger": mode != "off"}
    path = write_config(workdir / "notifyd.yaml", bootstrap=bench.bootstrap, channels={"c": channel})
    data = yaml.safe_load(path.read_text())
    data["ledger"] = {"path": str(workdir / "ledger.sqlite3")}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon = Daemon(path, workdir)
    try:
        daemon.start().wait_ready()
        return rate(watch([daemon], count, timeout=300))
    finally:
        daemon.stop()


def case_ledger(bench: Bench) -> list[Row]:
    """No-op and 50 ms channels, ledger off and on, alternating within each run."""
    noop, slow = ("bench.handlers:Noop", {}), ("bench.handlers:Wait", {"seconds": DELAY})
    slow_count = int(SLOW_CONCURRENCY / DELAY * bench.sizes.concurrency_seconds * 2)
    rates: dict[str, list[float]] = {f"{kind}.{mode}": [] for kind in ("noop", "slow") for mode in MODES}
    for run in range(bench.sizes.runs):
        for mode in MODES if run % 2 == 0 else reversed(MODES):
            rates[f"noop.{mode}"].append(one_rate(bench, mode=mode, handler=noop, concurrency=16,
                                                  count=bench.sizes.bulk // 2))
            rates[f"slow.{mode}"].append(one_rate(bench, mode=mode, handler=slow, concurrency=SLOW_CONCURRENCY,
                                                  count=slow_count))
    noop_ratio = [ratio(on, off) for on, off in zip(rates["noop.sqlite"], rates["noop.off"])]
    slow_ratio = [ratio(on, off) for on, off in zip(rates["slow.sqlite"], rates["slow.off"])]
    rows = [Row(f"ledger.{key}", f"{key.split('.')[0]} handler, ledger {key.split('.')[1]}", values, "/s")
            for key, values in rates.items()]
    noop_row = Row("ledger.noop.ratio", "no-op: ledger on / off", noop_ratio, "×", "≥ 0.5")
    noop_row.met = noop_row.median >= 0.5
    slow_row = Row("ledger.slow.ratio", f"asyncio.sleep({DELAY}), concurrency {SLOW_CONCURRENCY}: ledger on / off",
                   slow_ratio, "×", "≥ 0.95")
    slow_row.met = slow_row.median >= 0.95
    return rows + [noop_row, slow_row]
