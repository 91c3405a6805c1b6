"""The supervisor: one process per channel member, restarts, reloads and shutdown.

Signal handlers only record the signal; the main loop wakes on the signal pipe, a
child's status pipe or a child's exit, and acts. The supervisor never touches Kafka.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from multiprocessing.connection import wait

import structlog

from notifyd import __version__
from notifyd.channel.lifecycle import (
    EVENT_BROKER_DOWN,
    EVENT_BROKER_UP,
    EVENT_READY,
    StatusEvent,
)
from notifyd.config.loading import check_config
from notifyd.config.settings import Config
from notifyd.daemon.httpserver import StatusServer
from notifyd.daemon.members import Member
from notifyd.daemon.metricsdir import MetricsDirectory
from notifyd.daemon.reloadplan import plan_reload
from notifyd.daemon.restarts import RestartPolicy, RestartState
from notifyd.daemon.sdnotify import SystemdNotifier
from notifyd.exitcodes import ExitCode
from notifyd.metrics import daemon_metrics

log = structlog.get_logger("notifyd.daemon.supervisor")

STOP_GRACE = 5.0            # beyond shutdown_timeout, before SIGKILL
STALL_TIMEOUT = 60.0        # a child silent this long is stuck: killed and restarted
LOOP_TICK = 0.5


class Supervisor:
    """Runs every channel of ``config`` until SIGTERM/SIGINT; ``run`` returns the exit code."""

    def __init__(self, config: Config, *, metrics: MetricsDirectory, notifier: SystemdNotifier | None = None,
                 restart_policy: RestartPolicy | None = None) -> None:
        self.config = config
        self.metrics_directory = metrics
        self.notifier = notifier or SystemdNotifier()
        self.restart_policy = restart_policy or RestartPolicy()
        self.members: list[Member] = []
        self.pending_signals: deque[int] = deque()
        self.stopping = False
        self.announced_ready = False
        self.exit_code = ExitCode.OK
        self.not_ready: list[str] = list(config.channels)
        self._server: StatusServer | None = None
        self._last_watchdog = 0.0
        self._metrics = daemon_metrics()

    # -- start-up and the main loop ---------------------------------------------------

    def run(self) -> int:
        wakeup_reader = self._install_signal_handlers()
        self._metrics.build_info.labels(__version__).set(1)
        self._metrics.last_reload_success.set(time.time())
        self._start_http_server()
        for name in self.config.channels:
            self._add_channel(name)
        log.info("supervisor started", pid=os.getpid(), channels=sorted(self.config.channels))
        try:
            while self.members or not self.stopping:
                self._wait_for_news(wakeup_reader)
                self._handle_signals()
                self._reap_exited()
                self._start_due_members()
                self._enforce_deadlines()
                self._update_health()
        finally:
            self._close(wakeup_reader)
        log.info("supervisor stopped", exit_code=self.exit_code)
        return self.exit_code

    def _install_signal_handlers(self) -> int:
        reader, writer = os.pipe()
        os.set_blocking(reader, False)
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, self._record_signal)
        self._wakeup_writer = writer
        return reader

    def _record_signal(self, signum: int, frame: object) -> None:
        self.pending_signals.append(signum)

    def _start_http_server(self) -> None:
        if not self.config.metrics_enabled:
            return
        self._server = StatusServer(self.config.metrics_listen, metrics=self.metrics_directory,
                                    readiness=lambda: self.not_ready)
        self._server.start()
        log.info("metrics listening", address=self.config.metrics_listen)

    def _wait_for_news(self, wakeup_reader: int) -> None:
        waitables: list[object] = [wakeup_reader]
        for member in self.members:
            if member.process is not None:
                waitables.append(member.process.sentinel)
                if member.connection is not None:
                    waitables.append(member.connection)
        for ready in wait(waitables, timeout=LOOP_TICK):
            if ready == wakeup_reader:
                _drain(wakeup_reader)
            elif not isinstance(ready, int):
                self._read_status(ready)

    def _read_status(self, connection) -> None:
        member = next((m for m in self.members if m.connection is connection), None)
        try:
            while connection.poll():
                event: StatusEvent = connection.recv()
                if member is not None:
                    self._on_event(member, event)
        except (EOFError, OSError):
            if member is not None:
                member.connection = None  # the child is gone; its sentinel reports the exit

    def _on_event(self, member: Member, event: StatusEvent) -> None:
        member.last_heartbeat = time.monotonic()
        if event.name == EVENT_READY and not member.ready:
            member.ready = True
            log.info("channel process ready", channel=member.channel, member=member.index, pid=event.pid)
        elif event.name == EVENT_BROKER_DOWN and not member.broker_down:
            member.broker_down = True
            log.warning("channel process lost every broker", channel=member.channel, pid=event.pid)
        elif event.name == EVENT_BROKER_UP and member.broker_down:
            member.broker_down = False
            log.info("channel process reconnected", channel=member.channel, pid=event.pid)

    # -- signals ------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        while self.pending_signals:
            signum = self.pending_signals.popleft()
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._begin_shutdown(signal.Signals(signum).name)
            elif signum == signal.SIGHUP and not self.stopping:
                self.reload()

    def _begin_shutdown(self, reason: str) -> None:
        if self.stopping:
            log.warning("second stop request: killing channel processes now", signal=reason)
            for member in self.members:
                member.kill()
            return
        self.stopping = True
        self.notifier.stopping()
        log.info("shutting down", reason=reason, timeout=self.config.shutdown_timeout)
        deadline = time.monotonic() + self.config.shutdown_timeout + STOP_GRACE
        for member in self.members:
            member.retire = True
            member.request_stop(deadline=deadline)
        self.members = [m for m in self.members if m.alive]

    # -- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Apply the config file as it is now; keep the old config if the new one is invalid."""
        self.notifier.reloading()
        try:
            new_config, findings = check_config(self.config.path)
        except (OSError, UnicodeDecodeError) as exc:
            new_config, findings = None, [f"{self.config.path}: cannot read: {exc}"]
        if new_config is None:
            for finding in findings:
                log.error("reload refused: config invalid", problem=str(finding))
            self._metrics.config_reloads.labels("failure").inc()
            self.notifier.ready("reload failed; running the previous config")
            return False
        plan = plan_reload(self.config, new_config)
        log.info("reloading", start=sorted(plan.start), stop=sorted(plan.stop),
                 restart=sorted(plan.restart), keep=sorted(plan.keep))
        listener_changed = (self.config.metrics_listen, self.config.metrics_enabled) != (
            new_config.metrics_listen, new_config.metrics_enabled)
        self.config = new_config
        for name in plan.stop | plan.restart:
            self._retire_channel(name)
        for name in plan.start | plan.restart:
            self._add_channel(name)
        if listener_changed:
            self._restart_http_server()
        self._metrics.config_reloads.labels("success").inc()
        self._metrics.last_reload_success.set(time.time())
        for name in plan.stop:
            self._metrics.channel_up.labels(name).set(0)
        self.notifier.ready(f"reloaded; {len(new_config.channels)} channels")
        return True

    def _retire_channel(self, name: str) -> None:
        deadline = time.monotonic() + self.config.shutdown_timeout + STOP_GRACE
        for member in self.members:
            if member.channel == name and not member.retire:
                member.retire = True
                member.request_stop(deadline=deadline)
        self.members = [m for m in self.members if m.alive or not m.retire]

    def _add_channel(self, name: str) -> None:
        settings = self.config.channels[name]
        # A restarted channel's new members wait until the old ones have drained,
        # so two configurations of one channel never consume side by side.
        for index in range(settings.processes):
            member = Member(name, index, settings, RestartState(self.restart_policy))
            member.restart_at = time.monotonic()
            self.members.append(member)

    def _restart_http_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._start_http_server()

    # -- children -----------------------------------------------------------------------

    def _start_due_members(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        draining = {m.channel for m in self.members if m.retire and m.alive}
        for member in self.members:
            if member.alive or member.retire or member.restart_at is None or member.restart_at > now:
                continue
            if member.channel in draining:
                continue
            member.spawn(self.config)
            log.info("channel process started", channel=member.channel, member=member.index, pid=member.pid)

    def _reap_exited(self) -> None:
        for member in list(self.members):
            pid = member.pid
            code = member.reap()
            if code is None:
                continue
            self.metrics_directory.process_died(pid)
            self._after_exit(member, pid, code)
        self.members = [m for m in self.members if m.alive or not m.retire]

    def _after_exit(self, member: Member, pid: int, code: int) -> None:
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
        fields = {"channel": member.channel, "member": member.index, "pid": pid, "exit": how}
        if member.retire:
            log.info("channel process stopped", **fields)
            return
        now = time.monotonic()
        if code == ExitCode.CONFIG:
            self._after_config_failure(member, fields, now)
            return
        if code == ExitCode.RECYCLE:
            log.warning("channel process recycled (memory limit)", **fields)
            member.restart_at = now
        else:
            delay, crash_loop = member.restart.after_crash(now=now, uptime=now - member.started_at)
            member.restart_at = now + delay
            if crash_loop:
                member.down_reason = "crash loop"
                log.error("channel crash-looping; cooling off", retry_in=delay, **fields)
            else:
                log.warning("channel process crashed; restarting", retry_in=round(delay, 3), **fields)
        self._metrics.channel_restarts.labels(member.channel).inc()

    def _after_config_failure(self, member: Member, fields: dict, now: float) -> None:
        member.down_reason = "config or handler error"
        if not self.announced_ready:
            log.error("channel cannot start: config or handler error; stopping the daemon", **fields)
            self.exit_code = ExitCode.CONFIG
            self._begin_shutdown("start-up failure")
            return
        self._metrics.channel_restarts.labels(member.channel).inc()
        member.restart_at = now + self.restart_policy.cool_off
        log.error("channel cannot start: config or handler error", retry_in=self.restart_policy.cool_off,
                  **fields)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for member in self.members:
            if not member.alive:
                continue
            if member.stop_deadline is not None and now > member.stop_deadline:
                log.error("channel process did not drain in time; killing", channel=member.channel,
                          pid=member.pid)
                member.kill()
            elif member.stop_deadline is None and now - member.last_heartbeat > STALL_TIMEOUT:
                log.error("channel process stalled (no heartbeat); killing", channel=member.channel,
                          pid=member.pid, silent_for=round(now - member.last_heartbeat, 1))
                member.kill()

    # -- health ------------------------------------------------------------------------

    def _update_health(self) -> None:
        failing = sorted({m.channel for m in self.members if not m.retire and (not m.ready or m.broker_down)})
        self.not_ready = sorted(self.config.channels) if self.stopping else failing
        for name in self.config.channels:
            self._metrics.channel_up.labels(name).set(0 if name in failing else 1)
        if not failing and not self.announced_ready and not self.stopping:
            self.announced_ready = True
            self.notifier.ready(f"{len(self.config.channels)} channels running")
            log.info("all channels ready")
        self._maybe_watchdog()

    def _maybe_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if not interval or now - self._last_watchdog < interval / 2:
            return
        freshness = max(interval, 5.0)
        if all(now - m.last_heartbeat < freshness for m in self.members if m.alive):
            self.notifier.watchdog()
            self._last_watchdog = now

    def _close(self, wakeup_reader: int) -> None:
        if self._server is not None:
            self._server.stop()
        signal.set_wakeup_fd(-1)
        os.close(wakeup_reader)
        os.close(self._wakeup_writer)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
