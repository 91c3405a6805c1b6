"""``notifyd send`` and ``worker`` refuse bad input before they ask the broker anything."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifyd.cli import main
from notifyd.exitcodes import ExitCode


@pytest.mark.parametrize("flags", [["--body", "hi"], ["--to", "a@b", "--body", "hi", "--id", ""],
                                   ["--to", "a@b", "--body", "hi", "--category", "bad/cat"]])
def test_a_bad_notification_from_flags_is_refused_without_a_broker(tmp_path: Path, flags, capsys) -> None:
    # It used to wait --timeout for the broker (nothing listens on port 1) and exit 3.
    config = tmp_path / "notifyd.yaml"
    config.write_text("kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
                      "channels: {email: {topics: [t], handler: log, ledger: off}}\n")
    started = time.monotonic()
    assert main(["send", "--config", str(config), "--channel", "email", "--timeout", "30", *flags]) == ExitCode.BAD_INPUT
    assert "invalid notification" in capsys.readouterr().err and time.monotonic() - started < 10


def test_an_expiry_that_has_passed_is_a_usage_error(tmp_path: Path, capsys) -> None:
    # It was sent (exit 0), then dead-lettered as expired at once.
    config = tmp_path / "notifyd.yaml"
    config.write_text("kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
                      "channels: {email: {topics: [t], handler: log, ledger: off}}\n")
    assert main(["send", "--config", str(config), "--channel", "email", "--to", "a@b", "--body", "hi",
                 "--expires", "1970-01-01T00:00:00Z"]) == ExitCode.USAGE
    assert "--expires has passed" in capsys.readouterr().err


def test_a_line_that_would_never_be_sent_is_a_usage_error(tmp_path: Path, capsys) -> None:
    # Its own expires_at had passed, or came before its send_at: sent, then dead-lettered as expired.
    config, lines = tmp_path / "notifyd.yaml", tmp_path / "batch.jsonl"
    config.write_text("kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
                      "channels: {email: {topics: [t], handler: log, ledger: off}}\n")
    lines.write_text('{"id": "ok", "to": "a@b", "body": "hi", "expires_at": 4102444800}\n'
                     '{"id": "gone", "to": "a@b", "body": "hi", "expires_at": "2001-01-01T00:00:00Z"}\n'
                     '{"id": "late", "to": "a@b", "body": "hi", "send_at": 4102444800, "expires_at": 4102444700}\n')
    assert main(["send", "--config", str(config), "--channel", "email", "--file", str(lines)]) == ExitCode.USAGE
    assert "2 notification(s) would never be sent" in capsys.readouterr().err
    lines.write_text(f'{{"id": "soon", "to": "a@b", "body": "hi", "expires_at": {time.time() + 3600}}}\n')
    assert main(["send", "--config", str(config), "--channel", "email", "--file", str(lines), "--at", "+2h"]) \
        == ExitCode.USAGE  # --at gives it a send_at after its own expires_at
    assert "1 notification(s) would never be sent: expires_at has passed or is not after send_at (soon)" \
        in capsys.readouterr().err


def test_an_empty_file_is_nothing_to_send(tmp_path: Path, capsys) -> None:
    # It exited 0 with nothing printed, which reads as a success.
    config, empty = tmp_path / "notifyd.yaml", tmp_path / "empty.jsonl"
    config.write_text("kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
                      "channels: {email: {topics: [t], handler: log, ledger: off}}\n")
    empty.write_text("\n\n")
    assert main(["send", "--config", str(config), "--channel", "email", "--file", str(empty)]) == ExitCode.BAD_INPUT
    assert "no notification in it" in capsys.readouterr().err


@pytest.mark.parametrize("member", ["-1", "2"])
def test_a_worker_member_outside_the_channels_processes_is_refused(tmp_path: Path, member: str, capsys) -> None:
    config = tmp_path / "notifyd.yaml"
    config.write_text("kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
                      "channels: {email: {topics: [t], handler: log, ledger: off, processes: 2}}\n")
    assert main(["worker", "--config", str(config), "--channel", "email", "--member", member]) == ExitCode.USAGE
    assert "0 to 1" in capsys.readouterr().err
