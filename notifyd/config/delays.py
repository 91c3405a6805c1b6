"""Where a channel's delayed notifications wait: its ladder of delay topics, and the default retry schedule.

Each channel has one delay topic per tier of ``TIER_DELAYS``, named
``<delay_topic_prefix>.<delay>`` (``<group_id>.delay.5s``, so ``notifyd.<channel>.delay.5s``
by default, unless the channel sets ``delay_topic_prefix``). A record sits in a tier for exactly that tier's delay, so within
one partition of a tier the due times rise with the offsets; a longer wait crosses several
tiers, largest first (``notifyd.channel.tiers``). The channel process creates missing delay
topics at start, and ``notifyd topics ensure`` creates them ahead of time.
"""

from __future__ import annotations

from notifyd.config.durations import format_duration
from notifyd.config.settings import ChannelSettings

# Seconds each tier holds a record; the smallest bounds how late a delayed record can be.
TIER_DELAYS: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)

# Seconds before each retry when a channel sets none of retry_schedule, retries, backoff:
# 25.7 hours in all, about the length of a provider outage worth waiting out (Svix: ~28 h).
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
                                              36000.0)


def default_group(channel_name: str) -> str:
    """The consumer group of a channel that sets no ``group_id``."""
    return f"notifyd.{channel_name}"


def default_prefix(group_id: str) -> str:
    """The delay topics' prefix of a channel that sets no ``delay_topic_prefix``: its consumer group's.

    The group's and not the channel's name: two deployments sharing a cluster (and a
    channel name) under different groups must not read each other's retries.
    """
    return f"{group_id}.delay"


def delay_group(channel: ChannelSettings) -> str:
    """The consumer group that reads the channel's delay topics: its own group's, ``.delay`` added.

    A group apart from the source topics': cooperative-sticky balances the partitions a
    member owns over all the topics it subscribes to, so in one group the tiers would
    unbalance the source partitions (``notifyd.channel.delayreader``).
    """
    return delay_group_name(channel.group_id or default_group(channel.name))


def delay_group_name(group_id: str) -> str:
    """The delay topics' group of a channel whose own group is ``group_id``."""
    return f"{group_id}.delay"


def tier_topic(prefix: str, delay: float) -> str:
    """The delay topic of one tier: ``<prefix>.30s``, ``<prefix>.2m``, ``<prefix>.8h``."""
    return f"{prefix}.{format_duration(delay)}"


def delay_topics(channel: ChannelSettings) -> tuple[str, ...]:
    """The channel's delay topics, smallest tier first."""
    return tier_topics(channel.delay_topic_prefix or default_prefix(channel.group_id or default_group(channel.name)))


def tier_topics(prefix: str) -> tuple[str, ...]:
    """The delay topics under ``prefix``, smallest tier first."""
    return tuple(tier_topic(prefix, delay) for delay in TIER_DELAYS)
