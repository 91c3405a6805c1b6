"""The file handler: one JSON line per notification, whole lines under concurrent threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from notifyd.api import Notification
from notifyd.config.loading import check_text
from notifyd.handlers import resolve_handler
from notifyd.handlers.file import FileHandler


def test_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"earlier": true}\n')
    handler = FileHandler(path=str(path), fsync=True)
    handler.send(Notification(id="n-1", channel="local", to="ana", subject="Hi", body="héllo", data={"k": [1]}))
    handler.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"earlier": True}
    assert lines[1]["id"] == "n-1" and lines[1]["body"] == "héllo" and lines[1]["data"] == {"k": [1]}
    assert resolve_handler("file") is FileHandler


def test_concurrent_threads_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    handler = FileHandler(path=str(path))
    body = "x" * 5000  # longer than one write buffer, so interleaving would show
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: handler.send(Notification(id=str(i), channel="c", body=body)), range(400)))
    handler.close()
    ids = sorted(int(json.loads(line)["id"]) for line in path.read_text().splitlines())
    assert ids == list(range(400))


def test_validate_config_refuses_a_missing_directory(tmp_path: Path) -> None:
    text = f"""\
kafka: {{bootstrap_servers: "localhost:9092"}}
channels:
  local:
    topics: [notify.local]
    handler: file
    options: {{path: "{tmp_path}/missing/out.jsonl"}}
"""
    config, findings = check_text(text, "f.yaml", {})
    assert config is None
    assert [str(f) for f in findings] == [
        f"f.yaml:6:21: channels.local.options.path: directory '{tmp_path}/missing' does not exist"
    ]
    config, findings = check_text(text.replace("/missing", ""), "f.yaml", {})
    assert findings == [] and config.channels["local"].options["path"] == f"{tmp_path}/out.jsonl"
