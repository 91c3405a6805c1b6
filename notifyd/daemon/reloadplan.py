"""What a reload must do: which channels to start, stop or restart (pure)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from notifyd.config.settings import Config


@dataclass(frozen=True)
class ReloadPlan:
    """Channel names by what happens to them on reload."""

    start: frozenset[str]
    stop: frozenset[str]
    restart: frozenset[str]
    keep: frozenset[str]


def _process_wide(config: Config) -> Config:
    # Everything but the channels and the supervisor's own listener reaches every
    # channel process, so a change to it restarts them all.
    return dataclasses.replace(config, path="", channels={}, metrics_listen="", metrics_enabled=True)


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Compare two valid configs; a change to the ``kafka`` section restarts every channel."""
    old_names, new_names = set(old.channels), set(new.channels)
    common = old_names & new_names
    if _process_wide(old) != _process_wide(new):
        changed = common
    else:
        changed = {name for name in common if old.channels[name] != new.channels[name]}
    return ReloadPlan(
        start=frozenset(new_names - old_names),
        stop=frozenset(old_names - new_names),
        restart=frozenset(changed),
        keep=frozenset(common - changed),
    )
