"""Every Prometheus series notifyd exports, in one place, in base units.

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any process imports
prometheus_client, so channel processes write to files the supervisor's one
``/metrics`` endpoint aggregates. Counters of dead processes stay in the sum, so they
stay monotonic across restarts; gauges use "live" modes so dead processes drop out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 300.0, 3600.0)


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
class DelayMetrics:
    """Series of the delay topics, updated by the channel processes.

    How many records wait in each tier is ``notifyd_consumer_lag`` of the delay topics.
    """

    scheduled: Counter
    lateness: Histogram


@dataclass(frozen=True)
class DaemonMetrics:
    """Series updated by the supervisor."""

    channel_up: Gauge
    channel_restarts: Counter
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
            "channel has none), by reason (invalid, permanent, retries_exhausted).", ["channel", "reason"],
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
def delay_metrics() -> DelayMetrics:
    """The delay-topic series, registered once per process on first use."""
    return DelayMetrics(
        scheduled=Counter("notifyd_retries_scheduled", "Records written to a delay topic (a retry, or a hop to "
                          "the next tier), by tier (1s ... 8h).", ["channel", "tier"]),
        lateness=Histogram("notifyd_delay_lateness_seconds", "Delayed notifications: time from their due time "
                           "to their next attempt.", ["channel"], buckets=LATENESS_BUCKETS),
    )


@cache
def daemon_metrics() -> DaemonMetrics:
    """The supervisor's series, registered once on first use."""
    return DaemonMetrics(
        channel_up=Gauge("notifyd_channel_up", "1 while every process of the channel runs a subscribed consumer.",
                         ["channel"], multiprocess_mode="livemax"),
        channel_restarts=Counter("notifyd_channel_restarts", "Channel processes restarted after an exit.",
                                 ["channel"]),
        config_reloads=Counter("notifyd_config_reloads", "Config reloads by result (success, failure).", ["result"]),
        last_reload_success=Gauge("notifyd_config_last_reload_success_timestamp_seconds",
                                  "Unix time of the last successful config load.", multiprocess_mode="livemax"),
        build_info=Gauge("notifyd_build_info", "Always 1; the version is a label.", ["version"],
                         multiprocess_mode="livemax"),
    )
