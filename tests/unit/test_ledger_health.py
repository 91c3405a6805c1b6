"""A ledger whose storage fails after start-up: the ledger notices, the heartbeat carries it, /readyz says it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

from notifyd.channel.lifecycle import EVENT_HEARTBEAT, StatusEvent
from notifyd.config.settings import ChannelSettings
from notifyd.daemon.children import _on_event
from notifyd.daemon.members import Member
from notifyd.daemon.readiness import channel_states
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.sqlitestore import SqliteStore


def broken(*_: object) -> None:
    raise sqlite3.OperationalError("disk I/O error")


def test_a_failed_write_or_idle_probe_is_the_ledgers_problem_until_it_answers_again(tmp_path: Path) -> None:
    ledger = Ledger(SqliteStore(str(tmp_path / "l.sqlite3")), channel="c", owner="p", window=60.0, lease=30.0,
                    retention=600.0, flush_interval=60.0, log=structlog.get_logger("test"))
    real_put, real_get = ledger.store.put, ledger.store.get
    ledger.claim("n", attempt=1)
    ledger.store.put = broken
    ledger.flush()
    assert ledger.problem == "ledger write failed: disk I/O error"
    ledger.store.put = real_put
    ledger.flush()
    assert ledger.problem is None
    ledger.store.get, ledger._next_probe = broken, 0.0  # idle: nothing to write, so the probe reads
    ledger._probe_when_idle()
    assert ledger.problem == "ledger unreachable: disk I/O error"
    ledger.store.get, ledger._next_probe = real_get, 0.0
    ledger._probe_when_idle()
    assert ledger.problem is None
    ledger.close()


class Alive:
    pid = 4242

    def is_alive(self) -> bool:
        return True


def test_readyz_names_a_channel_whose_ledger_failed_with_the_reason() -> None:
    member = Member(channel="sms", index=0, settings=ChannelSettings(name="sms", topics=("t",), handler="log"),
                    process=Alive(), ready=True, partitions=2)
    assert channel_states([member])["sms"]["state"] == "consuming"
    _on_event(member, StatusEvent(EVENT_HEARTBEAT, "sms", 0, 4242, fields={"ledger_error": "ledger unreachable: x"}))
    state = channel_states([member])["sms"]
    assert (state["state"], state["ledger_error"]) == ("ledger unreachable", "ledger unreachable: x")
    _on_event(member, StatusEvent(EVENT_HEARTBEAT, "sms", 0, 4242, fields={"ledger_error": None}))
    assert channel_states([member])["sms"]["state"] == "consuming"
