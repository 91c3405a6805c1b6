"""Handlers that hang, raise on every call, or leak memory past the channel's limit."""

from __future__ import annotations

import time

import pytest

from notifyd.records import dlqheaders as h
from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, channel, dlq_reasons, produce
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]


def test_hanging_failing_and_leaking_handlers(kafka, unique, tmp_path, write_config, daemon, figures):
    hang, fail, leak = unique("hang"), unique("fail"), unique("leak")
    kafka.create_topics(hang, fail, leak, f"{hang}.dlq", f"{fail}.dlq")
    outs = {name: tmp_path / f"{name}.jsonl" for name in ("hang", "fail", "leak")}
    config = write_config(daemon_config(kafka.bootstrap, {
        # 4 threads and 10 calls that never return: the channel must still deliver the rest.
        "hang": channel(hang, outs["hang"], group_id=unique("g"), handler="tests.kit.handlers:Hangs",
                        dlq=f"{hang}.dlq", concurrency=4, timeout=0.5, retries=1),
        "fail": channel(fail, outs["fail"], group_id=unique("g"), handler="tests.kit.handlers:AlwaysFails",
                        dlq=f"{fail}.dlq", retries=2),
        "leak": channel(leak, outs["leak"], group_id=unique("g"), handler="tests.kit.handlers:Leaky",
                        options={"leak_mb": 2, "delay": 0.1}, concurrency=1, memory_limit_mb=120),
    }))
    notifyd = daemon(config)
    notifyd.wait_ready()
    started = time.monotonic()
    hang_ids = [f"hang-{i}" if i % 5 == 0 else f"ok-{i}" for i in range(50)]
    produce(kafka, hang, hang_ids)
    produce(kafka, fail, [f"f-{i}" for i in range(30)])
    produce(kafka, leak, [f"l-{i}" for i in range(100)])

    hung, fine = _check_hanging(kafka, hang, outs["hang"], hang_ids)
    _check_failing(kafka, fail, outs["fail"])
    recycles = _check_leaking(notifyd, outs["leak"])
    settled = time.monotonic() - started

    figures.add("bad handlers: hangs (timeout 0.5 s), raises on every call, leaks 2 MB a call (limit 120 MB)",
                hanging_dead_lettered=hung, hanging_channel_delivered=fine, failing_dead_lettered=30,
                leaking_delivered=100, leaking_recycles=recycles, settled_s=settled)
    assert notifyd.child_pids("hang")[1:] == [] and notifyd.child_pids("fail")[1:] == [], "a channel crashed"
    assert notifyd.stop() == 0


def _check_hanging(kafka, topic, out, ids) -> tuple[int, int]:
    deliveries = Deliveries(out)
    oks = {i for i in ids if i.startswith("ok")}
    hangs = {i for i in ids if i.startswith("hang")}
    dead = dlq_reasons(kafka, f"{topic}.dlq", len(hangs), timeout=60)
    wait_until(lambda: oks <= set(deliveries.refresh().counts), timeout=30, what="the hanging channel's others")
    assert len(dead) == len(hangs)
    assert all(d[h.HEADER_ERROR_REASON] == "retries_exhausted" for d in dead.values())
    assert all("timeout" in d[h.HEADER_ERROR_MESSAGE] for d in dead.values())
    return len(dead), len(oks)


def _check_failing(kafka, topic, out) -> None:
    dead = dlq_reasons(kafka, f"{topic}.dlq", 30, timeout=60)
    assert len(dead) == 30
    assert {d[h.HEADER_ATTEMPTS] for d in dead.values()} == {"3"}
    assert all(d[h.HEADER_ERROR_CLASS] == "ConnectionError" for d in dead.values())


def _check_leaking(notifyd, out) -> int:
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() == 100, timeout=90, what="every leaking-channel notification")

    def recycled_events() -> list[dict]:
        return [e for e in notifyd.events("channel process recycled (memory limit)") if e["channel"] == "leak"]
    # The process drains before it exits, so the last deliveries may precede the recycle.
    recycled = wait_until(recycled_events, timeout=30, what="the leaking channel process recycled")
    wait_until(lambda: len(notifyd.child_pids("leak")) == len(recycled) + 1, what="its replacement started")
    assert all(e["exit"] == "code 75" for e in recycled)
    return len(recycled)
