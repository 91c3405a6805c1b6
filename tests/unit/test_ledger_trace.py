"""``notifyd trace ID``: a notification's history from the ledger a channel process wrote."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.cli import main
from notifyd.exitcodes import ExitCode
from notifyd.ledger.decision import Record
from notifyd.ledger.guard import DuplicateSuppressed, guard
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.sqlitestore import SqliteStore
from notifyd.ledger.store import Batch
from tests.unit.test_ledger_core import Counting


@pytest.fixture
def config_and_ledger(tmp_path: Path) -> tuple[Path, Ledger]:
    path = tmp_path / "ledger.sqlite3"
    config = tmp_path / "notifyd.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: x}}\nledger: {{path: {path}}}\n"
                      "channels: {sms: {topics: [t], handler: log, ledger: on}}\n")
    ledger = Ledger(SqliteStore(str(path)), channel="sms", owner="host:1:x", window=60.0, lease=30.0,
                    retention=600.0, flush_interval=60.0, log=structlog.get_logger("test"))
    return config, ledger


def test_trace_shows_attempts_errors_duplicates_and_the_outcome(config_and_ledger, capsys) -> None:
    config, ledger = config_and_ledger
    sender = guard(Counting(fail=[RetryableError("503 from the provider")]), ledger, retries=3,
                   on_duplicate=lambda: None)
    with pytest.raises(RetryableError):
        sender.send(Notification(id="t-1", channel="sms"))
    sender.send(Notification(id="t-1", channel="sms", attempt=2))
    with pytest.raises(DuplicateSuppressed):
        sender.send(Notification(id="t-1", channel="sms"))
    ledger.close()

    assert main(["trace", "t-1", "--config", str(config), "--format", "json"]) == ExitCode.OK
    steps = json.loads(capsys.readouterr().out)["history"]
    assert [(s["event"], s["attempt"]) for s in steps] == [
        ("received", 0), ("attempt_failed", 1), ("claimed", 2), ("sent", 2), ("duplicate_suppressed", 1)]
    assert steps[1]["detail"] == "RetryableError: 503 from the provider"
    assert steps[3]["detail"] == "provider id provider-t-1" and steps[3]["time"].endswith("Z")

    assert main(["trace", "t-1", "--config", str(config)]) == ExitCode.OK
    text = capsys.readouterr().out
    assert text.startswith("notification t-1\n") and "sent" in text and "503 from the provider" in text


def test_trace_of_a_dead_lettered_notification_and_of_an_unknown_one(config_and_ledger, capsys) -> None:
    config, ledger = config_and_ledger
    sender = guard(Counting(fail=[PermanentError("number unreachable")]), ledger, retries=3, on_duplicate=lambda: None)
    with pytest.raises(PermanentError):
        sender.send(Notification(id="t-2", channel="sms"))
    ledger.close()
    assert main(["trace", "t-2", "--config", str(config), "--format", "json"]) == ExitCode.OK
    events = [s["event"] for s in json.loads(capsys.readouterr().out)["history"]]
    assert events == ["received", "attempt_failed", "dead_lettered", "given_up"]
    assert main(["trace", "nope", "--config", str(config)]) == ExitCode.NOT_FOUND
    assert "no record of 'nope'" in capsys.readouterr().err


def test_received_is_the_first_claim_even_when_a_retry_is_sent_after_a_flush(config_and_ledger, capsys) -> None:
    config, ledger = config_and_ledger
    sender = guard(Counting(fail=[RetryableError("503")]), ledger, retries=3, on_duplicate=lambda: None)
    with pytest.raises(RetryableError):
        sender.send(Notification(id="t-3", channel="sms"))
    ledger.flush()  # the row exists when the retry's sent row is written
    sender.send(Notification(id="t-3", channel="sms", attempt=2))
    ledger.close()
    assert main(["trace", "t-3", "--config", str(config), "--format", "json"]) == ExitCode.OK
    steps = json.loads(capsys.readouterr().out)["history"]
    received, claimed = steps[0], next(s for s in steps if s["event"] == "claimed")
    assert received["event"] == "received" and received["at"] < steps[1]["at"] <= claimed["at"]


def test_a_ledger_file_from_before_received_at_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:  # the table as notifyd wrote it before received_at
        old.execute("CREATE TABLE notifyd_ledger (channel TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, "
                    "owner TEXT NOT NULL, claimed_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION, "
                    "provider_id TEXT, attempts INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL, "
                    "PRIMARY KEY (channel, id)) WITHOUT ROWID")
        old.execute("INSERT INTO notifyd_ledger VALUES ('sms', 'o-1', 'sent', 'h', 1.0, 2.0, NULL, 1, 2.0)")
    old.close()
    store = SqliteStore(str(path))
    store.put(Batch("sms", "h", 4.0, {"o-2": Record("sent", "h", 3.0, 4.0, None, 1, 3.0)}), [])
    (_, old_row), = store.trace("o-1")[0]
    (_, new_row), = store.trace("o-2")[0]
    store.close()
    assert old_row.received_at is None and new_row.received_at == 3.0


def test_trace_without_a_ledger_is_a_usage_error(tmp_path: Path, capsys) -> None:
    config = tmp_path / "notifyd.yaml"
    config.write_text("kafka: {bootstrap_servers: x}\nchannels: {sms: {topics: [t], handler: log, ledger: off}}\n")
    assert main(["trace", "t-1", "--config", str(config)]) == ExitCode.USAGE
    assert "no channel of this config uses a delivery ledger" in capsys.readouterr().err


def test_trace_reads_notifyd_config_and_narrows_to_one_channel(config_and_ledger, capsys, monkeypatch) -> None:
    config, ledger = config_and_ledger
    guard(Counting(), ledger, retries=3, on_duplicate=lambda: None).send(Notification(id="t-3", channel="sms"))
    ledger.close()
    monkeypatch.setenv("NOTIFYD_CONFIG", str(config))
    assert main(["trace", "t-3", "--channel", "sms", "--format", "json"]) == ExitCode.OK
    assert {s["channel"] for s in json.loads(capsys.readouterr().out)["history"]} == {"sms"}
    assert main(["trace", "t-3", "--channel", "email"]) == ExitCode.USAGE
    assert "no channel 'email'" in capsys.readouterr().err


def test_trace_of_a_ledger_that_is_not_there_says_so_and_creates_nothing(tmp_path: Path, capsys) -> None:
    # Run as another user (another state directory), it made an empty ledger and reported "no record".
    missing = tmp_path / "state" / "ledger.sqlite3"
    config = tmp_path / "notifyd.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: x}}\nledger: {{path: {missing}}}\n"
                      "channels: {sms: {topics: [t], handler: log, ledger: on}}\n")
    assert main(["trace", "t-1", "--config", str(config)]) == ExitCode.USAGE
    assert f"no ledger at {missing}" in capsys.readouterr().err and not missing.parent.exists()


def test_the_command_line_never_imports_prometheus_client_before_run_sets_its_directory() -> None:
    # prometheus_client picks its value storage when imported: a command module importing
    # it (trace opens ledgers) made the supervisor's own series vanish from /metrics.
    code = "import sys, notifyd.cli; notifyd.cli.build_parser(); print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_trace_of_a_config_that_is_not_utf8_is_a_usage_error(tmp_path: Path, capsys) -> None:
    # It ended in a UnicodeDecodeError traceback; the other commands say "cannot read" and exit 2.
    config = tmp_path / "notifyd.yaml"
    config.write_bytes(b"\xff\xfe kafka: {}\n")
    assert main(["trace", "t-1", "--config", str(config)]) == ExitCode.USAGE
    assert f"cannot read {config}" in capsys.readouterr().err
