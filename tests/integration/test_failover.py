"""Failover against the real broker and real local provider servers: a fallback channel, an inline handler.

The primary channel's provider answers 503 (always, or for a while); the fallback's answers
200. Nothing may be dead-lettered, and the records handed on say where they came from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.kit.daemon import daemon_config
from tests.kit.httpserver import ProviderServer, Reply, Request
from tests.kit.kafka import FAST_GROUP
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


@dataclass
class Receiver:
    """Answers 503 while ``down``, else 200; notes each request's status and notification id."""

    down: bool = False
    arrivals: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        status = 503 if self.down else 200
        self.arrivals.append((status, request.headers.get("webhook-id", "")))
        return Reply(status, {"error": "unavailable"} if self.down else {"received": True})

    def delivered(self) -> set[str]:
        return {i for status, i in list(self.arrivals) if status == 200}


def _webhook(topic: str, url: str, group: str, **extra) -> dict:
    return {"topics": [topic], "group_id": group, "handler": "webhook", "options": {"url": url, "timeout": 5},
            "backoff": {"initial": 0.05, "max": 0.1}, **extra}


def _produce(kafka, topic: str, ids: list[str]) -> None:
    for notification_id in ids:
        kafka.produce(topic, json.dumps({"id": notification_id, "to": "ops", "body": "hi"}), key=notification_id,
                      headers=[("traceparent", b"00-trace-01")])
    kafka.flush()


