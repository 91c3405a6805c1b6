"""The flow-control keys of a channel: rate_limit and circuit_breaker, from YAML to settings."""

from __future__ import annotations

from notifyd.config.loading import check_text
from notifyd.config.settings import BreakerPolicy, RateLimit

BASE = """\
kafka: {bootstrap_servers: "localhost:9092"}
channels:
  email:
    topics: [notify.email]
    handler: log
"""


def check(extra: str):
    return check_text(BASE + extra, "f.yaml", {})


def test_without_the_keys_there_is_no_flow_control() -> None:
    config, findings = check("")
    assert findings == []
    channel = config.channels["email"]
    assert channel.rate_limit is None and channel.circuit_breaker is None


def test_rate_limit_and_an_empty_breaker_load_with_defaults() -> None:
    config, findings = check("    rate_limit: {per_second: 14, burst: 20}\n    circuit_breaker: {}\n")
    assert findings == []
    channel = config.channels["email"]
    assert channel.rate_limit == RateLimit(per_second=14, burst=20)
    assert channel.circuit_breaker == BreakerPolicy()


def test_breaker_settings_are_read() -> None:
    config, _ = check("    circuit_breaker: {consecutive_failures: 5, failure_ratio: 0.8, window: 10, "
                      "min_attempts: 3, probe_interval: 2}\n")
    assert config.channels["email"].circuit_breaker == BreakerPolicy(5, 0.8, 10, 3, 2)


def test_bad_values_are_refused_with_their_position() -> None:
    config, findings = check("    rate_limit: {per_second: 0}\n    circuit_breaker: {failure_ratio: 2, probes: 1}\n")
    assert config is None
    text = [f"{f.line}:{f.column} {f}" for f in findings]
    assert any(t.startswith("6:") and "per_second" in t for t in text), text
    assert any(t.startswith("7:") and "failure_ratio" in t for t in text), text
    assert any(t.startswith("7:") and "unknown key 'probes'" in t for t in text), text


def test_rate_limit_needs_per_second() -> None:
    config, findings = check("    rate_limit: {burst: 5}\n")
    assert config is None and any("per_second" in f.message for f in findings)
