"""20 SIGHUPs in a row, valid and invalid files in turn, while notifications flow."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import yaml
from confluent_kafka import Producer

from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, Tally, channel, notification
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

RELOADS = 20
INVALID = [
    "kafka: [this is not\n",
    "{kafka: {bootstrap_servers: x}, channels: {c: {topics: [t], handler: log, colour: red}}}\n",
    "{kafka: {bootstrap_servers: x}, channels: {c: {topics: [t], handler: 'tests.nope:Missing'}}}\n",
    "{kafka: {bootstrap_servers: x}, channels: {c: {topics: [t], handler: log, retries: -1}}}\n",
    "{kafka: {bootstrap_servers: '${NOTIFYD_TEST_NEVER_SET}'}, channels: {c: {topics: [t], handler: log}}}\n",
]


def test_twenty_sighups_alternating_valid_and_invalid(kafka, unique, tmp_path, write_config, daemon, figures):
    steady, churn = unique("steady"), unique("churn")
    kafka.create_topics(steady, churn, partitions=2)
    outs = {"steady": tmp_path / "steady.jsonl", "churn": tmp_path / "churn.jsonl"}
    groups = {"steady": unique("g"), "churn": unique("g")}

    def valid(variant: int) -> str:
        # Only the churn channel changes between the valid files: each valid reload restarts it.
        return yaml.safe_dump(daemon_config(kafka.bootstrap, {
            "steady": channel(steady, outs["steady"], group_id=groups["steady"]),
            "churn": {**channel(churn, outs["churn"], group_id=groups["churn"]), "retries": 3 + variant},
        }))

    config = write_config(text=valid(0), name="notifyd.yaml")
    notifyd = daemon(config)
    notifyd.wait_ready()
    steady_pid = notifyd.child_pids("steady")[-1]
    traffic = _Traffic(kafka.bootstrap, {"steady": steady, "churn": churn}).start()
    deliveries = {name: Deliveries(path) for name, path in outs.items()}
    wait_until(lambda: all(d.distinct() for d in deliveries.values()), what="both channels delivering")

    storm_started = time.monotonic()
    for number in range(1, RELOADS + 1):
        config.write_text(valid(number) if number % 2 else INVALID[(number // 2) % len(INVALID)])
        notifyd.signal(signal.SIGHUP)
        wait_until(lambda n=number: _reloads(notifyd) == n, timeout=10, what=f"reload {number} handled")
        notifyd.sd_notifications()  # read as systemd does; the next test covers a reader that does not
    storm = time.monotonic() - storm_started
    produced = traffic.stop()

    wait_until(lambda: all(deliveries[n].distinct() == len(produced[n]) for n in produced), timeout=90,
               what="every notification after the storm")
    settled = time.monotonic() - storm_started
    notifyd.wait_ready()
    tallies = {name: Tally.of(produced[name], deliveries[name].counts) for name in produced}
    figures.add("reload storm: 20 SIGHUPs, valid and invalid files in turn, traffic flowing",
                messages=sum(len(ids) for ids in produced.values()), reloads=RELOADS,
                lost=sum(len(t.lost) for t in tallies.values()), duplicates=sum(t.duplicates for t in tallies.values()),
                churn_processes_started=len(notifyd.child_pids("churn")), storm_s=storm, all_delivered_s=settled)
    assert not any(t.lost for t in tallies.values())
    assert notifyd.metric("notifyd_config_reloads_total", result="success") == RELOADS // 2
    assert notifyd.metric("notifyd_config_reloads_total", result="failure") == RELOADS // 2
    assert notifyd.child_pids("steady") == [steady_pid], "the untouched channel was restarted"
    assert sum(m.startswith("RELOADING=1") for m in notifyd.sd_notifications()) == RELOADS
    assert notifyd.stop() == 0


def test_a_notify_socket_nobody_reads_never_freezes_the_supervisor(kafka, unique, write_config, daemon):
    """The kernel queues 10 datagrams; a blocking send past them used to hang the supervisor for ever."""
    topic = unique("quiet")
    kafka.create_topics(topic)
    text = yaml.safe_dump(daemon_config(kafka.bootstrap, {"quiet": {"topics": [topic], "handler": "log"}}))
    config = write_config(text=text, name="notifyd.yaml")
    notifyd = daemon(config)
    notifyd.wait_ready()
    config.write_text(INVALID[0])
    for number in range(1, 9):  # 2 datagrams each: the queue is full after the 5th
        notifyd.signal(signal.SIGHUP)
        wait_until(lambda n=number: _reloads(notifyd) == n, timeout=10, what=f"reload {number} handled")
    assert notifyd.stop(timeout=30) == 0


def _reloads(notifyd) -> int:
    return int(notifyd.metric("notifyd_config_reloads_total", result="success")
               + notifyd.metric("notifyd_config_reloads_total", result="failure"))


class _Traffic:
    """Publishes to every topic at a steady pace from a thread until stopped."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self._topics = topics
        self._stop = threading.Event()
        self.produced: dict[str, list[str]] = {name: [] for name in topics}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(0.02):
            for name, topic in self._topics.items():
                for _ in range(5):
                    notification_id = f"{name}-{seq}"
                    self._producer.produce(topic, notification(notification_id), key=f"user{seq % 32}")
                    self.produced[name].append(notification_id)
                    seq += 1
            self._producer.poll(0)

    def stop(self) -> dict[str, list[str]]:
        self._stop.set()
        self._thread.join(10)
        assert self._producer.flush(30) == 0
        return self.produced


def test_a_scrape_while_a_process_creates_its_metrics_file_succeeds(tmp_path):
    """Found by the storm: /metrics failed when it met a just-spawned child's still-empty file."""
    from notifyd.daemon.metricsdir import MetricsDirectory

    (tmp_path / "counter_4242.db").touch()  # what a child leaves between open() and truncate()
    assert MetricsDirectory(tmp_path).scrape() == b""
