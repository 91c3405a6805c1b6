"""A reload on SIGHUP: the file checked as ``validate-config`` checks it, then only what changed restarts."""

from __future__ import annotations

import structlog

from notifyd.config.loading import check_config
from notifyd.config.settings import Config
from notifyd.daemon.children import Children
from notifyd.daemon.reloadplan import ReloadPlan

log = structlog.get_logger("notifyd.daemon.reload")


def read_new_config(path: str) -> Config | None:
    """The config file as it is now, or None (each problem logged) if it is invalid or unreadable."""
    try:
        new_config, findings = check_config(path)
    except (OSError, UnicodeDecodeError) as exc:
        new_config, findings = None, [f"{path}: cannot read: {exc}"]
    for finding in findings:
        log.error("reload refused: config invalid", problem=str(finding))
    return new_config


def apply_plan(children: Children, plan: ReloadPlan, new_config: Config, *, stop_deadline: float) -> None:
    """Drain the channels that stop or restart; add the ones that start or restart.

    A restarted channel's new members wait until its old ones have drained
    (``Children.start_due``).
    """
    log.info("reloading", start=sorted(plan.start), stop=sorted(plan.stop),
             restart=sorted(plan.restart), keep=sorted(plan.keep))
    for name in plan.stop | plan.restart:
        children.retire_channel(name, deadline=stop_deadline)
    for name in plan.start | plan.restart:
        children.add_channel(new_config.channels[name])


def listener_changed(old: Config, new: Config) -> bool:
    """Whether the HTTP listener must be restarted on its new address or setting."""
    return (old.metrics_listen, old.metrics_enabled) != (new.metrics_listen, new.metrics_enabled)

