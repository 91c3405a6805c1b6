"""The channel process in a thread (``serve``), its config and what it delivered."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from notifyd.channel.pollloop import StopRequest
from notifyd.channel.worker import serve
from notifyd.config.loading import build_config
from notifyd.config.settings import Config
from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP


def channel_config(bootstrap: str, **channels: dict[str, Any]) -> Config:
    """A built config of ``channels`` on ``bootstrap``, each channel in a group of its own."""
    # A group of its own per test: groups outlive tests on the shared broker.
    for settings in channels.values():
        settings.setdefault("group_id", f"test.{uuid.uuid4().hex[:10]}")
    return build_config({"kafka": {"bootstrap_servers": bootstrap, "config": dict(FAST_GROUP)},
                         "shutdown_timeout": 10, "channels": channels}, "test.yaml")


def notification(notification_id: str, **fields: Any) -> str:
    """A valid notification document as JSON text."""
    return json.dumps({"id": notification_id, "to": "someone@example.com", "body": "hello", **fields})


def delivered_ids(path: Path) -> set[str]:
    """The ids a recording handler (tests.kit.handlers) wrote to ``path``."""
    return {r["id"] for r in read_records(path)}


class Worker:
    """``serve`` in a thread, stopped the way a signal would stop it."""

    def __init__(self, config: Config, channel: str, status: Any = None) -> None:
        self.stop = StopRequest()
        self.result: int | None = None
        self.thread = threading.Thread(target=self._run, args=(config, channel, status), daemon=True)
        self.thread.start()

    def _run(self, config: Config, channel: str, status: Any) -> None:
        self.result = serve(config, channel, stop=self.stop, status=status)

    def finish(self, timeout: float = 30.0) -> int | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the channel process did not stop"
        return self.result
