"""Failover's decisions without Kafka: what the gate diverts, and what goes to the fallback or the DLQ."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import structlog
from prometheus_client import CollectorRegistry, Counter

from notifyd.api import PermanentError, RetryableError
from notifyd.channel.fallback import Failover, came_through_fallback, fallback_reason, origin_headers
from notifyd.channel.flow.gate import CircuitOpen
from notifyd.config.settings import BreakerPolicy
from notifyd.records.notification import InvalidNotification
from tests.unit.test_flow_gate import Job, Provider, make_gate


def test_without_a_fallback_an_open_circuit_holds_the_jobs() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=2, probe_interval=0.05))
    provider = Provider(4, RetryableError("503"))

    async def main():
        return await asyncio.gather(*(gate.run(Job(), provider.attempt, waiting=set(), is_current=lambda j: True)
                                      for _ in range(6)))

    outcomes = asyncio.run(main())
    assert not any(isinstance(o, CircuitOpen) for o in outcomes)  # held, never diverted
    assert outcomes[1:] == [None] * 5  # the first failure, before the circuit opened, is the deliverer's to retry


def test_with_a_fallback_an_open_circuit_diverts_what_may_go() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=2, probe_interval=60))
    gate.divertible = lambda job: not getattr(job, "handed_on", False)
    provider = Provider(100, RetryableError("503"))
    jobs = [Job() for _ in range(5)]

    async def main():
        return await asyncio.gather(*(gate.run(job, provider.attempt, waiting=set(), is_current=lambda j: True)
                                      for job in jobs))

    outcomes = asyncio.run(main())
    assert all(isinstance(o, CircuitOpen) for o in outcomes[1:]), outcomes
    assert len(provider.calls) <= 2, "the open circuit kept the others from the provider"
    assert all(job.attempts == 0 for job in jobs[2:]), "a diverted job burns no attempt"


def test_a_job_handed_on_once_waits_for_the_circuit_instead() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=1, probe_interval=0.05))
    gate.divertible = lambda job: False
    provider = Provider(1, RetryableError("503"))
    outcome = asyncio.run(gate.run(Job(), provider.attempt, waiting=set(), is_current=lambda j: True))
    assert outcome is None and len(provider.calls) == 2  # waited for the probe, which succeeded


def test_reasons() -> None:
    assert fallback_reason(CircuitOpen("open")) == "circuit_open"
    assert fallback_reason(RetryableError("503")) == "retries_exhausted"
    assert fallback_reason(RuntimeError("a bug")) == "retries_exhausted"
    assert fallback_reason(PermanentError("no such address")) is None
    assert fallback_reason(InvalidNotification("not json")) is None


class Message:
    def __init__(self, headers) -> None:
        self._headers = headers

    def headers(self):
        return self._headers

    def offset(self) -> int:
        return 7


def _job(headers=None) -> SimpleNamespace:
    return SimpleNamespace(message=Message(headers), partition=("t", 0), notification=None, notification_id="n",
                           attempts=3)


def test_failover_hands_on_once_and_never_back() -> None:
    handed, dead = [], []
    route = SimpleNamespace(target="relay", hand_off=lambda job, reason, added: handed.append((job, reason, added)))
    counter = Counter("f", "f", ["channel", "fallback", "reason"], registry=CollectorRegistry())
    failover = Failover(route, channel="ses", dead_letter=lambda job, error: dead.append(job), counter=counter,
                        log=structlog.get_logger("test"))
    fresh, returned, bad = _job([("traceparent", b"x")]), _job(origin_headers("relay", "circuit_open")), _job()
    failover(fresh, RetryableError("503"))
    failover(returned, RetryableError("503"))
    failover(bad, PermanentError("bounced"))
    assert handed == [(fresh, "retries_exhausted", [("notifyd.fallback.from", b"ses"),
                                                    ("notifyd.fallback.reason", b"retries_exhausted")])]
    assert dead == [returned, bad]
    assert came_through_fallback(returned) and not came_through_fallback(fresh)
    assert counter.labels("ses", "relay", "retries_exhausted")._value.get() == 1
