"""Flow control against a real local provider server: the channel's rate across members, and an outage.

The server is a webhook receiver (``tests.kit.providers.ProviderServer``) that counts when each
request arrived and can answer 503 for a while. Figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, TopicPartition

from notifyd.cli import main
from tests.kit.daemon import daemon_config
from tests.kit.httpserver import ProviderServer, Reply, Request
from tests.kit.kafka import FAST_GROUP
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka

# The issue asks for a 30 s outage; the default suite keeps it short (NOTIFYD_FLOW_OUTAGE=30 for the full one).
OUTAGE_SECONDS = float(os.environ.get("NOTIFYD_FLOW_OUTAGE", "6"))
BURST = 1500  # produced when the outage starts: three times the read-ahead (concurrency + 500)


@dataclass
class CountingReceiver:
    """Accepts every POST (or answers 503 while ``down``), noting when each arrived and its notification id."""

    down: bool = False
    arrivals: list[tuple[float, int, str]] = field(default_factory=list)  # (monotonic, status, notification id)

    def __call__(self, request: Request) -> Reply:
        status = 503 if self.down else 200
        self.arrivals.append((time.monotonic(), status, request.headers.get("webhook-id", "")))
        return Reply(status, {"error": "unavailable"} if self.down else {"received": True})

    def delivered(self) -> set[str]:
        return {i for _, status, i in list(self.arrivals) if status == 200}

    def between(self, start: float, end: float, status: int | None = None) -> int:
        return sum(1 for at, s, _ in list(self.arrivals) if start <= at < end and status in (None, s))


def _webhook_channel(topic: str, url: str, group: str, **extra) -> dict:
    return {"topics": [topic], "group_id": group, "handler": "webhook", "options": {"url": url, "timeout": 5},
            "backoff": {"initial": 0.05, "max": 0.2}, **extra}


def _produce_spread(kafka, topic: str, ids: list[str], partitions: int) -> None:
    for seq, notification_id in enumerate(ids):
        kafka.produce(topic, json.dumps({"id": notification_id, "to": "ops", "body": "hi"}), partition=seq % partitions)
    kafka.flush()


def _shares(notifyd, channel: str) -> dict[int, float]:
    latest: dict[int, float] = {}
    for event in notifyd.events("rate share updated"):
        if event.get("channel") == channel:
            latest[event["member"]] = event["share"]
    return latest


def test_three_members_share_the_channel_rate(kafka, unique, write_config, daemon) -> None:
    topic, rate = unique("flow.rate"), 60.0
    kafka.create_topics(topic, partitions=6)
    receiver = CountingReceiver()
    with ProviderServer(receiver) as server:
        config = write_config(daemon_config(kafka.bootstrap, {
            "hooks": _webhook_channel(topic, f"{server.url}/hook", unique("g"), processes=3, concurrency=8,
                                      rate_limit={"per_second": rate, "burst": 3}),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        wait_until(lambda: sorted(_shares(notifyd, "hooks").values()) == pytest.approx([1 / 3] * 3, abs=1e-3),
                   timeout=60, what="three members with a third of the partitions each")
        ids = [f"r-{i}" for i in range(int(rate * 9))]
        _produce_spread(kafka, topic, ids, 6)
        wait_until(lambda: len(receiver.delivered()) == len(ids), timeout=60, what="every notification delivered")
        first = receiver.arrivals[0][0]
        window = 6.0  # from 1 s in (past the bursts) while every member still has a backlog
        measured = receiver.between(first + 1.0, first + 1.0 + window) / window
        print(f"\nflow rate: limit {rate:g}/s over 3 members; measured {measured:.1f}/s "
              f"({(measured / rate - 1) * 100:+.1f} %) over {window:g} s")
        assert measured == pytest.approx(rate, rel=0.10)
        assert notifyd.metric("notifyd_rate_limit_per_second", channel="hooks") == pytest.approx(rate, rel=0.01)
        assert notifyd.stop() == 0


def test_provider_outage_opens_the_circuit_and_loses_nothing(kafka, unique, write_config, daemon, monkeypatch,
                                                             capsys) -> None:
    topic, dlq = unique("flow.outage"), unique("flow.outage.dlq")
    kafka.create_topics(topic, dlq, partitions=1)
    receiver = CountingReceiver()
    with ProviderServer(receiver) as server:
        # retries >= consecutive_failures: a notification alone in the channel when the outage starts
        # (the burst not fetched yet on a loaded machine) cannot use up its attempts before the
        # circuit opens. With retries: 2 one did, was dead-lettered, and the test waited in vain.
        config = write_config(daemon_config(kafka.bootstrap, {
            "hooks": _webhook_channel(topic, f"{server.url}/hook", unique("g"), concurrency=8, retries=10, dlq=dlq,
                                      circuit_breaker={"consecutive_failures": 10, "probe_interval": 1.0}),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        traffic = _SteadyTraffic(kafka, topic, per_second=40)
        traffic.start()
        try:
            wait_until(lambda: len(receiver.delivered()) >= 40, what="steady deliveries before the outage")
            receiver.down, outage_start = True, time.monotonic()
            burst = [f"b-{i}" for i in range(BURST)]  # more than the read-ahead holds: fetching must pause
            _produce_spread(kafka, topic, burst, 1)
            wait_until(lambda: notifyd.metric("notifyd_circuit_state", channel="hooks") == 2, timeout=15,
                       what="the circuit open")
            assert _status_circuit(config, notifyd, monkeypatch, capsys) == "open"
            wait_until(lambda: time.monotonic() - outage_start >= OUTAGE_SECONDS, timeout=OUTAGE_SECONDS + 5)
            receiver.down, recovered = False, time.monotonic()
            wait_until(lambda: notifyd.metric("notifyd_circuit_state", channel="hooks") == 0, timeout=15,
                       what="the circuit closed")
            closed = time.monotonic()
        finally:
            produced = traffic.stop()
        produced += burst
        dead_lettered = lambda: notifyd.events("notification failed, writing it to the dlq")  # noqa: E731
        wait_until(lambda: receiver.delivered() >= set(produced) or dead_lettered(), timeout=60,
                   what="every notification delivered")
        assert not dead_lettered(), "something was dead-lettered"
        caught_up = _caught_up_at(receiver, produced)
        paused = notifyd.events("consumption paused: deliveries are behind")
        during = receiver.between(outage_start, recovered)
        print(f"\nflow outage: {OUTAGE_SECONDS:g} s of 503 under {traffic.per_second}/s; {len(produced)} produced "
              f"(a burst of {BURST} at the start), "
              f"all delivered; requests during the outage {during}; circuit closed {closed - recovered:.2f} s "
              f"after recovery; backlog delivered {caught_up - recovered:.2f} s after recovery")
        assert _high_watermark(kafka, dlq) == 0, "something was dead-lettered"
        assert paused and all(e["unfinished"] <= 8 + 500 for e in paused), "the read-ahead is bounded"
        # The ~10 failures that open it, the attempts in flight then, and one probe a second.
        assert during <= 10 + 8 + OUTAGE_SECONDS / 1.0 + 3
        assert notifyd.events("circuit opened: the provider fails most attempts; consuming stops, probing every 1 s")
        assert notifyd.events("circuit closed: the provider answers again; consuming resumes")
        assert notifyd.stop() == 0


@dataclass
class ThrottlingReceiver(CountingReceiver):
    """Answers 429 with ``Retry-After: 1`` to the requests that arrive in the first ``throttle_for`` seconds."""

    throttle_for: float = 0.5
    started: float | None = None

    def __call__(self, request: Request) -> Reply:
        now = time.monotonic()
        self.started = self.started or now
        if now - self.started < self.throttle_for:
            self.arrivals.append((now, 429, request.headers.get("webhook-id", "")))
            return Reply(429, {"error": "rate limited"}, {"Retry-After": "1"})
        return super().__call__(request)


def test_a_429_pauses_the_whole_channel_and_burns_no_retries(kafka, unique, write_config, daemon) -> None:
    topic, dlq = unique("flow.throttle"), unique("flow.throttle.dlq")
    kafka.create_topics(topic, dlq, partitions=1)
    receiver = ThrottlingReceiver()
    with ProviderServer(receiver) as server:
        # retries: 0 would dead-letter any failed attempt; a throttled one is the provider's doing.
        config = write_config(daemon_config(kafka.bootstrap, {
            "hooks": _webhook_channel(topic, f"{server.url}/hook", unique("g"), concurrency=4, retries=0, dlq=dlq,
                                      rate_limit={"per_second": 100}),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        ids = [f"t-{i}" for i in range(300)]
        _produce_spread(kafka, topic, ids, 1)
        wait_until(lambda: receiver.delivered() >= set(ids), timeout=60, what="every notification delivered")
        throttled = [at for at, status, _ in receiver.arrivals if status == 429]
        first_ok_after = min(at for at, status, _ in receiver.arrivals if status == 200 and at > throttled[-1])
        print(f"\nflow throttling: {len(throttled)} answers 429 (Retry-After: 1); the channel resumed "
              f"{first_ok_after - throttled[-1]:.2f} s after the last")
        assert first_ok_after - throttled[-1] >= 0.9, "the channel did not pause for the Retry-After"
        assert _high_watermark(kafka, dlq) == 0, "a throttled notification was dead-lettered"
        assert notifyd.metric("notifyd_provider_throttled_total", channel="hooks") == len(throttled)
        assert notifyd.stop() == 0


class _SteadyTraffic:
    """Produces ``per_second`` notifications in a thread until stopped; returns their ids."""

    def __init__(self, kafka, topic: str, *, per_second: int) -> None:
        self._kafka, self._topic, self.per_second = kafka, topic, per_second
        self._ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(10)
        self._kafka.flush()
        return list(self._ids)

    def _run(self) -> None:
        interval = 1.0 / self.per_second
        while not self._stop.wait(interval):
            notification_id = f"o-{len(self._ids)}"
            self._kafka.produce(self._topic, json.dumps({"id": notification_id, "to": "ops", "body": "hi"}))
            self._ids.append(notification_id)


def _status_circuit(config, notifyd, monkeypatch, capsys) -> str | None:
    """The circuit ``notifyd status`` reports for the channel (it reads the daemon's /metrics)."""
    monkeypatch.setenv("NOTIFYD_METRICS_PORT", str(notifyd.metrics_port))
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["channels"][0]["circuit"]


def _caught_up_at(receiver: CountingReceiver, produced: list[str]) -> float:
    """When the last produced notification was first delivered."""
    wanted, at = set(produced), 0.0
    for when, status, notification_id in list(receiver.arrivals):
        if status == 200 and notification_id in wanted:
            wanted.discard(notification_id)
            at = when
    return at


def _high_watermark(kafka, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"hw.{topic}", **FAST_GROUP})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()
