"""``validate-config`` on a 200-channel file: as a command and as the in-process check."""

from __future__ import annotations

import subprocess
import sys
import time

import yaml

from bench.context import Bench, Row
from bench.daemon import ROOT
from notifyd.config.loading import check_config

CHANNELS = 200
HANDLERS = ("log", "smtp", "webhook")


def config_data(channels: int = CHANNELS) -> dict:
    """A valid config with ``channels`` channels of assorted built-in handlers."""
    def channel(i: int) -> dict:
        handler = HANDLERS[i % len(HANDLERS)]
        options = {"smtp": {"host": "smtp.example.com", "port": 587, "sender": "n@example.com"},
                   "webhook": {"url": f"https://hooks.example.com/{i}"}}.get(handler, {})
        return {"topics": [f"notify.c{i}"], "handler": handler, "options": options, "dlq": f"notify.c{i}.dlq",
                "retries": 5, "concurrency": 8}
    return {"kafka": {"bootstrap_servers": "127.0.0.1:9092"},
            "channels": {f"c{i}": channel(i) for i in range(channels)}}


def case_validate(bench: Bench) -> list[Row]:
    path = bench.workdir / "validate-200.yaml"
    path.write_text(yaml.safe_dump(config_data(), sort_keys=False))
    command, check = [], []
    for _ in range(max(3, bench.sizes.runs)):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "notifyd", "validate-config", str(path)], cwd=ROOT,
                                capture_output=True, text=True, check=False)
        command.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"validate-config rejected the benchmark file:\n{result.stdout}{result.stderr}")
        started = time.perf_counter()
        check_config(str(path))
        check.append(time.perf_counter() - started)
    return [
        Row("validate.command", f"notifyd validate-config, {CHANNELS} channels (process start included)",
            command, "s"),
        Row("validate.check", f"check_config alone, {CHANNELS} channels", check, "s"),
    ]
