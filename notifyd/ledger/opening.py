"""Opening a channel's ledger from its settings: a clear error when it cannot be, never a fallback."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from notifyd.config.settings import LedgerSettings
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.store import Store, StoreUnavailable


class LedgerUnavailable(Exception):
    """The ledger cannot be opened: the channel must not start (it would send without dedupe)."""


def open_store(settings: LedgerSettings) -> Store:
    """The storage ``settings`` name, opened and with its table."""
    try:
        if settings.type == "postgres":
            from notifyd.ledger.pgstore import PostgresStore
            return PostgresStore(settings.dsn or "")
        from notifyd.ledger.sqlitestore import SqliteStore
        return SqliteStore(settings.path or "")
    except StoreUnavailable as exc:
        raise LedgerUnavailable(str(exc)) from exc


def open_ledger(settings: LedgerSettings, *, channel: str, log: Any) -> Ledger:
    """The started ledger of ``channel``; raises ``LedgerUnavailable``."""
    return Ledger(open_store(settings), channel=channel, owner=owner_name(), window=settings.window,
                  lease=settings.lease, retention=settings.retention, flush_interval=settings.flush_interval,
                  log=log, owner_gone=owner_gone).start()


def owner_name() -> str:
    """This process's name in claims: host and pid, plus a nonce because pids are reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` (an ``owner_name``) was a process of this host that no longer exists.

    A restarted channel process then takes over its predecessor's claims at once instead
    of after the lease. Another host's owner, or a pid that exists (maybe reused), is
    left to the lease: waiting is the safe mistake.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False

