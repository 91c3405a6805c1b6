"""SIGKILL of a channel process every few seconds during a 20k-notification run."""

from __future__ import annotations

import itertools
import math
import os
import signal
import time

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, Tally, channel, produce
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

TOTAL = 20_000
KILL_EVERY = 3.0
# The supervisor calls 5 crashes of one member within 60 s a crash loop and cools it off
# for 5 minutes (notifyd.daemon.restarts); 2 kills per member keep the run short. Each kill waits
# until the victim has delivered, so it hits a working process and not one still joining.
MEMBERS = 2
KILLS = 2 * MEMBERS


def test_sigkill_every_few_seconds_loses_nothing(kafka, unique, tmp_path, write_config, daemon, figures):
    topic, out = unique("storm"), tmp_path / "storm.jsonl"
    kafka.create_topics(topic, partitions=4)
    config = write_config(daemon_config(kafka.bootstrap, {
        # ~1k deliveries/s in all, so the run outlasts the storm and every kill hits a working process.
        "storm": channel(topic, out, group_id=unique("g"), concurrency=16, processes=MEMBERS,
                         options={"delay": 0.03}, ledger=False),  # at-least-once as before the ledger
    }))
    ids = [f"s-{i}" for i in range(TOTAL)]
    notifyd = daemon(config)
    notifyd.wait_ready()
    started = time.monotonic()
    produce(kafka, topic, ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() > 0, what="the first delivery")

    kills: list[tuple[int, float]] = []
    while len(kills) < KILLS:
        victim = _delivering_process(notifyd, deliveries, member=len(kills) % MEMBERS, killed={v for v, _ in kills})
        if victim is None:
            break
        if kills:  # the storm's rhythm: at most one kill every KILL_EVERY seconds
            time.sleep(max(0.0, kills[-1][1] + KILL_EVERY - time.time()))
        os.kill(victim, signal.SIGKILL)
        kills.append((victim, time.time()))

    during_storm = deliveries.distinct()
    wait_until(lambda: deliveries.distinct() == TOTAL, timeout=90, what="every notification delivered")
    elapsed = time.monotonic() - started
    recoveries = _recoveries(notifyd, deliveries, kills)
    tally = Tally.of(ids, deliveries.counts)
    figures.add("kill storm: SIGKILL of a delivering channel process, at most every 3 s (2 processes, 4 partitions)",
                messages=TOTAL, kills=len(kills), victims_that_had_delivered=_delivering(deliveries, kills),
                delivered_during_storm=during_storm, lost=len(tally.lost), duplicates=tally.duplicates,
                recoveries_measured=len(recoveries), recovery_s_max=max(recoveries),
                recovery_s_mean=sum(recoveries) / len(recoveries),
                longest_delivery_gap_s=_longest_gap(deliveries.times), run_s=elapsed)
    assert not tally.lost
    assert len(kills) == KILLS, "the run finished before the storm did: produce more or kill sooner"
    assert notifyd.metric("notifyd_channel_restarts_total", channel="storm") == KILLS
    assert not notifyd.events("channel crash-looping; cooling off")
    assert notifyd.stop() == 0


def _delivering_process(notifyd, deliveries: Deliveries, *, member: int, killed: set[int]) -> int | None:
    """The member's live process once it has delivered; None when every notification is in."""

    def live_and_delivering() -> int | bool:
        if deliveries.distinct() == TOTAL:
            return True
        started = [e["pid"] for e in notifyd.events("channel process started") if e["member"] == member]
        pid = started[-1] if started else None
        return pid if pid not in killed and pid in deliveries.pids else False

    found = wait_until(live_and_delivering, timeout=60, what=f"member {member} delivering")
    return None if found is True else found


def _recoveries(notifyd, deliveries: Deliveries, kills: list[tuple[int, float]]) -> list[float]:
    """Per kill: seconds until the process that replaced the victim delivered.

    A successor killed before it delivered has no figure: with eager rebalancing every
    kill stalls the group until the dead member's session (6 s) expires.
    """
    started = notifyd.events("channel process started")
    recoveries = []
    for victim, killed_at in kills:
        member = next(e["member"] for e in started if e["pid"] == victim)
        later = [e["pid"] for e in started if e["member"] == member]
        successor = later[later.index(victim) + 1]
        first = deliveries.times[deliveries.pids.index(successor)] if successor in deliveries.pids else None
        recoveries.append(first - killed_at if first is not None else float("nan"))
    return [r for r in recoveries if not math.isnan(r)]


def _delivering(deliveries: Deliveries, kills: list[tuple[int, float]]) -> int:
    """Victims that had delivered before they were killed (the others were still joining the group)."""
    return sum(victim in deliveries.pids for victim, _ in kills)


def _longest_gap(times: list[float]) -> float:
    ordered = sorted(times)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)
