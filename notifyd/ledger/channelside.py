"""A channel process's ledger: opened from its settings, and the handler delivery sends through.

Apart from ``opening`` because it registers a metric: ``notifyd trace`` opens ledgers too,
and a command must not import prometheus_client before ``notifyd run`` has set
``PROMETHEUS_MULTIPROC_DIR`` (the client picks its storage when imported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifyd.api import Handler
from notifyd.config.settings import ChannelSettings
from notifyd.ledger.guard import guard
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.opening import open_ledger
from notifyd.metrics import duplicates_suppressed


def channel_ledger(settings: ChannelSettings, *, log: Any) -> Ledger | None:
    """The ledger a channel's settings ask for (None: ``ledger: off``); raises ``LedgerUnavailable``."""
    if settings.ledger is None:
        return None
    ledger = open_ledger(settings.ledger, channel=settings.name, log=log)
    log.info("delivery ledger open", type=settings.ledger.type, path=settings.ledger.path,
             window=settings.ledger.window, lease=settings.ledger.lease)
    return ledger


def guarded(handler: Handler, ledger: Ledger | None, settings: ChannelSettings,
            redact: Callable[[str], str] = str) -> Handler:
    """What delivery sends through: ``handler`` itself, or behind the channel's ledger."""
    if ledger is None:
        return handler
    counter = duplicates_suppressed().labels(settings.name)
    return guard(handler, ledger, retries=settings.retries, on_duplicate=counter.inc, redact=redact)
