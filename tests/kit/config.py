"""A minimal valid notifyd config as data, for tests to adjust and write out."""

from __future__ import annotations

from typing import Any


def base_config(bootstrap: str = "127.0.0.1:9092") -> dict[str, Any]:
    """A minimal valid config as data, one log channel."""
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "config": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        },
        "channels": {"audit": {"topics": ["notify.audit"], "handler": "log", "dlq": "notify.audit.dlq"}},
    }
