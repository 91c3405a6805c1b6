"""systemd's notify protocol: one datagram per state change to ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

SEND_TIMEOUT = 0.2  # seconds; a notification that cannot be queued by then is dropped


class SystemdNotifier:
    """Sends ``READY=1``, ``STATUS=…`` and the rest; does nothing outside systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
            address = "\0" + address[1:]
        self._address = address or None
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval = int(watchdog_usec) / 1_000_000 if watchdog_usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *lines: str) -> None:
        if self._address is None:
            return
        payload = "\n".join(lines).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # A datagram to a full receive queue blocks the sender: a busy or hung systemd
            # must never freeze the supervisor's loop (restarts, reloads, SIGTERM).
            sock.settimeout(SEND_TIMEOUT)
            try:
                sock.connect(self._address)
                sock.sendall(payload)
            except OSError:
                pass  # systemd gone or socket replaced: the daemon keeps running

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=draining channels")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")
