"""The supervisor's channel processes: started when due, their news read, their exits and deadlines handled."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import structlog

from notifyd.channel.lifecycle import (
    EVENT_ASSIGNED,
    EVENT_BROKER_DOWN,
    EVENT_BROKER_UP,
    EVENT_HEARTBEAT,
    EVENT_READY,
    StatusEvent,
)
from notifyd.config.settings import ChannelSettings, Config
from notifyd.daemon.members import Member
from notifyd.daemon.readiness import channel_states
from notifyd.daemon.restarts import RestartPolicy, RestartState
from notifyd.daemon.stalls import StackDump, stack_file
from notifyd.exitcodes import ExitCode

log = structlog.get_logger("notifyd.daemon.children")

STALL_TIMEOUT = 60.0        # a child silent this long is stuck: killed and restarted


@dataclass(frozen=True)
class Exit:
    """A channel process that has ended; ``code`` is negative when a signal killed it."""

    member: Member
    pid: int
    code: int

    def describe(self) -> dict[str, object]:
        """The fields of its log lines."""
        how = f"signal {signal.Signals(-self.code).name}" if self.code < 0 else f"code {self.code}"
        return {"channel": self.member.channel, "member": self.member.index, "pid": self.pid, "exit": how}


class Children:
    """Every member of every channel the supervisor runs, alive or waiting to start."""

    def __init__(self, restart_policy: RestartPolicy, *, stall_timeout: float = STALL_TIMEOUT,
                 stack_dir: Path | None = None) -> None:
        self.members: list[Member] = []
        self.restart_policy = restart_policy
        self.stall_timeout, self._stack_dir = stall_timeout, stack_dir

    # -- which members there are ---------------------------------------------------------

    def add_channel(self, settings: ChannelSettings) -> None:
        """Members for each of the channel's processes, due to start at once."""
        for index in range(settings.processes):
            member = Member(settings.name, index, settings, RestartState(self.restart_policy),
                            stack_file=stack_file(self._stack_dir, settings.name, index))
            member.restart_at = time.monotonic()
            self.members.append(member)

    def retire_channel(self, name: str, *, deadline: float) -> None:
        """Ask the channel's members to drain; none of them is restarted."""
        for member in self.members:
            if member.channel == name and not member.retire:
                member.retire = True
                member.request_stop(deadline=deadline)
        self.prune()

    def retire_all(self, *, deadline: float) -> None:
        for member in self.members:
            member.retire = True
            member.request_stop(deadline=deadline)
        self.prune()

    def kill_all(self) -> None:
        for member in self.members:
            member.kill()

    def prune(self) -> None:
        """Forget retired members whose process has ended."""
        self.members = [m for m in self.members if m.alive or not m.retire]

    # -- their news ----------------------------------------------------------------------

    def waitables(self) -> list[object]:
        """What ``multiprocessing.connection.wait`` watches: each process's sentinel and pipe."""
        found: list[object] = []
        for member in self.members:
            if member.process is not None:
                found.append(member.process.sentinel)
                if member.connection is not None:
                    found.append(member.connection)
        return found

    def read_status(self, connection: Connection) -> None:
        """Take every event waiting on a member's pipe."""
        member = next((m for m in self.members if m.connection is connection), None)
        try:
            while connection.poll():
                event: StatusEvent = connection.recv()
                if member is not None:
                    _on_event(member, event)
        except (EOFError, OSError):
            if member is not None:
                member.connection = None  # the child is gone; its sentinel reports the exit

    # -- starting, exits, deadlines ------------------------------------------------------

    def start_due(self, config: Config) -> None:
        """Spawn members whose start time has come, unless their channel is still draining."""
        now = time.monotonic()
        draining = {m.channel for m in self.members if m.retire and m.alive}
        for member in self.members:
            if member.alive or member.retire or member.restart_at is None or member.restart_at > now:
                continue
            if member.channel in draining:
                continue  # two configurations of one channel never consume side by side
            member.spawn(config)
            log.info("channel process started", channel=member.channel, member=member.index, pid=member.pid)

    def reap(self) -> list[Exit]:
        """The members whose process has ended since the last call."""
        exits = []
        for member in self.members:
            pid = member.pid
            code = member.reap()
            if code is not None:
                exits.append(Exit(member, pid, code))
        return exits

    def schedule_restart(self, ended: Exit) -> None:
        """Restart a member that ended on its own: at once if recycled, else after its backoff."""
        now = time.monotonic()
        member, fields = ended.member, ended.describe()
        if ended.code == ExitCode.CONFIG:
            member.down_reason = "config or handler error"
            member.restart_at = now + self.restart_policy.cool_off
            log.error("channel cannot start: config or handler error", retry_in=self.restart_policy.cool_off,
                      **fields)
            return
        if ended.code == ExitCode.RECYCLE:
            log.warning("channel process recycled (memory limit)", **fields)
            member.restart_at = now
            return
        delay, crash_loop = member.restart.after_crash(now=now, uptime=now - member.started_at)
        member.restart_at = now + delay
        if crash_loop:
            member.down_reason = "crash loop"
            log.error("channel crash-looping; cooling off", retry_in=delay, **fields)
        else:
            log.warning("channel process crashed; restarting", retry_in=round(delay, 3), **fields)

    def enforce_deadlines(self) -> list[str]:
        """Kill members that did not drain in time, or whose heartbeat stopped; returns the stalled ones' channels."""
        now = time.monotonic()
        stalled = []
        for member in self.members:
            if not member.alive:
                continue
            if member.stop_deadline is not None and now > member.stop_deadline:
                log.error("channel process did not drain in time; killing", channel=member.channel,
                          pid=member.pid)
                member.kill()
            elif member.stop_deadline is None and now - member.last_heartbeat > self.stall_timeout:
                if self._kill_stalled(member, now):
                    stalled.append(member.channel)
        return stalled

    def _kill_stalled(self, member: Member, now: float) -> bool:
        """Ask for its stacks first; kill once they are in (or waited for); True when killed now."""
        if member.stall is None and member.stack_file is not None:
            log.warning("channel process stalled (no heartbeat); asking for its stacks", channel=member.channel,
                        pid=member.pid, silent_for=round(now - member.last_heartbeat, 1))
            member.stall = StackDump.request(member.stack_file, member.pid)
            return False
        if member.stall is not None and (member.stall.killed or not member.stall.ready(now)):
            return False
        log.error("channel process stalled (no heartbeat); killing", channel=member.channel, pid=member.pid,
                  silent_for=round(now - member.last_heartbeat, 1),
                  stacks=member.stall.read() if member.stall is not None else None)
        if member.stall is not None:
            member.stall.killed = True
        member.kill()
        return True

    # -- health --------------------------------------------------------------------------

    def failing_channels(self) -> set[str]:
        """Channels with a member that is not ready, has no assignment yet, has lost every broker or its ledger."""
        return {m.channel for m in self.members if not m.retire and (not m.ready or m.partitions is None
                                                                     or m.broker_down or m.ledger_error)}

    def unreachable_channels(self) -> set[str]:
        """Channels with a member that has lost every broker."""
        return {m.channel for m in self.members if not m.retire and m.broker_down}

    def channel_states(self) -> dict[str, dict[str, object]]:
        """What ``/readyz`` says of each channel (``readiness.channel_states``)."""
        return channel_states([m for m in self.members if not m.retire])

    def heartbeats_fresh(self, freshness: float) -> bool:
        """Whether every live member was heard from within ``freshness`` seconds."""
        now = time.monotonic()
        return all(now - m.last_heartbeat < freshness for m in self.members if m.alive)


