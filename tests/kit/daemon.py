"""``notifyd run`` as a real process for tests: its log, its children, its endpoints."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from notifyd.tools.devbroker import free_port
from tests.kit.kafka import FAST_GROUP
from tests.kit.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def daemon_config(bootstrap: str, channels: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A ``notifyd run`` config for tests: fast group joins, frequent commits, metrics on a free port."""
    return {
        "kafka": {"bootstrap_servers": bootstrap, "config": {**FAST_GROUP, "auto.commit.interval.ms": 200}},
        "metrics": {"listen": "127.0.0.1:${NOTIFYD_METRICS_PORT}"},
        "shutdown_timeout": 10,
        "channels": channels,
        **top,
    }


class Daemon:
    """One supervisor process with its stderr in a file and an sd_notify socket."""

    def __init__(self, config: Path, workdir: Path, *, metrics_port: int | None = None) -> None:
        self.config = config
        self.log_path = workdir / "daemon.log"
        self.metrics_port = metrics_port or free_port()
        self.notify_path = workdir / "notify.sock"
        self.notify_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_socket.bind(str(self.notify_path))
        self.notify_socket.setblocking(False)
        self.notifications: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **environ: str) -> Daemon:
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "NOTIFYD_METRICS_PORT": str(self.metrics_port),
               **environ}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "notifyd", "run", "--config", str(self.config)],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    # -- what it says ---------------------------------------------------------------

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return [e for e in lines if name is None or e.get("event") == name]

    def child_pids(self, channel: str) -> list[int]:
        """PIDs of the channel's processes started so far, oldest first."""
        return [e["pid"] for e in self.events("channel process started") if e["channel"] == channel]

    def sd_notifications(self) -> list[str]:
        while True:
            try:
                self.notifications.append(self.notify_socket.recv(4096).decode())
            except BlockingIOError:
                return self.notifications

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name: str, **labels: str) -> float:
        """A sample's value from ``/metrics`` (0 when absent)."""
        status, text = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    # -- control ------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 40.0) -> None:
        wait_until(lambda: self.get("/readyz")[0] == 200 or self._exited(), timeout=timeout, what="/readyz 200")
        assert not self._exited(), f"the daemon exited with {self.process.returncode}:\n{self.tail()}"

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.notify_socket.close()
