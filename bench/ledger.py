"""Case 6: what the delivery ledger costs, the same channel with ``ledger: off`` and with SQLite.

The no-op channel shows the ledger's cost per notification at the daemon's ceiling
(target: at least half the ledger-off rate); a 50 ms handler shows it where
notifications spend their time waiting on a provider (target: within 5%).

The ids rise with the offset (``n-1``, ``n-2`` …), so each batch's rows land on the last
pages of the ledger's index. Random UUIDv4 ids, as many services send, land on random
pages: the no-op channel runs once more with those, ledger on, to show what they cost.
A bench run's ledger stays small (its pages fit SQLite's cache), so the storage's own write
cost is also measured on a bigger one, in process: ``WRITE_ROWS`` rows written in the
flusher's batches, with notifyd's settings and with SQLite's defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench import feed
from bench.context import Bench, Row
from bench.daemon import Daemon, watch, write_config
from bench.stats import rate, ratio
from notifyd.ledger.decision import SENT, Record
from notifyd.ledger.sqlitestore import WRITER_PRAGMAS, SqliteStore
from notifyd.ledger.store import Batch

PARTITIONS = 4
DELAY, SLOW_CONCURRENCY = 0.05, 64
MODES = ("off", "sqlite")
WRITE_ROWS, WRITE_BATCH = 300_000, 2_000


def one_rate(bench: Bench, *, mode: str, handler: tuple[str, dict[str, Any]], concurrency: int, count: int,
             ids: Callable[[int], str] = feed.notification_id) -> float:
    """Notifications/s of one daemon whose one channel drains ``count`` notifications with the ledger ``mode``."""
    topic, workdir = bench.name("bench.ledger"), bench.directory("ledger")
    feed.create_topics(bench.bootstrap, [topic], partitions=PARTITIONS)
    feed.fill(bench.bootstrap, topic, count, ids=ids)
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


def write_cost(directory: Path, *, ids: Callable[[int], str], pragmas: tuple[str, ...]) -> float:
    """CPU microseconds a row of ``SqliteStore.put``, over ``WRITE_ROWS`` sent rows in a new file."""
    store = SqliteStore(str(directory / f"writes-{time.monotonic_ns()}.sqlite3"), writer_pragmas=pragmas)
    owner = "bench-host:1:owner"
    batches = [Batch("c", owner, 3.0, {ids(i): Record(SENT, owner, 1.0, 2.0, None, 1, 1.0)
                                       for i in range(start, min(start + WRITE_BATCH, WRITE_ROWS))})
               for start in range(0, WRITE_ROWS, WRITE_BATCH)]
    try:
        started = time.process_time()
        for batch in batches:
            store.put(batch, [])
        return (time.process_time() - started) / WRITE_ROWS * 1e6
    finally:
        store.close()


def write_rows(bench: Bench) -> list[Row]:
    """The storage's write cost a row on a ledger of ``WRITE_ROWS``: notifyd's settings against SQLite's defaults."""
    directory, rows = bench.directory("ledger-writes"), []
    for label, ids in (("sequential", feed.notification_id), ("UUIDv4", feed.random_id)):
        for setting, pragmas in (("notifyd", WRITER_PRAGMAS), ("SQLite defaults", ())):
            costs = [write_cost(directory, ids=ids, pragmas=pragmas) for _ in range(bench.sizes.runs)]
            rows.append(Row(f"ledger.writes.{label}.{setting.split()[0]}",
                            f"ledger writes, {WRITE_ROWS:,} rows, {label} ids, {setting}: CPU a row", costs, "µs"))
    return rows


def case_ledger(bench: Bench) -> list[Row]:
    """No-op and 50 ms channels, ledger off and on, alternating within each run."""
    noop, slow = ("bench.handlers:Noop", {}), ("bench.handlers:Wait", {"seconds": DELAY})
    slow_count = int(SLOW_CONCURRENCY / DELAY * bench.sizes.concurrency_seconds * 2)
    rates: dict[str, list[float]] = {f"{kind}.{mode}": [] for kind in ("noop", "slow") for mode in MODES}
    uuid_rates: list[float] = []  # no-op, ledger on, UUIDv4 ids; compared with the sequential ids' ledger off
    for run in range(bench.sizes.runs):
        for mode in MODES if run % 2 == 0 else reversed(MODES):
            rates[f"noop.{mode}"].append(one_rate(bench, mode=mode, handler=noop, concurrency=16,
                                                  count=bench.sizes.bulk // 2))
            rates[f"slow.{mode}"].append(one_rate(bench, mode=mode, handler=slow, concurrency=SLOW_CONCURRENCY,
                                                  count=slow_count))
        uuid_rates.append(one_rate(bench, mode="sqlite", handler=noop, concurrency=16,
                                   count=bench.sizes.bulk // 2, ids=feed.random_id))
    noop_ratio = [ratio(on, off) for on, off in zip(rates["noop.sqlite"], rates["noop.off"])]
    uuid_ratio = [ratio(on, off) for on, off in zip(uuid_rates, rates["noop.off"])]
    slow_ratio = [ratio(on, off) for on, off in zip(rates["slow.sqlite"], rates["slow.off"])]
    rows = [Row(f"ledger.{key}", f"{key.split('.')[0]} handler, ledger {key.split('.')[1]}", values, "/s")
            for key, values in rates.items()]
    rows.append(Row("ledger.uuid4.sqlite", "no-op handler, UUIDv4 ids, ledger sqlite", uuid_rates, "/s"))
    noop_row = Row("ledger.noop.ratio", "no-op: ledger on / off", noop_ratio, "×", "≥ 0.5")
    noop_row.met = noop_row.median >= 0.5
    slow_row = Row("ledger.slow.ratio", f"asyncio.sleep({DELAY}), concurrency {SLOW_CONCURRENCY}: ledger on / off",
                   slow_ratio, "×", "≥ 0.95")
    slow_row.met = slow_row.median >= 0.95
    uuid_row = Row("ledger.uuid4.ratio", "no-op, UUIDv4 ids: ledger on / off (sequential ids)", uuid_ratio, "×")
    return rows + [noop_row, uuid_row, slow_row, *write_rows(bench)]
