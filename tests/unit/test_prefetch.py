"""The channel consumer's bounded read-ahead: a default derived from concurrency, which the YAML overrides."""

from __future__ import annotations

from notifyd.config.kafka import channel_consumer, delay_consumer, dlq_producer, prefetch_defaults
from notifyd.config.settings import ChannelSettings, KafkaSettings

KAFKA = KafkaSettings("b:9092")


def channel(**overrides: object) -> ChannelSettings:
    return ChannelSettings(name="c", topics=("t",), handler="log", group_id="g", **overrides)


def test_a_channel_reads_ahead_about_one_mib_and_refills_within_10_ms() -> None:
    settings = channel_consumer(KAFKA, channel())
    assert settings["queued.max.messages.kbytes"] == 1024
    assert settings["queued.min.messages"] == 10_000
    assert settings["fetch.queue.backoff.ms"] == 10


def test_a_wider_channel_reads_ahead_more() -> None:
    assert prefetch_defaults(1000)["queued.max.messages.kbytes"] == 1024
    assert prefetch_defaults(8000) == {"queued.max.messages.kbytes": 8000, "queued.min.messages": 16_000,
                                       "fetch.queue.backoff.ms": 10}


def test_kafka_config_and_consumer_config_override_the_read_ahead() -> None:
    shared = KafkaSettings("b:9092", {"queued.max.messages.kbytes": 65536})
    assert channel_consumer(shared, channel())["queued.max.messages.kbytes"] == 65536
    own = channel(consumer_config={"queued.min.messages": 100_000, "fetch.queue.backoff.ms": 1000})
    settings = channel_consumer(shared, own)
    assert (settings["queued.min.messages"], settings["fetch.queue.backoff.ms"]) == (100_000, 1000)


def test_the_delay_consumer_waits_100_ms_at_the_broker_unless_told_to_wait_longer() -> None:
    assert "fetch.wait.max.ms" not in channel_consumer(KAFKA, channel())  # librdkafka's 500 for the sources
    assert delay_consumer(KAFKA, channel())["fetch.wait.max.ms"] == 100
    assert delay_consumer(KAFKA, channel(consumer_config={"fetch.wait.max.ms": 300}))["fetch.wait.max.ms"] == 300


def test_a_short_fetch_wait_for_the_sources_latency_leaves_the_delay_consumer_at_100_ms() -> None:
    # Ten tiers' partitions fetched every 10 ms took the test broker's CPU from the sources (bench case 3).
    shared = KafkaSettings("b:9092", {"fetch.wait.max.ms": 20})
    assert channel_consumer(shared, channel())["fetch.wait.max.ms"] == 20
    assert delay_consumer(shared, channel())["fetch.wait.max.ms"] == 100
    assert delay_consumer(KAFKA, channel(consumer_config={"fetch.wait.max.ms": "10"}))["fetch.wait.max.ms"] == 100
    assert delay_consumer(KAFKA, channel(consumer_config={"fetch.wait.max.ms": "ten"}))["fetch.wait.max.ms"] == "ten"


def test_producers_get_no_consumer_read_ahead() -> None:
    assert not any(key.startswith(("queued.", "fetch.")) for key in dlq_producer(KAFKA))
