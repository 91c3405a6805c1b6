"""The pure core of durable retries: schedules, delay-topic names, tier routing, delay headers."""

from __future__ import annotations

import dataclasses
import random

import pytest

from notifyd.channel.backoff import retry_delay
from notifyd.channel.tiers import Hop, next_hop, wait_before
from notifyd.config.delays import DEFAULT_RETRY_SCHEDULE, TIER_DELAYS, delay_topics
from notifyd.config.durations import format_duration, parse_duration
from notifyd.config.loading import check_text
from notifyd.config.settings import BackoffPolicy, ChannelSettings
from notifyd.records import delayheaders as dh

CONFIG = """\
kafka: {bootstrap_servers: "localhost:9092"}
channels:
  email:
    topics: [notify.email]
    handler: log
"""


def channel(extra: str) -> tuple[ChannelSettings | None, list[str]]:
    config, findings = check_text(CONFIG + extra, "f.yaml", {})
    return (config.channels["email"] if config else None), [str(f) for f in findings]


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5), ("2m", 120), ("1h30m", 5400), ("7d", 604800),
                                                ("0.5s", 0.5), (3, 3.0), (1.5, 1.5)])
def test_durations_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "5x", "", "s", "1h 30m", "-5s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_format_in_the_largest_whole_unit() -> None:
    assert [format_duration(d) for d in TIER_DELAYS] == ["1s", "5s", "30s", "2m", "10m", "30m", "1h", "2h", "4h", "8h"]
    assert format_duration(90) == "90s" and format_duration(0.5) == "0.5s"


def test_the_default_schedule_reaches_a_day_and_applies_when_no_retry_key_is_set() -> None:
    assert sum(DEFAULT_RETRY_SCHEDULE) >= 24 * 3600
    settings, findings = channel("")
    assert findings == []
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE and settings.retries == len(DEFAULT_RETRY_SCHEDULE)
    assert [retry_delay(settings, attempt, retry_after=None) for attempt in (1, 2, 10)] == [5.0, 30.0, 36000.0]


def test_retries_and_backoff_keep_their_meaning() -> None:
    settings, _ = channel("    retries: 2\n    backoff: {initial: 0.5, max: 1, jitter: false}\n")
    assert settings.retry_schedule is None and settings.retries == 2
    assert [retry_delay(settings, attempt, retry_after=None) for attempt in (1, 2, 3)] == [0.5, 1.0, 1.0]
    only_backoff, _ = channel("    backoff: {initial: 2}\n")
    assert only_backoff.retries == 3 and only_backoff.retry_schedule is None


def test_an_explicit_schedule_sets_the_number_of_retries() -> None:
    settings, _ = channel("    retry_schedule: [1s, 2m, 90]\n")
    assert settings.retry_schedule == (1.0, 120.0, 90.0) and settings.retries == 3
    assert retry_delay(settings, 2, retry_after=None) == 120.0
    assert retry_delay(settings, 2, retry_after=7.0) == 7.0  # the provider's Retry-After wins


def test_a_schedule_excludes_retries_and_backoff_and_must_be_durations() -> None:
    _, findings = channel("    retries: 2\n    retry_schedule: [5s]\n")
    assert findings == ["f.yaml:6:5: channels.email.retries: retries and retry_schedule exclude each other: "
                        "the schedule sets the delay of every retry"]
    _, findings = channel("    retry_schedule: [5s, soon]\n")
    assert findings == ["f.yaml:6:26: channels.email.retry_schedule[1]: 'soon' is not a duration (seconds over 0, "
                        "or text such as 5s, 2m, 1h30m, 7d)"]


def test_delay_topics_are_named_per_channel_and_overridable() -> None:
    settings, _ = channel("")
    assert delay_topics(settings)[:3] == ("notifyd.email.delay.1s", "notifyd.email.delay.5s", "notifyd.email.delay.30s")
    custom, _ = channel("    delay_topic_prefix: mail.wait\n")
    assert delay_topics(custom)[-1] == "mail.wait.8h"


def test_a_delay_topic_consumed_by_a_channel_is_refused() -> None:
    _, findings = channel("  other:\n    topics: [notifyd.email.delay.5s]\n    handler: log\n")
    assert findings == ["f.yaml:3:3: channels.email: delay topic 'notifyd.email.delay.5s' of this channel is "
                        "consumed by channel 'other'; set delay_topic_prefix"]


def test_two_channels_sharing_delay_topics_are_refused() -> None:
    # Copying a channel that sets delay_topic_prefix: the copy would deliver the original's retries.
    _, findings = channel("    delay_topic_prefix: mail.wait\n"
                          "  copy:\n    topics: [notify.copy]\n    handler: log\n    delay_topic_prefix: mail.wait\n")
    assert findings == ["f.yaml:10:25: channels.copy.delay_topic_prefix: channel 'email' has the same delay topics "
                        "(mail.wait.1s, ...); each channel would deliver the other's retries"]


def test_a_group_id_that_makes_invalid_delay_topic_names_is_refused() -> None:
    # Tansu created "team a/notifs.delay.1s"; Kafka would refuse it when the channel starts.
    _, findings = channel("    group_id: team a/notifs\n")
    assert findings == ["f.yaml:3:3: channels.email: its delay topic 'team a/notifs.delay.1s' is not a valid Kafka "
                        "topic name (1-249 of A-Z a-z 0-9 . _ -); set delay_topic_prefix"]


