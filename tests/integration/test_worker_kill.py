"""The channel process under reliability scenarios: SIGKILL and restart, orphaning, a group changing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from notifyd.exitcodes import ExitCode
from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import channel_config, delivered_ids, notification
from tests.kit.workerprocess import start_worker

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]
ROOT = Path(__file__).resolve().parents[2]
TOTAL = 2000


def test_sigkill_halfway_then_restart_delivers_everything(kafka: KafkaKit, unique, tmp_path: Path,
                                                         write_config) -> None:
    topic, group, deliveries = unique("kill"), unique("group"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic, partitions=2)
    for seq in range(TOTAL):
        kafka.produce(topic, json.dumps({"id": f"k-{seq}", "to": "a", "body": "b"}), key=f"key{seq % 50}")
    kafka.flush()
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
        "channels": {"c": {
            "topics": [topic], "group_id": group, "handler": "tests.kit.handlers:Recorder", "concurrency": 16,
            "options": {"path": str(deliveries), "delay": 0.02},
            "consumer_config": {"auto.commit.interval.ms": 200},  # commits happen before the kill
        }},
    })
    log = tmp_path / "worker.log"

    victim = start_worker(config, log)
    try:
        wait_until(lambda: len(read_records(deliveries)) >= TOTAL // 3, what="a third delivered")
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        victim.kill()

    delivered_before = {r["id"] for r in read_records(deliveries)}
    assert len(delivered_before) < TOTAL, "the process finished before it was killed"
    committed = kafka.committed(group, topic, 2)
    assert sum(max(0, c) for c in committed) > 0, "nothing was committed before the kill"
    for message in kafka.read(topic, TOTAL):
        if message.offset() < committed[message.partition()]:
            assert json.loads(message.value())["id"] in delivered_before, "a commit skipped an unfinished message"

    survivor = start_worker(config, log)
    try:
        wait_until(lambda: len({r["id"] for r in read_records(deliveries)}) == TOTAL, timeout=40,
                   what="every notification after the restart")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == ExitCode.OK
    finally:
        survivor.kill()

    counts = Counter(r["id"] for r in read_records(deliveries))
    assert set(counts) == {f"k-{seq}" for seq in range(TOTAL)}
    redelivered = sum(n - 1 for n in counts.values())
    assert redelivered <= 16 * 2 + TOTAL // 3, f"{redelivered} redeliveries: far more than the unfinished window"
    assert sum(kafka.committed(group, topic, 2)) == TOTAL


def test_a_handler_that_cannot_load_exits_with_the_config_code(write_config, tmp_path: Path) -> None:
    config = write_config({"kafka": {"bootstrap_servers": "127.0.0.1:1"},
                           "channels": {"c": {"topics": ["t"], "handler": "tests.kit.handlers:Broken"}}})
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "notifyd", "worker", "--config", str(config), "--channel", "c"],
                            cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == ExitCode.CONFIG
    line = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert line["channel"] == "c" and "token endpoint" in line["error"] and line["level"] == "error"
    assert time.monotonic() - started < 15
    missing = subprocess.run([sys.executable, "-m", "notifyd", "worker", "--config", str(config), "--channel", "x"],
                             cwd=ROOT, capture_output=True, timeout=30)
    assert missing.returncode == ExitCode.CONFIG


def test_an_orphaned_worker_drains_and_exits(kafka: KafkaKit, unique, tmp_path: Path, write_config) -> None:
    topic = unique("orphan")
    kafka.create_topics(topic)
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
        "channels": {"c": {"topics": [topic], "handler": "tests.kit.handlers:Recorder",
                           "options": {"path": str(tmp_path / "deliveries.jsonl")}}},
    })
    log = tmp_path / "worker.log"
    # A stand-in supervisor that starts the worker, says its pid, then waits to be killed.
    parent_code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-m', 'notifyd', 'worker', '--config', {str(config)!r}, "
        f"'--channel', 'c'], stderr=open({str(log)!r}, 'ab'))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        child_pid = int(parent.stdout.readline())
        wait_until(lambda: '"consuming"' in log.read_text(errors="replace") if log.exists() else False,
                   what="the worker to start consuming")
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not Path(f"/proc/{child_pid}").exists() or _zombie(child_pid), timeout=30,
                   what="the orphaned worker to exit")
    finally:
        parent.kill()
    assert '"stopped"' in log.read_text(errors="replace"), "the worker did not drain and stop cleanly"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


# A blocking handler's rebalances are served on the I/O thread while its deliveries run.
# An inline handler's backlog keeps the event loop consuming by itself (nothing runs
# between its batches), so the revocation is served on the loop's own thread.
@pytest.mark.parametrize("handler, delay, backlog", [("Recorder", 0.002, 0), ("InlineRecorder", 0.001, 3000)])
def test_a_member_joining_and_leaving_loses_nothing(kafka: KafkaKit, unique, tmp_path: Path, start, handler: str,
                                                    delay: float, backlog: int) -> None:
    topic, group = unique("worker.rebalance"), unique("group")
    kafka.create_topics(topic, partitions=4)
    paths = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    configs = [channel_config(kafka.bootstrap, shared={
        "topics": [topic], "handler": f"tests.kit.handlers:{handler}", "options": {"path": str(path), "delay": delay},
        "concurrency": 4, "group_id": group}) for path in paths]
    produced = iter(range(1_000_000))

    def produce(count: int) -> None:
        for _ in range(count):
            seq = next(produced)
            kafka.produce(topic, notification(f"r-{seq}"), key=f"k{seq}")
        kafka.flush()

    def delivered() -> set[str]:
        return delivered_ids(paths[0]) | delivered_ids(paths[1])

    first = start(configs[0], "shared")
    produce(200)
    wait_until(lambda: len(delivered_ids(paths[0])) == 200, what="the first member's deliveries")
    produce(backlog)
    second = start(configs[1], "shared")

    def second_member_delivers() -> bool:
        produce(5)  # keep work flowing while the group rebalances
        return bool(delivered_ids(paths[1]))

    wait_until(second_member_delivers, timeout=45, what="the second member to get partitions")
    assert first.finish() == ExitCode.OK  # leaves the group: the survivor takes every partition
    produce(100)
    total = next(produced)
    wait_until(lambda: len(delivered()) == total, timeout=45, what="every delivery after the rebalance")
    assert second.finish() == ExitCode.OK
    assert delivered() == {f"r-{seq}" for seq in range(total)}
    assert sum(kafka.committed(group, topic, 4)) == total
