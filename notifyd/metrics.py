"""Every Prometheus series notifyd exports, in one place, in base units.

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any process imports
prometheus_client, so channel processes write to files the supervisor's one
``/metrics`` endpoint aggregates. Counters of dead processes stay in the sum, so they
stay monotonic across restarts; gauges use "live" modes so dead processes drop out.

Every labelled series exists at 0 from the first scrape (``touch_channel``,
``touch_daemon``), so ``rate()`` and alerts see a channel before its first event.
``DOCUMENTED`` lists every series a dashboard or alert may use, with its known label
values: the start-up test and the docs both read it. prometheus_client cannot remove
a series in multiprocess mode, so a gauge set to ``REMOVED`` (NaN) is left out of
``/metrics`` by the scrape (``notifyd.daemon.metricsdir``): that is how a revoked
partition's ``notifyd_consumer_lag`` disappears.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from notifyd import __version__
from notifyd.records.dlqheaders import REASONS as DEAD_LETTER_REASONS


def _metric_classes() -> Any:
    """prometheus_client's ``Counter``, ``Gauge`` and ``Histogram``, without its package ``__init__`` if unimported.

    The ``__init__`` imports the exposition side too (urllib.request, http.server, wsgiref,
    gzip ...): ~2.5 MiB of a channel process, which only writes samples to its files
    (issue 23.2, a channel process within 60 MiB). Its submodules are imported under a bare
    package module that is dropped afterwards, so a later ``import prometheus_client`` (the
    supervisor's ``/metrics``) runs the real ``__init__`` over the same submodules. If that
    ever fails, the plain import.
    """
    if "prometheus_client" not in sys.modules:
        spec = importlib.util.find_spec("prometheus_client")
        bare = types.ModuleType("prometheus_client")
        bare.__path__ = list(spec.submodule_search_locations or ()) if spec else []
        sys.modules["prometheus_client"] = bare
        try:
            from prometheus_client.metrics import Counter, Gauge, Histogram

            return Counter, Gauge, Histogram
        except ImportError:
            pass
        finally:
            if sys.modules.get("prometheus_client") is bare:
                del sys.modules["prometheus_client"]
    from prometheus_client import Counter, Gauge, Histogram

    return Counter, Gauge, Histogram


if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
else:
    Counter, Gauge, Histogram = _metric_classes()

ATTEMPT_RESULTS = ("success", "retryable_error", "permanent_error")
SKIP_REASONS = ("opted_out",)  # the built-in ones; a handler's own reasons appear when first used
RELOAD_RESULTS = ("success", "failure")
HOLD_REASONS = ("scheduled", "quiet_hours", "recipient_limit", "ordering")  # why a notification waits on the delay topics
CHANNEL = "<channel>"  # in ``DOCUMENTED``: one series per configured channel
REMOVED = float("nan")

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 300.0, 3600.0)


@dataclass(frozen=True)
class Series:
    """One documented series: its sample name, kind, and every label's known values."""

    name: str
    kind: str
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    per_partition: bool = False  # one series per assigned partition (labels topic, partition)


DOCUMENTED = (
    Series("notifyd_notifications_received_total", "counter", {"channel": (CHANNEL,)}),
    Series("notifyd_notifications_delivered_total", "counter", {"channel": (CHANNEL,)}),
    Series("notifyd_delivery_attempts_total", "counter", {"channel": (CHANNEL,), "result": ATTEMPT_RESULTS}),
    Series("notifyd_notifications_dead_lettered_total", "counter",
           {"channel": (CHANNEL,), "reason": DEAD_LETTER_REASONS}),
    Series("notifyd_notifications_skipped_total", "counter", {"channel": (CHANNEL,), "reason": SKIP_REASONS}),
    Series("notifyd_notifications_held_total", "counter", {"channel": (CHANNEL,), "reason": HOLD_REASONS}),
    Series("notifyd_delivery_duration_seconds_count", "histogram", {"channel": (CHANNEL,)}),
    Series("notifyd_inflight_deliveries", "gauge", {"channel": (CHANNEL,)}),
    Series("notifyd_consumer_lag", "gauge", {"channel": (CHANNEL,)}, per_partition=True),
    Series("notifyd_channel_up", "gauge", {"channel": (CHANNEL,)}),
    Series("notifyd_channel_restarts_total", "counter", {"channel": (CHANNEL,)}),
    Series("notifyd_channel_stalls_total", "counter", {"channel": (CHANNEL,)}),
    Series("notifyd_broker_unreachable", "gauge", {"channel": (CHANNEL,)}),
    Series("notifyd_broker_outages_total", "counter", {"channel": (CHANNEL,)}),
    Series("notifyd_config_reloads_total", "counter", {"result": RELOAD_RESULTS}),
    Series("notifyd_config_last_reload_success_timestamp_seconds", "gauge"),
    Series("notifyd_build_info", "gauge", {"version": (__version__,)}),
)


@dataclass(frozen=True)
class ChannelMetrics:
    """Series updated by the channel processes."""

    received: Counter
    delivered: Counter
    attempts: Counter
    dead_lettered: Counter
    skipped: Counter
    duration: Histogram
    inflight: Gauge
    consumer_lag: Gauge


@dataclass(frozen=True)
class FlowMetrics:
    """Series of a channel's flow control (``notifyd.channel.flow``), registered only where it is configured."""

    circuit_state: Gauge
    rate_limit: Gauge
    throttled: Counter


@dataclass(frozen=True)
class FallbackMetrics:
    """Series of a channel's failover (``notifyd.channel.fallback``), registered only where it is configured."""

    handed_off: Counter
    fallback_attempts: Counter


@dataclass(frozen=True)
class DelayMetrics:
    """Series of the delay topics, updated by the channel processes.

    How many records wait in each tier is ``notifyd_consumer_lag`` of the delay topics.
    """

    scheduled: Counter
    lateness: Histogram
    held: Counter


@dataclass(frozen=True)
class DaemonMetrics:
    """Series updated by the supervisor."""

    channel_up: Gauge
    channel_restarts: Counter
    channel_stalls: Counter
    broker_unreachable: Gauge
    broker_outages: Counter
    config_reloads: Counter
    last_reload_success: Gauge
    build_info: Gauge


@cache
def channel_metrics() -> ChannelMetrics:
    """The channel-process series, registered once per process on first use."""
    return ChannelMetrics(
        received=Counter("notifyd_notifications_received", "Notifications read from Kafka.", ["channel"]),
        delivered=Counter("notifyd_notifications_delivered", "Notifications delivered by the handler.", ["channel"]),
        attempts=Counter(
            "notifyd_delivery_attempts", "Delivery attempts by result "
            "(success, retryable_error, permanent_error).", ["channel", "result"],
        ),
        dead_lettered=Counter(
            "notifyd_notifications_dead_lettered", "Notifications written to the DLQ (or dropped when the "
            "channel has none), by reason (invalid, permanent, retries_exhausted, expired).", ["channel", "reason"],
        ),
        skipped=Counter("notifyd_notifications_skipped", "Notifications skipped on purpose, by reason.",
                        ["channel", "reason"]),
        duration=Histogram("notifyd_delivery_duration_seconds", "Duration of one delivery attempt.",
                           ["channel"], buckets=DURATION_BUCKETS),
        inflight=Gauge("notifyd_inflight_deliveries", "Deliveries in flight.", ["channel"],
                       multiprocess_mode="livesum"),
        consumer_lag=Gauge(
            "notifyd_consumer_lag", "Messages between the committed position and the high watermark.",
            ["channel", "topic", "partition"], multiprocess_mode="livemostrecent",
        ),
    )


@cache
def flow_metrics() -> FlowMetrics:
    """The flow-control series, registered once per process on first use."""
    return FlowMetrics(
        circuit_state=Gauge(
            "notifyd_circuit_state", "The channel's circuit breaker: 0 closed, 1 half-open (probing), 2 open; "
            "the worst of the channel's processes.", ["channel"], multiprocess_mode="livemax",
        ),
        rate_limit=Gauge(
            "notifyd_rate_limit_per_second", "Delivery attempts per second the channel allows now (its rate_limit, "
            "slowed by throttling answers); summed over its processes.", ["channel"], multiprocess_mode="livesum",
        ),
        throttled=Counter("notifyd_provider_throttled", "Throttling answers from the provider (a 429 or the "
                          "provider's own), each of which slowed or paused the channel.", ["channel"]),
    )


@cache
def fallback_metrics() -> FallbackMetrics:
    """The failover series, registered once per process on first use."""
    return FallbackMetrics(
        handed_off=Counter("notifyd_fallbacks", "Notifications handed to the channel's fallback, by fallback "
                           "(a channel or a handler) and reason (circuit_open, retries_exhausted).",
                           ["channel", "fallback", "reason"]),
        fallback_attempts=Counter("notifyd_fallback_attempts", "Attempts of an inline fallback handler, by "
                                  "provider (the handler) and result (success, failure).",
                                  ["channel", "provider", "result"]),
    )


@cache
def delay_metrics() -> DelayMetrics:
    """The delay-topic series, registered once per process on first use."""
    return DelayMetrics(
        scheduled=Counter("notifyd_retries_scheduled", "Records written to a delay topic (a retry, or a hop to "
                          "the next tier), by tier (1s ... 8h).", ["channel", "tier"]),
        lateness=Histogram("notifyd_delay_lateness_seconds", "Delayed notifications: time from their due time "
                           "to their next attempt.", ["channel"], buckets=LATENESS_BUCKETS),
        held=Counter("notifyd_notifications_held", "Notifications parked on the delay topics without an attempt, "
                     "by reason (scheduled, quiet_hours, recipient_limit).", ["channel", "reason"]),
    )


@cache
def daemon_metrics() -> DaemonMetrics:
    """The supervisor's series, registered once on first use."""
    return DaemonMetrics(
        channel_up=Gauge("notifyd_channel_up", "1 while every process of the channel runs a subscribed consumer.",
                         ["channel"], multiprocess_mode="livemax"),
        channel_restarts=Counter("notifyd_channel_restarts", "Channel processes restarted after an exit.",
                                 ["channel"]),
        channel_stalls=Counter("notifyd_channel_stalls", "Channel processes killed because their poll loop "
                               "stopped heart-beating (a thread dump is logged first).", ["channel"]),
        broker_unreachable=Gauge("notifyd_broker_unreachable", "1 while a process of the channel has lost "
                                 "every broker.", ["channel"], multiprocess_mode="livemax"),
        broker_outages=Counter("notifyd_broker_outages", "Outages of every broker as a channel saw them "
                               "(each counted when it starts).", ["channel"]),
        config_reloads=Counter("notifyd_config_reloads", "Config reloads by result (success, failure).", ["result"]),
        last_reload_success=Gauge("notifyd_config_last_reload_success_timestamp_seconds",
                                  "Unix time of the last successful config load.", multiprocess_mode="livemax"),
        build_info=Gauge("notifyd_build_info", "Always 1; the version is a label.", ["version"],
                         multiprocess_mode="livemax"),
    )


def touch_channel(metrics: ChannelMetrics, channel: str) -> None:
    """Create every series of ``channel`` with each known label value, at 0 (no partition yet)."""
    for labelled in (metrics.received, metrics.delivered, metrics.duration, metrics.inflight):
        labelled.labels(channel)
    for result in ATTEMPT_RESULTS:
        metrics.attempts.labels(channel, result)
    for reason in DEAD_LETTER_REASONS:
        metrics.dead_lettered.labels(channel, reason)
    for reason in SKIP_REASONS:
        metrics.skipped.labels(channel, reason)
    for reason in HOLD_REASONS:
        delay_metrics().held.labels(channel, reason)


def touch_daemon(metrics: DaemonMetrics, channels: Iterable[str]) -> None:
    """Create the supervisor's series for ``channels`` and every reload result, at 0."""
    for result in RELOAD_RESULTS:
        metrics.config_reloads.labels(result)
    for channel in channels:
        for labelled in (metrics.channel_up, metrics.channel_restarts, metrics.channel_stalls,
                         metrics.broker_unreachable, metrics.broker_outages):
            labelled.labels(channel)


@cache
def duplicates_suppressed() -> Counter:
    """Redelivered notifications the delivery ledger did not send again (``notifyd.ledger``)."""
    return Counter("notifyd_duplicates_suppressed", "Redelivered notifications not sent again because the "
                   "delivery ledger had them sent within its window.", ["channel"])
