"""The ledger on by default: where the state directory is, ``ledger: off``, and what validate-config says."""

from __future__ import annotations

import configparser
from pathlib import Path

from notifyd.cli import main
from notifyd.config.loading import check_text
from notifyd.config.statedir import SYSTEM_STATE_DIR, can_write, resolve_state_dir
from notifyd.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
BASE = "kafka: {bootstrap_servers: x}\n"


def resolve(configured: str | None = None, *, writable: bool = True, **environ: str) -> str:
    return resolve_state_dir(configured, base_dir="/etc/notifyd", environ=environ, writable=lambda _: writable)


def test_the_state_dir_is_the_configured_one_then_systemds_then_var_lib_then_the_xdg_state_dir() -> None:
    assert resolve("state", STATE_DIRECTORY="/var/lib/notifyd") == "/etc/notifyd/state"  # relative to the file
    assert resolve("/srv/notifyd") == "/srv/notifyd"
    assert resolve(STATE_DIRECTORY="/var/lib/notifyd:/var/lib/other") == "/var/lib/notifyd"
    assert resolve(HOME="/home/ann") == SYSTEM_STATE_DIR
    assert resolve(writable=False, HOME="/home/ann") == "/home/ann/.local/state/notifyd"
    assert resolve(writable=False, HOME="/home/ann", XDG_STATE_HOME="/x/state") == "/x/state/notifyd"
    assert resolve(writable=False, HOME="/home/ann", XDG_STATE_HOME="rel") == "/home/ann/.local/state/notifyd"
    assert resolve(writable=False, HOME="/home/ann", STATE_DIRECTORY="relative") == "/home/ann/.local/state/notifyd"


def test_a_directory_is_writable_when_it_or_its_nearest_existing_parent_is(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert can_write(str(tmp_path))
    assert can_write(str(tmp_path / "not" / "yet"))
    assert not can_write(str(tmp_path / "file" / "state"))


def test_every_channel_uses_the_sqlite_ledger_in_the_state_dir_unless_it_says_off(tmp_path: Path) -> None:
    text = BASE + "channels:\n  a: {topics: [a], handler: log}\n  b: {topics: [b], handler: log, ledger: off}\n"
    config, findings = check_text(text, str(tmp_path / "n.yaml"), {"STATE_DIRECTORY": str(tmp_path / "sd")})
    assert findings == []
    assert config.channels["a"].ledger.type == "sqlite"
    assert config.channels["a"].ledger.path == str(tmp_path / "sd" / "ledger.sqlite3")
    assert config.channels["b"].ledger is None


def test_ledger_off_at_the_top_turns_it_off_for_every_channel_that_does_not_say_on(tmp_path: Path) -> None:
    text = BASE + ("ledger: off\nchannels:\n  a: {topics: [a], handler: log}\n"
                   "  b: {topics: [b], handler: log, ledger: on}\n")
    config, findings = check_text(text, str(tmp_path / "n.yaml"), {"STATE_DIRECTORY": str(tmp_path)})
    assert findings == []
    assert config.channels["a"].ledger is None
    assert config.channels["b"].ledger.path == str(tmp_path / "ledger.sqlite3")


def test_an_unwritable_state_dir_is_a_finding_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    text = BASE + "state_dir: file/state\nchannels: {a: {topics: [a], handler: log}}\n"
    _, findings = check_text(text, str(tmp_path / "n.yaml"), {})
    assert [(f.line, f.column, f.key_path) for f in findings] == [(2, 12, "state_dir")]
    assert f"state_dir {tmp_path}/file/state cannot be written or created" in findings[0].message
    _, findings = check_text(text.replace("log}", "log, ledger: off}"), str(tmp_path / "n.yaml"), {})
    assert findings == []  # no channel needs it
    _, findings = check_text(text, str(tmp_path / "n.yaml"), {}, writes_state=False)
    assert findings == []  # notifyd send, trace, dlq: they never write it
    text = BASE + "ledger: {path: file/l.sqlite3}\nchannels: {a: {topics: [a], handler: log}}\n"
    _, findings = check_text(text, str(tmp_path / "n.yaml"), {})
    assert [(f.line, f.key_path) for f in findings] == [(2, "ledger.path")]


def test_a_ledger_path_that_is_a_directory_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "ledger").mkdir()
    text = BASE + "ledger: {path: ledger}\nchannels: {a: {topics: [a], handler: log}}\n"
    _, findings = check_text(text, str(tmp_path / "n.yaml"), {})
    assert [(f.key_path, f.message) for f in findings] == [("ledger.path", f"the ledger file {tmp_path}/ledger is a "
                                                                           "directory")]


def test_an_unwritable_default_state_dir_is_reported_by_validate_config(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "file" / "state"))
    config = tmp_path / "n.yaml"
    config.write_text(BASE + "channels: {a: {topics: [a], handler: log}}\n")
    assert main(["validate-config", str(config)]) == ExitCode.INVALID
    error = capsys.readouterr().out
    assert f"{config}:1:1: state_dir: the default state directory" in error
    assert "cannot be written or created" in error


def test_the_systemd_unit_gives_the_daemon_a_private_state_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "systemd" / "notifyd.service")
    service = unit["Service"]
    # StateDirectory= is writable under ProtectSystem=strict and sets $STATE_DIRECTORY, the default state_dir.
    assert service["StateDirectory"] == "notifyd"
    assert service["ProtectSystem"] == "strict"
    assert "ReadOnlyPaths" not in service and "InaccessiblePaths" not in service
    example = (ROOT / "config" / "notifyd.example.yaml").read_text()
    assert "\nstate_dir:" not in example  # an explicit one would override $STATE_DIRECTORY
