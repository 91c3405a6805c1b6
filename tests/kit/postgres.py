"""A throwaway PostgreSQL server for the tests that need one (the user directory, the delivery ledger).

``initdb`` and ``pg_ctl`` come from the Debian ``postgresql`` package, which ``make test``
installs when they are missing; without them the ``postgres_dsn`` fixture (tests/conftest.py)
skips, except under CI, where it fails. The server listens on
127.0.0.1 at a free port, trusts every local connection and runs without fsync.
"""

from __future__ import annotations

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


@contextmanager
def running_postgres(binaries: Path) -> Iterator[str]:
    """Start a server with ``binaries``, yield its DSN, then stop it and remove its files."""
    # initdb refuses to run as root: run the server as the postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="notifyd-pg-"))
    if as_user:
        shutil.chown(base, user="postgres")
    data, port = base / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run(as_user + list(args), check=True, capture_output=True, timeout=60)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
        try:
            yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
