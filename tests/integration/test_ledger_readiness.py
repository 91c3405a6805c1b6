"""``/readyz`` when a channel's ledger becomes unreachable after start-up, and again once it is back.

PostgreSQL is stopped under a running daemon, then started again: the channel reports the
ledger unreachable meanwhile, and reconnects by itself afterwards (no restart).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.postgres import postgres_bin, postgres_server
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


def test_readyz_is_503_while_the_ledgers_postgres_is_gone_and_200_once_it_is_back(kafka, unique, write_config,
                                                                                   daemon) -> None:
    binaries = postgres_bin()
    if binaries is None:  # as the postgres_dsn fixture: a skip would hide, under CI, that this never ran
        (pytest.fail if os.environ.get("CI") else pytest.skip)("PostgreSQL binaries are not installed")
    topic = unique("ledger.ready")
    kafka.create_topics(topic)
    with postgres_server(binaries) as server:
        config = write_config(daemon_config(kafka.bootstrap, {
            "c": {"topics": [topic], "handler": "log", "group_id": unique("g")},
        }, ledger={"type": "postgres", "dsn": server.dsn}))
        notifyd = daemon(config)
        notifyd.wait_ready()
        server.stop()  # the idle ledger's next probe fails, the heartbeat carries it
        wait_until(lambda: notifyd.get("/readyz")[0] == 503, timeout=30, what="/readyz 503")
        body = json.loads(notifyd.get("/readyz")[1])
        assert body["failing_channels"] == ["c"]
        assert body["channels"]["c"]["state"] == "ledger unreachable"
        assert body["channels"]["c"]["ledger_error"].startswith("ledger unreachable:")
        assert notifyd.process.poll() is None  # reported, not crashed
        server.start()  # a restart or failover of the database: the ledger reconnects by itself
        wait_until(lambda: notifyd.get("/readyz")[0] == 200, timeout=30, what="/readyz 200 again")
        kafka.produce(topic, json.dumps({"id": "after-1", "to": "a", "body": "b"}))
        kafka.flush()
        wait_until(lambda: _sent(server.dsn, "after-1"), timeout=30, what="a send marked in the ledger again")
        assert notifyd.stop() == 0


def _sent(dsn: str, notification_id: str) -> bool:
    import psycopg

    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT state FROM notifyd_ledger WHERE id = %s", (notification_id,)).fetchone()
    return row is not None and row[0] == "sent"
