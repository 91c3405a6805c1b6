"""Delivery metrics: counters and durations tallied per attempt, written by flush."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from notifyd.api import PermanentError, RetryableError, SkipNotification
from notifyd.channel.deliverymetrics import DeliveryMetrics, DurationTally
from notifyd.metrics import ChannelMetrics


def fresh_metrics() -> tuple[ChannelMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = ChannelMetrics(
        received=Counter("received", "r", ["channel"], registry=registry),
        delivered=Counter("delivered", "d", ["channel"], registry=registry),
        attempts=Counter("attempts", "a", ["channel", "result"], registry=registry),
        dead_lettered=Counter("dead", "x", ["channel", "reason"], registry=registry),
        skipped=Counter("skipped", "s", ["channel", "reason"], registry=registry),
        duration=Histogram("duration", "t", ["channel"], registry=registry),
        inflight=Gauge("inflight", "i", ["channel"], registry=registry),
        consumer_lag=Gauge("lag", "l", ["channel", "topic", "partition"], registry=registry),
    )
    return metrics, registry


def test_counters_and_durations_wait_for_flush() -> None:
    metrics, registry = fresh_metrics()
    recorder = DeliveryMetrics(metrics, "email")
    for outcome in (None, None, RetryableError("503"), PermanentError("bad address"), SkipNotification("opted_out")):
        recorder.attempt(outcome, 0.002)
    recorder.dead_lettered("permanent")

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"channel": "email", **labels})

    assert not value("duration_count")
    assert not value("delivered_total")
    recorder.flush()
    assert value("duration_count") == 5
    assert value("delivered_total") == 2
    assert value("attempts_total", result="success") == 2
    assert value("attempts_total", result="retryable_error") == 1
    assert value("attempts_total", result="permanent_error") == 1
    assert value("skipped_total", reason="opted_out") == 1
    assert value("dead_total", reason="permanent") == 1
    recorder.flush()  # nothing tallied since: nothing added twice
    assert value("delivered_total") == 2


def histogram_samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect() for sample in family.samples if not sample.name.endswith("_created")}


def test_a_flushed_tally_equals_observing_each_duration() -> None:
    durations = [0.0, 0.004, 0.005, 0.0051, 0.3, 2.5, 59.9, 60.0, 61.0, 3600.0, 0.01] * 3
    observed, tallied = CollectorRegistry(), CollectorRegistry()
    one_by_one = Histogram("d", "t", ["channel"], registry=observed).labels("email")
    batched = DurationTally(Histogram("d", "t", ["channel"], registry=tallied).labels("email"))
    for seconds in durations:
        one_by_one.observe(seconds)
        batched.observe(seconds)
    batched.flush()
    batched.flush()  # nothing counted since: nothing added twice
    assert histogram_samples(tallied) == histogram_samples(observed)
    assert histogram_samples(tallied)[("d_count", (("channel", "email"),))] == len(durations)


class ObserveOnly:
    """A histogram child laid out unlike prometheus_client's: only ``observe`` is known to work."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, seconds: float) -> None:
        self.seen.append(seconds)


def test_an_unknown_histogram_layout_is_observed_one_by_one() -> None:
    child = ObserveOnly()
    tally = DurationTally(child)
    tally.observe(0.25)
    assert child.seen == [0.25]
    tally.flush()
    assert child.seen == [0.25]
