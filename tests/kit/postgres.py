"""A throwaway PostgreSQL server for the tests that need one (the user directory, the delivery ledger).

``initdb`` and ``pg_ctl`` come from the Debian ``postgresql`` package, which ``make test``
installs when they are missing; without them the ``postgres_dsn`` fixture (tests/conftest.py)
skips, except under CI, where it fails. The server listens on
127.0.0.1 at a free port, trusts every local connection and runs without fsync.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway server that a test may stop and start again (its data kept in between)."""

    def __init__(self, binaries: Path, base: Path, as_user: list[str]) -> None:
        self._binaries, self._base, self._as_user = binaries, base, as_user
        self._data, self._port = base / "data", _free_port()
        self.dsn = f"host=127.0.0.1 port={self._port} user=postgres dbname=postgres connect_timeout=5"

    def init(self) -> None:
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self._port} -k {self._base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", str(self._base / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "stop")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(self._as_user + [str(self._binaries / program), *args], check=True, capture_output=True,
                       timeout=60)


@contextmanager
def postgres_server(binaries: Path) -> Iterator[PostgresServer]:
    """Start a server with ``binaries`` and yield it; stop it (if running) and remove its files at the end."""
    # initdb refuses to run as root: run the server as the postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="notifyd-pg-"))
    if as_user:
        shutil.chown(base, user="postgres")
    server = PostgresServer(binaries, base, as_user)
    try:
        server.init()
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test already
                server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_postgres(binaries: Path) -> Iterator[str]:
    """Start a server with ``binaries``, yield its DSN, then stop it and remove its files."""
    with postgres_server(binaries) as server:
        yield server.dsn
