"""Checks of the channels' delay topics and groups: names, and what two channels may not share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from notifyd.config import delays
from notifyd.config.findings import Problem
from notifyd.schemas import load_schema


def delay_topics_of(name: str, channel: dict[str, Any]) -> tuple[str, ...]:
    """A channel's delay topics, from its raw settings (``delays.delay_topics`` takes built ones)."""
    return delays.tier_topics(channel.get("delay_topic_prefix") or delays.default_prefix(group_of(name, channel)))


def delay_problems(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    """Delay topics or a delay group two channels share: each would deliver the other's retries."""
    topic_owner: dict[str, str] = {}
    topic_name = _topic_schema()
    for name, channel in channels.items():
        topics = delay_topics_of(name, channel)
        bad = next((topic for topic in topics if not re.match(topic_name["pattern"], topic)), None)
        if bad is not None:  # its name comes from group_id, which the schema does not check as a topic
            yield prefix_problem(name, channel, f"its delay topic {bad!r} is not {topic_name['x-pattern-hint']}")
        other = next((topic_owner[topic] for topic in topics if topic in topic_owner), None)
        if other is not None:
            yield prefix_problem(name, channel, f"channel {other!r} has the same delay topics ({topics[0]}, ...); "
                                                 "each channel would deliver the other's retries")
        for topic in topics:
            topic_owner.setdefault(topic, name)
    yield from _delay_group_problems(channels)
    for name, channel in channels.items():
        for key in ("dlq", "events"):
            topic = channel.get(key)
            if topic in topic_owner:
                yield ("channels", name, key), f"{topic!r} is a delay topic of channel {topic_owner[topic]!r}", False
        if channel.get("events") and channel.get("events") == channel.get("dlq"):
            message = "the events topic is the channel's DLQ: dlq inspect and replay would read outcome records"
            yield ("channels", name, "events"), message, False


def prefix_problem(name: str, channel: dict[str, Any], message: str) -> Problem:
    """A problem of the channel's delay topics: at its ``delay_topic_prefix``, else at the channel, saying to set one."""
    if "delay_topic_prefix" in channel:
        return ("channels", name, "delay_topic_prefix"), message, False
    return ("channels", name), message + "; set delay_topic_prefix", True


def _delay_group_problems(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    """A channel's group that is another channel's delay group (``<group>.delay``, which reads its tiers)."""
    delay_group_of = {delays.delay_group_name(group_of(name, channel)): name for name, channel in channels.items()}
    for name, channel in channels.items():
        other = delay_group_of.get(group_of(name, channel))
        if other is not None and other != name:
            message = (f"consumer group {group_of(name, channel)!r} is the one that reads the delay topics of "
                       f"channel {other!r}")
            yield ("channels", name, "group_id"), message, False


def group_of(name: str, channel: dict[str, Any]) -> str:
    """The channel's consumer group, from its raw settings."""
    return channel.get("group_id", delays.default_group(name))


@cache
def _topic_schema() -> dict[str, str]:
    """The schema's definition of a topic name: its pattern and how to word a name that does not match."""
    return load_schema("notifyd")["$defs"]["topic"]