def _high_watermark(kafka, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"hw.{topic}", **FAST_GROUP})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def test_exhausted_retries_go_to_the_fallback_channel(kafka, unique, write_config, daemon) -> None:
    primary_topic, relay_topic, dlq, relay_dlq = (unique(n) for n in ("fo.ses", "fo.relay", "fo.dlq", "fo.rdlq"))
    kafka.create_topics(primary_topic, relay_topic, dlq, relay_dlq)
    ses, relay, group = Receiver(down=True), Receiver(), unique("g")
    with ProviderServer(ses) as ses_server, ProviderServer(relay) as relay_server:
        config = write_config(daemon_config(kafka.bootstrap, {
            "ses": _webhook(primary_topic, f"{ses_server.url}/send", group, retries=2, dlq=dlq,
                            fallback="relay"),
            "relay": _webhook(relay_topic, f"{relay_server.url}/send", unique("g"), dlq=relay_dlq),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        ids = [f"x-{i}" for i in range(20)]
        _produce(kafka, primary_topic, ids)
        wait_until(lambda: relay.delivered() == set(ids), timeout=60, what="every notification through the relay")
        handed = kafka.read(relay_topic, len(ids))
        assert sorted(m.key().decode() for m in handed) == sorted(ids)
        headers = dict(handed[0].headers())
        assert headers["traceparent"] == b"00-trace-01"  # the original headers, then where it came from
        assert headers["notifyd.fallback.from"] == b"ses"
        assert headers["notifyd.fallback.reason"] == b"retries_exhausted"
        assert len([s for s, _ in ses.arrivals]) == 3 * len(ids), "the primary's attempts were all made first"
        wait_until(lambda: notifyd.metric("notifyd_fallbacks_total", channel="ses", fallback="relay",
                                          reason="retries_exhausted") == len(ids), what="the hand-offs counted")
        assert notifyd.events("notification handed to the fallback")
        assert _high_watermark(kafka, dlq) == 0 and _high_watermark(kafka, relay_dlq) == 0, "dead-lettered"
        wait_until(lambda: kafka.committed(group, primary_topic) == [len(ids)],
                   what="the primary's offsets finished")
        assert notifyd.stop() == 0


def test_an_open_circuit_sends_through_the_fallback_channel(kafka, unique, write_config, daemon) -> None:
    primary_topic, relay_topic, dlq = (unique(n) for n in ("fo.push", "fo.mail", "fo.pdlq"))
    kafka.create_topics(primary_topic, relay_topic, dlq)
    push, mail = Receiver(down=True), Receiver()
    with ProviderServer(push) as push_server, ProviderServer(mail) as mail_server:
        config = write_config(daemon_config(kafka.bootstrap, {
            # retries: 50 would take far longer than the test's deadline without the circuit.
            "push": _webhook(primary_topic, f"{push_server.url}/send", unique("g"), retries=50, dlq=dlq,
                             concurrency=4, fallback="mail",
                             circuit_breaker={"consecutive_failures": 3, "probe_interval": 1.0}),
            "mail": _webhook(relay_topic, f"{mail_server.url}/send", unique("g")),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        ids = [f"c-{i}" for i in range(60)]
        _produce(kafka, primary_topic, ids)
        wait_until(lambda: mail.delivered() == set(ids), timeout=30, what="every notification through mail")
        assert notifyd.metric("notifyd_circuit_state", channel="push") == 2
        diverted = notifyd.metric("notifyd_fallbacks_total", channel="push", fallback="mail", reason="circuit_open")
        failed_at_push = sum(1 for status, _ in push.arrivals if status == 503)
        print(f"\nfailover: circuit open after 3 failures; {diverted:g} of {len(ids)} sent through the fallback "
              f"while open, {failed_at_push} requests reached the failing provider")
        assert diverted == len(ids)  # each, after at most a few retries, went over while the circuit was open
        assert failed_at_push < len(ids), "the open circuit kept most notifications from the failing provider"
        reasons = {dict(m.headers())["notifyd.fallback.reason"] for m in kafka.read(relay_topic, len(ids))}
        assert reasons == {b"circuit_open"}
        # The provider is back: a probe (one of a trickle) closes the circuit and the primary delivers again.
        push.down = False
        wait_until(lambda: _closed_or_trickle(notifyd, kafka, primary_topic), timeout=30, interval=0.3,
                   what="the circuit closed")
        later = [f"d-{i}" for i in range(10)]
        _produce(kafka, primary_topic, later)
        wait_until(lambda: push.delivered() >= set(later), timeout=30, what="the primary delivering again")
        assert _high_watermark(kafka, dlq) == 0, "something was dead-lettered"
        assert notifyd.stop() == 0


def test_an_inline_fallback_handler_delivers_or_dead_letters_naming_itself(kafka, unique, write_config,
                                                                             daemon) -> None:
    topic, dlq = unique("fo.sms"), unique("fo.sdlq")
    kafka.create_topics(topic, dlq)
    first, second = Receiver(down=True), Receiver()
    with ProviderServer(first) as first_server, ProviderServer(second) as second_server:
        config = write_config(daemon_config(kafka.bootstrap, {
            "sms": _webhook(topic, f"{first_server.url}/send", unique("g"), retries=1, dlq=dlq,
                            fallback={"handler": "webhook", "options": {"url": f"{second_server.url}/b",
                                                                        "timeout": 5}}),
        }))
        notifyd = daemon(config)
        notifyd.wait_ready()
        _produce(kafka, topic, ["ok-1", "ok-2"])
        wait_until(lambda: second.delivered() == {"ok-1", "ok-2"}, timeout=30, what="delivered by the second")
        wait_until(lambda: notifyd.metric("notifyd_fallback_attempts_total", channel="sms", provider="webhook",
                                          result="success") == 2, what="the fallback's successes counted")
        assert notifyd.events("delivered through the fallback")
        second.down = True
        _produce(kafka, topic, ["lost-1"])
        [record] = kafka.read(dlq, 1)
        headers = dict(record.headers())
        assert headers["notifyd.provider"] == b"webhook"
        assert headers["notifyd.fallback.from"] == b"sms"
        assert headers["notifyd.fallback.reason"] == b"retries_exhausted"
        assert headers["notifyd.error.reason"] == b"retries_exhausted"
        assert notifyd.stop() == 0


def _closed_or_trickle(notifyd, kafka, topic: str) -> bool:
    """Whether the circuit closed; if not, one more notification for the next probe to take."""
    if notifyd.metric("notifyd_circuit_state", channel="push") == 0:
        return True
    _produce(kafka, topic, [f"probe-{time.monotonic_ns()}"])
    return False
