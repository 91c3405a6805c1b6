"""What ``/readyz`` says of each channel: one state word and the partitions its processes own.

A channel is as well as its worst process: ``down`` (no process running), ``broker
unreachable``, ``ledger unreachable`` (its delivery ledger's storage failed after start-up,
with the error in ``ledger_error``), ``starting`` (not polling yet), ``waiting for its partitions`` (polling,
not assigned yet), ``consuming``. A channel whose processes all consume but own no
partition is reported as idle: the group settled with none for it (more processes than
partitions, say), which is ready, not failing; so is one none of whose topics exists
(librdkafka then assigns nothing at all), with the missing topics listed. Once a process
has had its first assignment, a later rebalance does not make it "waiting" again: the
partitions move between members that are all consuming.
"""

from __future__ import annotations

from collections.abc import Iterable

from notifyd.daemon.members import Member

STATES = ("consuming", "waiting for its partitions", "starting", "ledger unreachable", "broker unreachable", "down")
IDLE = "idle: the group settled with no partition for it"


def channel_states(members: Iterable[Member]) -> dict[str, dict[str, object]]:
    """Each channel's state, partition count and processes, from its (non-retiring) members."""
    states: dict[str, dict[str, object]] = {}
    for member in members:
        state = states.setdefault(member.channel, {"state": STATES[0], "partitions": 0, "processes": []})
        state["partitions"] += member.partitions or 0
        state["processes"].append({"member": member.index, "pid": member.pid, "partitions": member.partitions})
        state["state"] = max(state["state"], member_state(member), key=STATES.index)
        if member.ledger_error and member.alive:
            state["ledger_error"] = member.ledger_error
        if member.missing_topics:
            state["missing_topics"] = sorted({*state.get("missing_topics", ()), *member.missing_topics})
    for state in states.values():
        if state["state"] == STATES[0] and not state["partitions"]:
            state["state"] = IDLE
    return states


def member_state(member: Member) -> str:
    """One process's state word."""
    if not member.alive:
        return "down"
    if member.broker_down:
        return "broker unreachable"
    if member.ledger_error:
        return "ledger unreachable"
    if not member.ready:
        return "starting"
    return "waiting for its partitions" if member.partitions is None else "consuming"
