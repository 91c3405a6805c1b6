"""The supervisor: one process per channel member, restarts, reloads and shutdown.

Signal handlers only record the signal (``signals``); the main loop wakes on the signal
pipe, a child's status pipe or a child's exit, and acts: the children are handled by
``children``, a reload by ``reload``. The supervisor never touches Kafka.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import wait

import structlog

from notifyd import __version__
from notifyd.config.settings import Config
from notifyd.daemon import reload
from notifyd.daemon.children import STALL_TIMEOUT, Children, Exit
from notifyd.daemon.httpserver import StatusServer
from notifyd.daemon.metricsdir import MetricsDirectory
from notifyd.daemon.reloadplan import plan_reload
from notifyd.daemon.restarts import RestartPolicy
from notifyd.daemon.sdnotify import SystemdNotifier
from notifyd.daemon.signals import SignalInbox
from notifyd.exitcodes import ExitCode
from notifyd.metrics import channel_metrics, daemon_metrics, touch_channel, touch_daemon

log = structlog.get_logger("notifyd.daemon.supervisor")

STOP_GRACE = 5.0            # beyond shutdown_timeout, before SIGKILL
LOOP_TICK = 0.5


class Supervisor:
    """Runs every channel of ``config`` until SIGTERM/SIGINT; ``run`` returns the exit code."""

    def __init__(self, config: Config, *, metrics: MetricsDirectory, notifier: SystemdNotifier | None = None,
                 restart_policy: RestartPolicy | None = None, stall_timeout: float = STALL_TIMEOUT) -> None:
        self.config = config
        self.metrics_directory = metrics
        self.notifier = notifier or SystemdNotifier()
        self.children = Children(restart_policy or RestartPolicy(), stall_timeout=stall_timeout,
                                 stack_dir=metrics.path)
        self.signals = SignalInbox()
        self.stopping = False
        self.announced_ready = False
        self.exit_code = ExitCode.OK
        self.not_ready: list[str] = list(config.channels)
        self.channel_states: dict[str, dict[str, object]] = {}
        self._unreachable: set[str] = set()
        self._server: StatusServer | None = None
        self._last_watchdog = 0.0
        self._metrics = daemon_metrics()

    # -- start-up and the main loop ---------------------------------------------------

    def run(self) -> int:
        self._metrics.build_info.labels(__version__).set(1)
        self._metrics.last_reload_success.set(time.time())
        self._touch_series()  # before the listener opens: the first scrape already has every series
        try:
            self._start_http_server()
        except OSError as exc:
            log.error("cannot listen for /metrics; not starting", address=self.config.metrics_listen, error=str(exc))
            return ExitCode.CONFIG
        self.signals.install()
        for settings in self.config.channels.values():
            self.children.add_channel(settings)
        log.info("supervisor started", pid=os.getpid(), channels=sorted(self.config.channels))
        try:
            while self.children.members or not self.stopping:
                self._wait_for_news()
                self._handle_signals()
                self._reap_exited()
                if not self.stopping:
                    self.children.start_due(self.config)
                for channel in self.children.enforce_deadlines():
                    self._metrics.channel_stalls.labels(channel).inc()
                self._update_health()
        finally:
            self._close()
        log.info("supervisor stopped", exit_code=self.exit_code)
        return self.exit_code

    def _start_http_server(self) -> None:
        if not self.config.metrics_enabled:
            return
        self._server = StatusServer(self.config.metrics_listen, metrics=self.metrics_directory,
                                    readiness=lambda: (self.not_ready, self.channel_states))
        self._server.start()
        log.info("metrics listening", address=self.config.metrics_listen)

    def _touch_series(self) -> None:
        """Every series of every configured channel at 0, before its processes start."""
        touch_daemon(self._metrics, self.config.channels)
        for name in self.config.channels:
            touch_channel(channel_metrics(), name)

    def _wait_for_news(self) -> None:
        wakeup = self.signals.fileno()
        for ready in wait([wakeup, *self.children.waitables()], timeout=LOOP_TICK):
            if ready == wakeup:
                self.signals.clear_wakeups()
            elif not isinstance(ready, int):
                self.children.read_status(ready)

    def _stop_deadline(self) -> float:
        return time.monotonic() + self.config.shutdown_timeout + STOP_GRACE

    # -- signals ------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        for signum in self.signals.take():
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._begin_shutdown(signal.Signals(signum).name)
            elif signum == signal.SIGHUP and not self.stopping:
                self.reload()

    def _begin_shutdown(self, reason: str) -> None:
        if self.stopping:
            log.warning("second stop request: killing channel processes now", signal=reason)
            self.children.kill_all()
            return
        self.stopping = True
        self.notifier.stopping()
        log.info("shutting down", reason=reason, timeout=self.config.shutdown_timeout)
        self.children.retire_all(deadline=self._stop_deadline())

    # -- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Apply the config file as it is now; keep the old config if the new one is invalid."""
        self.notifier.reloading()
        new_config = reload.read_new_config(self.config.path)
        if new_config is None:
            self._metrics.config_reloads.labels("failure").inc()
            self.notifier.ready("reload failed; running the previous config")
            return False
        old_config, self.config = self.config, new_config
        plan = plan_reload(old_config, new_config)
        reload.apply_plan(self.children, plan, new_config, stop_deadline=self._stop_deadline())
        if reload.listener_changed(old_config, new_config):
            self._restart_http_server()
        self._touch_series()
        self._metrics.config_reloads.labels("success").inc()
        self._metrics.last_reload_success.set(time.time())
        for name in plan.stop:
            self._metrics.channel_up.labels(name).set(0)
        self.notifier.ready(f"reloaded; {len(new_config.channels)} channels")
        return True

    def _restart_http_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        try:
            self._start_http_server()
        except OSError as exc:
            # The channels keep running; /metrics and the health checks are off until a reload fixes it.
            log.error("cannot listen for /metrics on the reloaded address", address=self.config.metrics_listen,
                      error=str(exc))

    # -- exits --------------------------------------------------------------------------

    def _reap_exited(self) -> None:
        for ended in self.children.reap():
            self.metrics_directory.process_died(ended.pid)
            self._after_exit(ended)
        self.children.prune()

    def _after_exit(self, ended: Exit) -> None:
        if ended.member.retire:
            log.info("channel process stopped", **ended.describe())
            return
        if ended.code == ExitCode.CONFIG and not self.announced_ready:
            # At start-up a channel that cannot load stops the daemon (exit 78), so
            # systemd's RestartPreventExitStatus keeps it from looping.
            ended.member.down_reason = "config or handler error"
            log.error("channel cannot start: config or handler error; stopping the daemon", **ended.describe())
            self.exit_code = ExitCode.CONFIG
            self._begin_shutdown("start-up failure")
            return
        self.children.schedule_restart(ended)
        self._metrics.channel_restarts.labels(ended.member.channel).inc()

    # -- health ------------------------------------------------------------------------

    def _update_health(self) -> None:
        failing = self.children.failing_channels()
        self.not_ready = sorted(self.config.channels) if self.stopping else sorted(failing)
        self.channel_states = self.children.channel_states()
        for name in self.config.channels:
            self._metrics.channel_up.labels(name).set(0 if name in failing else 1)
        self._count_outages(self.children.unreachable_channels())
        if not failing and not self.announced_ready and not self.stopping:
            self.announced_ready = True
            self.notifier.ready(f"{len(self.config.channels)} channels running")
            log.info("all channels ready")
        self._maybe_watchdog()

    def _count_outages(self, unreachable: set[str]) -> None:
        for name in unreachable - self._unreachable:
            self._metrics.broker_outages.labels(name).inc()
        for name in self.config.channels:
            self._metrics.broker_unreachable.labels(name).set(1 if name in unreachable else 0)
        self._unreachable = unreachable

    def _maybe_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if not interval or now - self._last_watchdog < interval / 2:
            return
        if self.children.heartbeats_fresh(max(interval, 5.0)):
            self.notifier.watchdog()
            self._last_watchdog = now

    def _close(self) -> None:
        if self._server is not None:
            self._server.stop()
        self.signals.close()