def test_a_group_that_reads_another_channels_delay_topics_is_refused() -> None:
    _, findings = channel("  other:\n    topics: [notify.other]\n    handler: log\n    group_id: notifyd.email.delay\n")
    assert findings == ["f.yaml:9:15: channels.other.group_id: consumer group 'notifyd.email.delay' is the one that "
                        "reads the delay topics of channel 'email'"]


def test_a_dlq_or_events_topic_on_a_delay_topic_or_on_the_dlq_is_refused() -> None:
    _, findings = channel("    events: notifyd.email.delay.5s\n")
    assert findings == ["f.yaml:6:13: channels.email.events: 'notifyd.email.delay.5s' is a delay topic of channel "
                        "'email'"]
    _, findings = channel("    dlq: notify.email.dlq\n    events: notify.email.dlq\n")
    assert findings == ["f.yaml:7:13: channels.email.events: the events topic is the channel's DLQ: dlq inspect "
                        "and replay would read outcome records"]


@pytest.mark.parametrize(("remaining", "hop"), [
    (5.0, Hop(1, 1005.0)), (7.0, Hop(1, 1005.0)), (86400.0 * 30, Hop(9, 1000 + 28800.0)), (0.4, Hop(0, 1000.4)),
    (1.0, Hop(0, 1001.0)), (119.9, Hop(2, 1030.0)), (0.005, None), (-3.0, None)])
def test_a_wait_goes_to_the_largest_tier_that_fits(remaining: float, hop: Hop | None) -> None:
    assert next_hop(now=1000.0, due=1000.0 + remaining, ladder=TIER_DELAYS) == hop


def test_any_wait_is_covered_by_the_cascade_with_under_a_tier_of_residue() -> None:
    rng = random.Random(3)
    for _ in range(500):
        now, due = 0.0, rng.uniform(0, 40 * 86400)
        hops = 0
        while (hop := next_hop(now=now, due=due, ladder=TIER_DELAYS)) is not None:
            assert hop.due <= due + 1e-9 and hop.due - now == pytest.approx(TIER_DELAYS[hop.tier]) or hop.tier == 0
            now, hops = hop.due, hops + 1
        assert abs(now - due) <= 0.011 and hops < 140  # 30 days ahead: ~90 hops of the 8 h tier


def test_a_record_waits_only_when_its_hop_is_ahead() -> None:
    assert wait_before(105.0, now=100.0) == 5.0
    # Never early, not even by a few ms: a timer that fires a little early waits out the rest.
    assert wait_before(100.005, now=100.0) == pytest.approx(0.005) and wait_before(90.0, now=100.0) == 0.0


def test_delay_state_round_trips_through_headers() -> None:
    state = dh.DelayState(attempts=3, due=1700000000.25, hop_due=1699999990.0, source_topic="notify.email",
                          source_partition=2, source_offset=41, first_failed_at=1699999000.5, last_error="E: boom",
                          source_timestamp=1699990000123)
    headers = [("trace", b"x"), *dh.encode(state)]
    assert dh.decode(headers, topic="t", partition=0, offset=0) == state
    assert dh.without_delay_headers(headers) == [("trace", b"x")]
    moved = dh.decode(dh.encode(state, hop_due=1700000000.0), topic="t", partition=0, offset=0)
    assert moved == dataclasses.replace(state, hop_due=1700000000.0)  # a hand-over's own hop


def test_a_due_time_never_comes_back_from_the_headers_earlier_than_it_went_in() -> None:
    # A recipient's window that frees at .0004 must not see the record again at .000: it would be held once more.
    state = dh.DelayState(attempts=0, due=1700000000.0004, hop_due=1700000000.0004, source_topic="t",
                          source_partition=0, source_offset=0)
    back = dh.decode(dh.encode(state), topic="t", partition=0, offset=0)
    assert state.due <= back.due < state.due + 0.001 and state.hop_due <= back.hop_due < state.hop_due + 0.001


def test_unreadable_delay_headers_mean_due_now_from_where_the_record_is() -> None:
    state = dh.decode([(dh.HEADER_DUE, b"soon"), (dh.HEADER_ATTEMPTS, b"\xff"), (dh.HEADER_SOURCE_OFFSET, b"nan")],
                      topic="t", partition=4, offset=9)
    assert (state.attempts, state.due, state.hop_due, state.source_topic, state.source_partition,
            state.source_offset, state.first_failed_at) == (0, 0.0, 0.0, "t", 4, 9, None)


def test_a_record_delayed_before_the_source_timestamp_had_a_header_reports_its_own() -> None:
    # Such a record was written with its source's timestamp; a new one carries it in a header.
    old = dh.encode(dh.DelayState(attempts=1, due=1.0, hop_due=1.0, source_topic="t", source_partition=0,
                                  source_offset=0))
    assert dh.decode(old, topic="d", partition=0, offset=5, timestamp=1699990000123).source_timestamp == 1699990000123
    assert dh.decode(old, topic="d", partition=0, offset=5).source_timestamp is None


def test_unit_tests_building_settings_by_hand_keep_backoff() -> None:
    settings = ChannelSettings(name="c", topics=("t",), handler="log", retries=2,
                               backoff=BackoffPolicy(initial=0.01, max=0.02, jitter=False))
    assert retry_delay(settings, 1, retry_after=None) == 0.01
