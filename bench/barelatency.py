"""Case 3's reference: the latency of the plainest consumer, without notifyd.

``python -m bench.barelatency CONFIG_JSON TOPIC COUNT OUT`` joins a group with the
settings in CONFIG_JSON, prints ``assigned`` once it owns partitions, then reads COUNT
notifications with the loop of case 1 (``json.loads`` + ``store_offsets``) and writes
one produce-to-loop latency (seconds) a line to OUT. It runs as its own process, as the
daemon does, so it does not share a GIL with the producer that feeds it.

Its fetch is notifyd's (``fetch_ready``: what is already fetched, else wait for the first
message), not ``consume(1000, timeout)``, which holds every message back for up to the
timeout at a moderate rate: the figure is then the broker's and librdkafka's share.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer

from notifyd.channel.fetching import POLL_TIMEOUT, fetch_ready


def read_latencies(config: dict[str, object], topic: str, count: int, *, timeout: float = 120.0) -> list[float]:
    """Consume ``count`` stamped notifications from ``topic``; their latencies in arrival order."""
    consumer = Consumer({**config, "enable.auto.offset.store": False})
    consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: print("assigned", flush=True))
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while len(latencies) < count and time.monotonic() < deadline:
            for message in fetch_ready(consumer, 500, POLL_TIMEOUT):
                if message.error() is None:
                    sent_at = json.loads(message.value())["data"]["sent_at"]
                    latencies.append(time.time() - sent_at)
                    consumer.store_offsets(message)
    finally:
        consumer.close()
    return latencies


def main(argv: list[str]) -> int:
    config, topic, count, out = json.loads(argv[0]), argv[1], int(argv[2]), argv[3]
    latencies = read_latencies(config, topic, count)
    with open(out, "w", encoding="utf-8") as sink:
        sink.write("".join(f"{latency:.6f}\n" for latency in latencies))
    return 0 if len(latencies) >= count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
