"""Configs, traffic and the final tally shared by the reliability scenarios."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifyd.records import dlqheaders
from tests.kit.handlers import read_records
from tests.kit.kafka import KafkaKit


def channel(topic: str, out: Path, *, group_id: str, handler: str = "tests.kit.handlers:Recorder",
            options: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """One channel whose handler records to ``out``; short backoff so retries finish quickly."""
    return {"topics": [topic], "group_id": group_id, "handler": handler,
            "options": {"path": str(out), **(options or {})}, "backoff": {"initial": 0.05, "max": 0.2}, **extra}


def notification(notification_id: str) -> str:
    return json.dumps({"id": notification_id, "to": "a@example.com", "body": "hi"})


def produce(kafka: KafkaKit, topic: str, ids: Iterable[str], *, keys: int = 64) -> None:
    """Publish valid notifications, keyed over ``keys`` users so per-key order matters."""
    for seq, notification_id in enumerate(ids):
        kafka.produce(topic, notification(notification_id), key=f"user{seq % keys}")
    kafka.flush()


def delivered(path: Path) -> Counter[str]:
    """How many times each id reached the handler successfully."""
    return Counter(r["id"] for r in read_records(path))


class Deliveries:
    """Reads a handler's record file incrementally: polling 20k lines must not cost 20k parses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: Counter[str] = Counter()
        self.ids: list[str] = []       # the id of each delivery, in file order
        self.pids: list[int] = []      # and the pid that delivered it
        self.times: list[float] = []   # and when it happened (handler clock)
        self._offset = 0

    def refresh(self) -> Deliveries:
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                chunk = file.read()
        except FileNotFoundError:
            return self
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a half-written last line waits for the next call
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a SIGKILL tore a line and the next process appended to it
                try:
                    record = json.loads(line[line.rfind(b'{"id"'):])
                except json.JSONDecodeError:
                    continue
            self.counts[record["id"]] += 1
            self.ids.append(record["id"])
            self.pids.append(record["pid"])
            self.times.append(record["at"])
        return self

    def distinct(self) -> int:
        return len(self.refresh().counts)


def dlq_reasons(kafka: KafkaKit, topic: str, count: int, *, timeout: float = 30.0) -> dict[int, dict[str, str]]:
    """The notifyd headers of the first ``count`` DLQ records, by original offset."""
    found = {}
    for message in kafka.read(topic, count, timeout=timeout):
        headers = dlqheaders.header_text(message.headers())
        found[int(headers[dlqheaders.HEADER_ORIGINAL_OFFSET])] = headers
    return found


@dataclass(frozen=True)
class Tally:
    """Every produced id against what was delivered (and dead-lettered)."""

    produced: int
    lost: frozenset[str]
    duplicates: int

    @classmethod
    def of(cls, produced: Iterable[str], deliveries: Counter[str], dead_lettered: Iterable[str] = ()) -> Tally:
        ids = set(produced)
        reached = set(deliveries) | set(dead_lettered)
        return cls(len(ids), frozenset(ids - reached), sum(n - 1 for n in deliveries.values() if n > 1))
