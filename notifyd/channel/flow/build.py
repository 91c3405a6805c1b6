"""The flow control a channel's settings ask for: a gate and a share keeper, or nothing at all."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from notifyd.channel.flow.gate import FlowGate
from notifyd.channel.flow.policy import FlowPolicy
from notifyd.channel.flow.recipients import RecipientLimiter
from notifyd.channel.flow.share import ShareKeeper
from notifyd.config.settings import ChannelSettings
from notifyd.metrics import channel_metrics, flow_metrics


def build_flow(settings: ChannelSettings, *, log: Any,
               loop: asyncio.AbstractEventLoop) -> tuple[FlowGate | None, ShareKeeper | None]:
    """The gate (None without ``rate_limit``, ``circuit_breaker`` and ``recipient_limit``) and its share keeper."""
    if settings.rate_limit is None and settings.circuit_breaker is None and settings.recipient_limit is None:
        return None, None
    policy = FlowPolicy(settings.rate_limit, settings.circuit_breaker, now=time.monotonic())
    cap = settings.recipient_limit
    limiter = RecipientLimiter(max_count=cap.max, per=cap.per, clock=time.monotonic) if cap else None
    gate = FlowGate(policy, channel=settings.name, metrics=flow_metrics(), log=log, limiter=limiter,
                    limited=channel_metrics().skipped.labels(settings.name, "recipient_limit"),
                    defer_capped=cap is not None and cap.action == "defer")
    if settings.rate_limit is None:
        return gate, None
    return gate, ShareKeeper(topics=settings.topics, members=settings.processes, apply=gate.set_share, loop=loop)
