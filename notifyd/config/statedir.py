"""Where and whether the delivery ledger is: on for every channel by default, its SQLite file in the state directory.

The state directory is the configured ``state_dir`` (relative to the config file), else
what an operator expects of a service on this host: systemd's ``StateDirectory=`` (it
sets ``$STATE_DIRECTORY``), else ``/var/lib/notifyd`` when this user may write there,
else the user's XDG state directory (``$XDG_STATE_HOME/notifyd``, by default
``~/.local/state/notifyd``), so ``notifyd run`` works for a developer without root.
The resolution is a function of its inputs; ``can_write`` is the one filesystem probe.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

SYSTEM_STATE_DIR = "/var/lib/notifyd"
LEDGER_FILE = "ledger.sqlite3"


def resolve_state_dir(configured: str | None, *, base_dir: str, environ: Mapping[str, str],
                      writable: Callable[[str], bool]) -> str:
    """The absolute state directory: ``configured``, else the first default ``writable`` accepts."""
    if configured:
        return os.path.normpath(os.path.join(base_dir, configured))
    # systemd joins several StateDirectory= entries with ':'; ours is the first.
    systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if os.path.isabs(systemd):
        return systemd
    if writable(SYSTEM_STATE_DIR):
        return SYSTEM_STATE_DIR
    return os.path.join(_xdg_state_home(environ), "notifyd")


def _xdg_state_home(environ: Mapping[str, str]) -> str:
    configured = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(configured):  # the XDG spec: a relative path is invalid and ignored
        return configured
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "state")


def can_write(path: str) -> bool:
    """Whether this process can write in directory ``path``, or create it (its nearest existing parent is writable)."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    # access(2) also answers EROFS: a read-only mount (systemd's ProtectSystem=) is unwritable.
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def ledger_default(data: Mapping[str, Any]) -> bool:
    """Whether a channel without a ``ledger`` key uses the ledger: yes, unless the top level says ``ledger: off``."""
    return data.get("ledger") is not False


def channel_uses_ledger(channel: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Whether ``channel`` (its raw settings) delivers through the ledger."""
    return channel.get("ledger", ledger_default(data)) is not False


def ledger_section(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The top-level ``ledger`` options; ``on``/``off`` (or none) mean the defaults."""
    raw = data.get("ledger")
    return raw if isinstance(raw, dict) else {}


def sqlite_ledger_file(data: Mapping[str, Any], *, base_dir: str, environ: Mapping[str, str],
                       writable: Callable[[str], bool] = can_write) -> str:
    """The absolute path of the SQLite ledger: ``ledger.path``, else ``ledger.sqlite3`` in the state directory."""
    section = ledger_section(data)
    if "path" in section:
        return os.path.normpath(os.path.join(base_dir, section["path"]))
    state_dir = resolve_state_dir(data.get("state_dir"), base_dir=base_dir, environ=environ, writable=writable)
    return os.path.join(state_dir, LEDGER_FILE)


def ledger_place_problems(data: Mapping[str, Any], *, base_dir: str, environ: Mapping[str, str],
                          writable: Callable[[str], bool] = can_write) -> list[tuple[tuple[str, ...], str]]:
    """Where the SQLite ledger cannot be written, as (key path, message): for ``validate-config``, not a crash later."""
    used = any(channel_uses_ledger(channel, data) for channel in data["channels"].values())
    if ledger_section(data).get("type", "sqlite") != "sqlite" or not used:
        return []
    file = sqlite_ledger_file(data, base_dir=base_dir, environ=environ, writable=writable)
    if os.path.isdir(file):  # SQLite cannot open it: `run` exited 78 on a file that passed
        key = ("ledger", "path") if "path" in ledger_section(data) else ("state_dir",)
        return [(key, f"the ledger file {file} is a directory")]
    folder = os.path.dirname(file)
    if writable(folder):
        return []
    if "path" in ledger_section(data):
        return [(("ledger", "path"), f"the ledger's directory {folder} cannot be written or created by this user")]
    where = "state_dir" if data.get("state_dir") else "the default state directory"
    message = (f"{where} {folder} cannot be written or created by this user (it holds the delivery ledger); "
               "set state_dir, or ledger: off")
    return [(("state_dir",), message)]
