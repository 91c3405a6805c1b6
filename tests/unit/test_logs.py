"""Every line the daemon writes is JSON, librdkafka's own included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest
import structlog
from confluent_kafka import Producer

from notifyd.logs import configure_logging, kafka_logger
from notifyd.tools.devbroker import free_port
from tests.kit.wait import wait_until


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """configure_logging binds this test's captured stderr; later tests must not inherit it."""
    yield
    structlog.reset_defaults()


def logged(producer: Producer, capfd: pytest.CaptureFixture[str]) -> list[str]:
    producer.poll(0.2)  # librdkafka hands its log lines to the logger from poll()
    return [line for line in capfd.readouterr().err.splitlines() if line]


def test_librdkafka_lines_come_out_as_structured_json(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", channel="email")
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "logger": kafka_logger()})
    lines = wait_until(partial(logged, producer, capfd), timeout=10,
                       what="librdkafka to log about the refused connection")
    del producer
    records = [json.loads(line) for line in lines]  # raises on a raw %3|...| line
    assert any("Connect to" in r["event"] and r["level"] == "error" for r in records)
    assert all(r["channel"] == "email" and r["source"] == "librdkafka" for r in records)
