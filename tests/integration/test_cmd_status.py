"""``notifyd status`` against the real test broker, with and without a live group member."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from notifyd.cli import main
from notifyd.exitcodes import ExitCode
from notifyd.tools.devbroker import EmbeddedBroker, free_port
from tests.kit.cliout import assert_one_line_saying_why, unreachable_run
from tests.kit.config import base_config
from tests.kit.daemon import ROOT
from tests.kit.kafka import FAST_GROUP
from tests.kit.wait import wait_until


@pytest.fixture
def setup(kafka, unique, write_config):
    """(config path, topic with 2 partitions, DLQ topic, group) of channel ``audit``."""
    topic, group = unique("status"), unique("group")
    kafka.create_topics(topic, partitions=2)
    kafka.create_topics(f"{topic}.dlq")
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"].update(topics=[topic], dlq=f"{topic}.dlq", group_id=group)
    return str(write_config(data)), topic, f"{topic}.dlq", group


def produce_singly(kafka, topic: str, count: int, *, partition: int) -> None:
    # One batch per record: the test broker's high watermark lags by the last batch (BROKER.md).
    for i in range(count):
        kafka.produce(topic, f"m{i}", partition=partition)
        kafka.flush()


def assigned(consumer: Consumer) -> list[TopicPartition]:
    consumer.poll(0.2)  # the group join happens inside poll()
    return consumer.assignment()


def status_json(path: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--config", path, "--format", "json"]) == 0
    [channel] = json.loads(capsys.readouterr().out)["channels"]
    return channel


def test_status_without_the_daemon_counts_everything_as_lag(setup, kafka, capsys):
    path, topic, dlq, group = setup
    produce_singly(kafka, topic, 4, partition=0)
    produce_singly(kafka, dlq, 2, partition=0)
    channel = status_json(path, capsys)
    assert (channel["channel"], channel["group"], channel["members"]) == ("audit", group, [])
    assert [(p["partition"], p["committed"], p["end"], p["lag"]) for p in channel["partitions"]] == [
        (0, None, 4, 4), (1, None, 0, 0)]
    assert (channel["lag"], channel["dlq_depth"]) == (4, 2)


def test_status_while_a_member_runs_shows_it_and_its_committed_offsets(setup, kafka, capsys):
    path, topic, _, group = setup
    produce_singly(kafka, topic, 6, partition=1)
    member = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group, "client.id": "notifyd-test",
                       "enable.auto.commit": False, "auto.offset.reset": "earliest", **FAST_GROUP})
    try:
        member.subscribe([topic])
        wait_until(lambda: assigned(member), timeout=30, what="the member's partition assignment")
        member.commit(offsets=[TopicPartition(topic, 1, 2)], asynchronous=False)
        channel = status_json(path, capsys)
        assert main(["status", "--config", path]) == 0
        table = capsys.readouterr().out
    finally:
        member.close()
    assert channel["state"] == "STABLE"
    # Tansu 0.6 describes a stable group without its members; Apache Kafka lists them.
    assert [m["client_id"] for m in channel["members"]] in ([], ["notifyd-test"])
    assert [(p["partition"], p["committed"], p["lag"]) for p in channel["partitions"]] == [(0, None, 0), (1, 2, 4)]
    assert table.startswith(f"audit  group {group}  STABLE  {len(channel['members'])} member(s)  lag 4")


def test_missing_topics_and_dlq_are_reported_not_fatal(kafka, unique, write_config, capsys):
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"].update(topics=[unique("absent")], dlq=unique("absent-dlq"))
    channel = status_json(str(write_config(data)), capsys)
    assert channel["partitions"] == [] and channel["dlq_depth"] is None
    assert channel["missing_topics"] == data["channels"]["audit"]["topics"]


def test_unknown_channel_and_unreachable_broker(setup, write_config, capsys):
    path, *_ = setup
    assert main(["status", "--config", path, "--channel", "nope"]) == 2
    assert "unknown channel 'nope'" in capsys.readouterr().err
    unreachable = str(write_config(base_config(f"127.0.0.1:{free_port()}")))
    assert_one_line_saying_why(unreachable_run("status", "--config", unreachable, "--timeout", "2").stderr)


# probe() answers, then the broker stops answering (stopped, not gone: connections stay open).
FREEZE_AFTER_PROBE = """
import os, signal, sys
from notifyd.cli import main
from notifyd.commands import status
probe = status.probe
def probe_then_freeze(*args, **kwargs):
    found = probe(*args, **kwargs)
    os.kill(int(sys.argv[1]), signal.SIGSTOP)
    return found
status.probe = probe_then_freeze
sys.exit(main(sys.argv[2:]))
"""


def test_a_broker_that_stops_answering_after_the_probe_is_exit_3_not_a_traceback(tmp_path, write_config):
    # The group requests waited for their futures exactly as long as librdkafka's own request
    # timeout: the wait lost the race and raised TimeoutError (a traceback), and the admin handle,
    # destroyed with the request still pending, could abort the process in a librdkafka assertion.
    with EmbeddedBroker(log_path=str(tmp_path / "broker.log")) as broker:
        path = str(write_config(base_config(broker.bootstrap_servers)))
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-c", FREEZE_AFTER_PROBE, str(broker.process.pid), "status",
                                   "--config", path, "--timeout", "2"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
    assert done.returncode == ExitCode.BROKER_UNREACHABLE, done.stderr
    assert "Traceback" not in done.stderr and "broker unreachable" in done.stderr
    assert time.monotonic() - started < 20


def test_ctrl_c_while_waiting_for_the_broker_is_one_line_and_exit_130_at_once(tmp_path, write_config):
    # A KeyboardInterrupt traceback before (any operator command but send, which says more);
    # and the metadata wait, in librdkafka, kept the signal from Python until --timeout ran out.
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        path = str(write_config(base_config(f"127.0.0.1:{silent.getsockname()[1]}")))
        code = ("import signal, sys; from notifyd.cli import main; "
                "signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(main(sys.argv[1:]))")
        waiting = subprocess.Popen([sys.executable, "-c", code, "status", "--config", path, "--timeout", "60"],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        silent.settimeout(30)
        connection, _ = silent.accept()  # the client is waiting for the broker's answer
        with connection:
            waiting.send_signal(signal.SIGINT)
            signalled = time.monotonic()
            out, err = waiting.communicate(timeout=30)
    assert (waiting.returncode, out, err) == (ExitCode.INTERRUPTED, "", "notifyd status: interrupted\n")
    assert time.monotonic() - signalled < 10  # within the probe's current wait (0.5 s or 1 s), not at 60 s