def _on_event(member: Member, event: StatusEvent) -> None:
    member.last_heartbeat = time.monotonic()
    member.stall = None  # heard from again: a later stall asks for a fresh dump
    if event.name == EVENT_ASSIGNED:
        first = member.partitions is None
        member.partitions = event.fields.get("partitions", 0)
        member.missing_topics = tuple(event.fields.get("missing_topics", ()))
        if first:
            log.info("channel process assigned its partitions", channel=member.channel, member=member.index,
                     pid=event.pid, partitions=member.partitions)
    elif event.name == EVENT_READY and not member.ready:
        member.ready = True
        log.info("channel process ready", channel=member.channel, member=member.index, pid=event.pid)
    elif event.name == EVENT_HEARTBEAT:
        _ledger_health(member, event.fields.get("ledger_error"))
    elif event.name == EVENT_BROKER_DOWN and not member.broker_down:
        member.broker_down = True
        log.warning("channel process lost every broker", channel=member.channel, pid=event.pid)
    elif event.name == EVENT_BROKER_UP and member.broker_down:
        member.broker_down = False
        log.info("channel process reconnected", channel=member.channel, pid=event.pid)


def _ledger_health(member: Member, error: str | None) -> None:
    if error and not member.ledger_error:
        log.warning("channel process lost its delivery ledger", channel=member.channel, pid=member.pid, error=error)
    elif member.ledger_error and not error:
        log.info("channel process reached its delivery ledger again", channel=member.channel, pid=member.pid)
    member.ledger_error = error
