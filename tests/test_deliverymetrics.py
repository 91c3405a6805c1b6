"""Delivery metrics: counters tallied per attempt, written by flush; durations observed at once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from notifyd.deliverymetrics import DeliveryMetrics
from notifyd.handler import PermanentError, RetryableError
from notifyd.metrics import ChannelMetrics
from notifyd.preparation import SkipNotification


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


def test_counters_wait_for_flush_and_durations_do_not() -> None:
    metrics, registry = fresh_metrics()
    recorder = DeliveryMetrics(metrics, "email")
    for outcome in (None, None, RetryableError("503"), PermanentError("bad address"), SkipNotification("opted_out")):
        recorder.attempt(outcome, 0.002)
    recorder.dead_lettered("permanent")

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"channel": "email", **labels})

    assert value("duration_count") == 5
    assert value("delivered_total") is None or value("delivered_total") == 0
    recorder.flush()
    assert value("delivered_total") == 2
    assert value("attempts_total", result="success") == 2
    assert value("attempts_total", result="retryable_error") == 1
    assert value("attempts_total", result="permanent_error") == 1
    assert value("skipped_total", reason="opted_out") == 1
    assert value("dead_total", reason="permanent") == 1
    recorder.flush()  # nothing tallied since: nothing added twice
    assert value("delivered_total") == 2
