"""Pure parts of what on-call sees: zero and removed series, outage lines, stack dumps, /readyz states."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from structlog.testing import capture_logs

from notifyd.channel import lifecycle
from notifyd.channel.offsets import OffsetTracker
from notifyd.channel.outage import BrokerOutage
from notifyd.channel.rebalance import Rebalancer
from notifyd.daemon.members import Member
from notifyd.daemon.readiness import IDLE, channel_states
from notifyd.daemon.stalls import StackDump
from tests.kit.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_zero_series_and_removed_gauges_in_the_aggregated_scrape(tmp_path: Path) -> None:
    """In subprocesses: prometheus_client picks multiprocess storage at import."""
    child = textwrap.dedent("""
        import sys
        from notifyd.metrics import REMOVED, channel_metrics, touch_channel
        m = channel_metrics()
        touch_channel(m, "email")
        for partition, value in enumerate(sys.argv[1:]):
            m.consumer_lag.labels("email", "t", str(partition)).set(float(value) if value != "gone" else REMOVED)
    """)
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", child, "7", "gone"], check=True, cwd=ROOT, env=environ)
    scrape = textwrap.dedent(f"""
        from pathlib import Path
        from notifyd.daemon.metricsdir import MetricsDirectory
        print(MetricsDirectory(Path({str(tmp_path)!r})).scrape().decode())
    """)
    text = subprocess.run([sys.executable, "-c", scrape], check=True, cwd=ROOT, env=environ, capture_output=True,
                          text=True).stdout
    assert 'notifyd_notifications_dead_lettered_total{channel="email",reason="invalid"} 0.0' in text
    assert 'notifyd_notifications_dead_lettered_total{channel="email",reason="expired"} 0.0' in text
    assert 'notifyd_delivery_attempts_total{channel="email",result="retryable_error"} 0.0' in text
    assert 'notifyd_consumer_lag{channel="email",partition="0",topic="t"} 7.0' in text
    assert 'partition="1"' not in text and "NaN" not in text

    subprocess.run([sys.executable, "-c", child, "gone", "3"], check=True, cwd=ROOT, env=environ)  # the new owner
    text = subprocess.run([sys.executable, "-c", scrape], check=True, cwd=ROOT, env=environ, capture_output=True,
                          text=True).stdout
    assert 'partition="0"' not in text and 'notifyd_consumer_lag{channel="email",partition="1",topic="t"} 3.0' in text


class Recorded:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, name: str, **_fields: object) -> None:
        self.sent.append(name)


def client_line(facility: str, text: str) -> logging.LogRecord:
    return logging.LogRecord("notifyd.librdkafka", logging.ERROR, "", 0, "%s [%s] %s",
                             (facility, "rdkafka#consumer-1", text), None)


def test_an_outage_is_reported_once_and_librdkafka_repeats_are_held_back() -> None:
    status = Recorded()
    outage = BrokerOutage(status=status, log=structlog.get_logger())
    refused = "b:9092/bootstrap: Connect to ipv4#b:9092 failed: Connection refused (after {}ms in state CONNECT)"
    assert outage.filter(client_line("FAIL", refused.format(0)))  # the first failure: which address
    with capture_logs() as logs:
        outage.begin("1/1 brokers are down")
        outage.begin("1/1 brokers are down")
        assert not outage.filter(client_line("FAIL", refused.format(3)))
        assert not outage.filter(client_line("FAIL", "b:9092/1: Disconnected (after 5ms in state UP)"))
        assert outage.filter(client_line("CONFWARN", "a warning about the config"))
        outage.end()
        outage.end()
        assert not outage.filter(client_line("FAIL", refused.format(9)))  # queued during it, handed over after
    assert status.sent == [lifecycle.EVENT_BROKER_DOWN, lifecycle.EVENT_BROKER_UP]
    assert [e["event"] for e in logs] == ["every broker is down", "broker reachable again"]
    assert logs[1]["client_lines_held_back"] == 2


def test_a_stack_dump_is_written_on_sigusr1_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "stacks.txt"
    sleeper = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import faulthandler, signal, time
        faulthandler.register(signal.SIGUSR1, file=open({str(path)!r}, "a"), all_threads=True)
        def stuck_here():
            print("registered", flush=True)
            time.sleep(60)
        stuck_here()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert sleeper.stdout.readline().strip() == "registered"
        dump = StackDump.request(str(path), sleeper.pid)
        wait_until(lambda: dump.ready(__import__("time").monotonic()), timeout=5, what="the dump")
        text = dump.read()
        assert "most recent call first" in text and "stuck_here" in text
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(("members", "state", "partitions"), [
    ([(True, True, 2, False), (True, True, 0, False)], "consuming", 2),
    ([(True, True, 0, False), (True, True, 0, False)], IDLE, 0),
    ([(True, True, 2, False), (True, True, None, False)], "waiting for its partitions", 2),
    ([(True, True, 2, True), (False, False, None, False)], "down", 2),
    ([(True, False, None, False)], "starting", 0),
])
def test_a_channel_is_as_well_as_its_worst_process(members, state, partitions) -> None:
    built = []
    for index, (alive, ready, owned, broker_down) in enumerate(members):
        built.append(Member("mail", index, None, process=SimpleNamespace(pid=100 + index) if alive else None, ready=ready,
                            partitions=owned, broker_down=broker_down))
    found = channel_states(built)["mail"]
    assert (found["state"], found["partitions"]) == (state, partitions)
    assert [p["partitions"] for p in found["processes"]] == [m[2] for m in members]


def test_a_member_none_of_whose_topics_exists_has_settled_with_nothing() -> None:
    settled: list[list] = []
    rebalancer = Rebalancer(tracker=OffsetTracker(), commit=print, busy=lambda _p: False, serve_dlq=lambda: None,
                            revoke_timeout=0.0, log=structlog.get_logger(), assigned=settled.append,
                            topics=("a", "b"))
    rebalancer.topic_missing("a")
    assert settled == []  # "b" may still exist
    rebalancer.topic_missing("b")
    rebalancer.topic_missing("b")
    assert settled == [[]] and rebalancer.missing_topics == {"a", "b"}
