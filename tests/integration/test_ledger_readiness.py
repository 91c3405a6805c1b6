"""``/readyz`` when a channel's ledger becomes unreachable after start-up: PostgreSQL stopped under a daemon."""

from __future__ import annotations

import json
import os

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.postgres import postgres_bin, running_postgres
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


def test_readyz_is_503_with_the_reason_once_the_ledgers_postgres_is_gone(kafka, unique, write_config, daemon) -> None:
    binaries = postgres_bin()
    if binaries is None:  # as the postgres_dsn fixture: a skip would hide, under CI, that this never ran
        (pytest.fail if os.environ.get("CI") else pytest.skip)("PostgreSQL binaries are not installed")
    topic = unique("ledger.ready")
    kafka.create_topics(topic)
    with running_postgres(binaries) as dsn:
        config = write_config(daemon_config(kafka.bootstrap, {
            "c": {"topics": [topic], "handler": "log", "group_id": unique("g")},
        }, ledger={"type": "postgres", "dsn": dsn}))
        notifyd = daemon(config)
        notifyd.wait_ready()
    # The server is stopped: the idle ledger's next probe fails, the heartbeat carries it.
    wait_until(lambda: notifyd.get("/readyz")[0] == 503, timeout=30, what="/readyz 503")
    body = json.loads(notifyd.get("/readyz")[1])
    assert body["failing_channels"] == ["c"]
    assert body["channels"]["c"]["state"] == "ledger unreachable"
    assert body["channels"]["c"]["ledger_error"].startswith("ledger unreachable:")
    assert notifyd.process.poll() is None  # reported, not crashed
    assert notifyd.stop() == 0
