"""``notifyd trace ID``: a notification's history from the ledger a channel process wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.cli import main
from notifyd.exitcodes import ExitCode
from notifyd.ledger.guard import DuplicateSuppressed, guard
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.sqlitestore import SqliteStore
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
        ("attempt_failed", 1), ("claimed", 2), ("sent", 2), ("duplicate_suppressed", 1)]
    assert steps[0]["detail"] == "RetryableError: 503 from the provider"
    assert steps[2]["detail"] == "provider id provider-t-1" and steps[2]["time"].endswith("Z")

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
    assert events == ["attempt_failed", "dead_lettered", "given_up"]
    assert main(["trace", "nope", "--config", str(config)]) == ExitCode.NOT_FOUND
    assert "no record of 'nope'" in capsys.readouterr().err


def test_trace_without_a_ledger_is_a_usage_error(tmp_path: Path, capsys) -> None:
    config = tmp_path / "notifyd.yaml"
    config.write_text("kafka: {bootstrap_servers: x}\nchannels: {sms: {topics: [t], handler: log, ledger: off}}\n")
    assert main(["trace", "t-1", "--config", str(config)]) == ExitCode.USAGE
    assert "no channel of this config uses a delivery ledger" in capsys.readouterr().err


def test_the_command_line_never_imports_prometheus_client_before_run_sets_its_directory() -> None:
    # prometheus_client picks its value storage when imported: a command module importing
    # it (trace opens ledgers) made the supervisor's own series vanish from /metrics.
    code = "import sys, notifyd.cli; notifyd.cli.build_parser(); print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
