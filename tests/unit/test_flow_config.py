"""The flow-control keys of a channel: rate_limit and circuit_breaker, from YAML to settings."""

from __future__ import annotations

from notifyd.config.loading import check_text
from notifyd.config.settings import BreakerPolicy, RateLimit, RecipientLimit

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


def test_recipient_limit_reads_durations() -> None:
    for per, expected in (("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), ("1d", 86400.0), (30, 30.0)):
        config, findings = check(f"    recipient_limit: {{max: 3, per: {per}}}\n")
        assert findings == [], findings
        assert config.channels["email"].recipient_limit == RecipientLimit(max=3, per=expected)


def test_recipient_limit_may_defer() -> None:
    config, findings = check("    recipient_limit: {max: 3, per: 1h, action: defer}\n")
    assert findings == [] and config.channels["email"].recipient_limit == RecipientLimit(3, 3600.0, "defer")
    config, findings = check("    recipient_limit: {max: 3, per: 1h, action: queue}\n")
    assert config is None and findings


def test_recipient_limit_refuses_a_bad_duration() -> None:
    config, findings = check("    recipient_limit: {max: 3, per: 1w}\n")
    assert config is None and any("is not a duration over 0" in str(f) for f in findings), findings


def test_circuit_states_are_read_from_a_metrics_page() -> None:
    from notifyd.tools.circuits import parse_states

    page = ('# HELP notifyd_circuit_state x\n# TYPE notifyd_circuit_state gauge\n'
            'notifyd_circuit_state{channel="email"} 2.0\nnotifyd_circuit_state{channel="sms"} 0.0\n'
            'notifyd_inflight_deliveries{channel="email"} 3.0\n')
    assert parse_states(page) == {"email": "open", "sms": "closed"}


def test_the_cli_does_not_import_prometheus_client() -> None:
    """``notifyd run`` sets PROMETHEUS_MULTIPROC_DIR after the CLI loaded every command module."""
    import subprocess
    import sys

    code = "import sys, notifyd.cli; assert 'prometheus_client' not in sys.modules, 'imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
