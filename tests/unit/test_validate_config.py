"""``notifyd validate-config`` over broken files: every problem, at the right line and column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifyd.cli import main
from notifyd.config.findings import ConfigError
from notifyd.config.loading import check_text, load_config
from notifyd.exitcodes import ExitCode

REPO = Path(__file__).resolve().parents[2]

VALID = """\
kafka:
  bootstrap_servers: "localhost:9092"
channels:
  email:
    topics: [notify.email]
    handler: log
    dlq: notify.email.dlq
"""


def findings_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    config, findings = check_text(text, "f.yaml", environ or {})
    assert config is None, "expected the file to be invalid"
    return [str(f) for f in findings]


def test_valid_file_fills_defaults() -> None:
    config, findings = check_text(VALID, "f.yaml", {})
    assert findings == []
    email = config.channels["email"]
    assert (email.retries, email.concurrency, email.processes, email.group_id) == (10, 16, 1, "notifyd.email")
    assert email.backoff.initial == 1.0 and email.backoff.max == 60.0 and email.backoff.jitter is True
    assert config.metrics_listen == "127.0.0.1:9464"


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", str(path)]) == 0, capsys.readouterr()


def test_a_valid_file_is_reported_with_its_channel_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("kafka: {bootstrap_servers: 'k:9092'}\nchannels: {email: {topics: [t], handler: log}}\n")
    assert main(["validate-config", str(one)]) == 0
    assert capsys.readouterr().out == f"{one}: valid (1 channel)\n"


def test_yaml_syntax_error_has_position() -> None:
    assert findings_of("kafka:\n  bootstrap_servers: [a\nchannels: {}\n") == [
        "f.yaml:3:9: (root): YAML syntax error: expected ',' or ']', but got ':'"
    ]


def test_empty_file() -> None:
    assert findings_of("# nothing here\n") == ["f.yaml:1:1: (root): the file is empty"]


def test_duplicate_keys_are_refused() -> None:
    text = VALID + "    handler: smtp\n"
    assert findings_of(text) == ["f.yaml:8:5: channels.email.handler: duplicate key 'handler' (first defined on line 6)"]


def test_unknown_key_with_suggestion_and_every_problem_at_once() -> None:
    text = """\
kafka:
  bootstrap_servers: "localhost:9092"
channels:
  email:
    topics: [notify.email]
    handler: log
    retires: 3
    concurrency: 0
    backoff: {initial: 5, max: 1}
  sms:
    topics: notify.sms
    handler: log
    retries: -1
"""
    assert findings_of(text) == [
        "f.yaml:7:5: channels.email.retires: unknown key 'retires'; did you mean 'retries'?",
        "f.yaml:8:18: channels.email.concurrency: 0 is less than the minimum of 1",
        "f.yaml:11:13: channels.sms.topics: 'notify.sms' is not of type 'array'",
        "f.yaml:13:14: channels.sms.retries: -1 is less than the minimum of 0",
    ]


def test_backoff_max_below_initial() -> None:
    text = VALID + "    backoff: {initial: 5, max: 1}\n"
    assert findings_of(text) == ["f.yaml:8:32: channels.email.backoff.max: max (1) is less than initial (5)"]


def test_missing_required_keys() -> None:
    text = "kafka: {}\nchannels:\n  email:\n    handler: log\n"
    assert findings_of(text) == [
        "f.yaml:1:8: kafka: 'bootstrap_servers' is a required property",
        "f.yaml:4:5: channels.email: 'topics' is a required property",
    ]


def test_handler_that_cannot_be_imported_or_is_not_a_handler() -> None:
    text = VALID.replace("handler: log", "handler: no_such_module:Thing") + """\
  other:
    topics: [notify.other]
    handler: "json:JSONDecoder"
"""
    found = findings_of(text)
    assert found[0].startswith("f.yaml:6:14: channels.email.handler: cannot import module 'no_such_module'")
    assert found[1] == "f.yaml:10:14: channels.other.handler: 'json:JSONDecoder' is not a subclass of notifyd.Handler"


def test_handler_options_checked_against_handler_schema() -> None:
    text = VALID + "    options: {level: loud, colour: red}\n"
    assert findings_of(text) == [
        "f.yaml:8:22: channels.email.options.level: 'loud' is not one of ['debug', 'info', 'warning']",
        "f.yaml:8:28: channels.email.options.colour: unknown key 'colour' (allowed: include_body, level)",
    ]


def test_topic_consumed_twice_and_dlq_consumed() -> None:
    text = VALID + """\
  audit:
    topics: [notify.email, notify.email.dlq]
    handler: log
"""
    assert findings_of(text) == [
        "f.yaml:7:10: channels.email.dlq: DLQ topic 'notify.email.dlq' is consumed by channel 'audit'; it would loop",
        "f.yaml:9:14: channels.audit.topics[0]: topic 'notify.email' is already consumed by channel 'email'",
    ]


def test_topic_names_that_differ_only_in_dot_and_underscore_are_refused() -> None:
    # Kafka refuses to create both: its metric names write "." as "_".
    text = VALID + """\
  audit:
    topics: [notify_email]
    handler: log
  push_ios:
    topics: [push.ios]
    handler: log
  push.ios:
    topics: [notify.ios]
    handler: log
"""
    findings = findings_of(text)
    assert findings[0] == ("f.yaml:9:14: channels.audit.topics[0]: topic 'notify_email' and topic 'notify.email' "
                           "differ only in '.' and '_', which Kafka refuses: it cannot create both")
    # Two channels whose names differ so get delay topics that collide: placed at the channel.
    delay = "'notifyd.push.ios.delay.1s' and topic 'notifyd.push_ios.delay.1s'"
    assert any("channels.push.ios:" in f and delay in f and "set delay_topic_prefix" in f for f in findings), findings
    assert len(findings) == 2, findings


def test_environment_variables() -> None:
    text = VALID.replace('"localhost:9092"', '"${BROKER}"') + "    timeout: ${TIMEOUT:-2.5}\n    options: {level: '${LEVEL}'}\n"
    config, findings = check_text(text, "f.yaml", {"BROKER": "kafka-1:9093", "LEVEL": "debug"})
    assert findings == []
    assert config.kafka.bootstrap_servers == "kafka-1:9093"
    assert config.channels["email"].timeout == 2.5
    assert config.channels["email"].options == {"level": "debug"}
    assert findings_of(text, {"LEVEL": "debug"}) == [
        "f.yaml:2:22: kafka.bootstrap_servers: environment variable BROKER is not set and has no default"
    ]
    assert findings_of(text, {"BROKER": "a\nb", "LEVEL": "debug"}) == [
        "f.yaml:2:22: kafka.bootstrap_servers: environment variable BROKER holds a newline, which is refused"
    ]


@pytest.mark.parametrize("value", ["${NOPE", "${}", "${1BAD}", "a-${B C}"])
def test_a_reference_that_is_no_reference_is_refused(value: str) -> None:
    # They were passed on as literal text: a broker named "${NOPE" fails far from the typo.
    text = VALID.replace('"localhost:9092"', f'"{value}"')
    assert findings_of(text) == ["f.yaml:2:22: kafka.bootstrap_servers: '${' starts no reference: write ${NAME} or "
                                 "${NAME:-default}, and $$ for a literal $"]
    escaped = VALID.replace('"localhost:9092"', '"$${NOPE}:9092"')
    assert check_text(escaped, "f.yaml", {})[0].kafka.bootstrap_servers == "${NOPE}:9092"
    template = VALID + "    templates: {receipt: {body: 'Total: ${{ total }}'}}\n"  # a dollar, then a template expression
    config, findings = check_text(template, "f.yaml", {})
    assert findings == [] and "${{ total }}" in str(config.channels["email"].templates)


def test_plain_reference_is_retyped_but_quoted_one_is_not() -> None:
    text = VALID + "    concurrency: ${C}\n    group_id: '${G}'\n"
    config, findings = check_text(text, "f.yaml", {"C": "4", "G": "123"})
    assert findings == [] and config.channels["email"].concurrency == 4
    assert config.channels["email"].group_id == "123"


def test_secrets_from_environment_are_redacted_in_messages() -> None:
    text = VALID + "    options: {level: '${SECRET_LEVEL}'}\n"
    found = findings_of(text, {"SECRET_LEVEL": "hunter2-token"})
    assert len(found) == 1 and "hunter2-token" not in found[0] and "***" in found[0]


def test_allowed_handler_modules() -> None:
    text = VALID.replace("handler: log", "handler: 'tests.kit.handlers:Recorder'") + "allowed_handler_modules: [mycompany]\n"
    assert findings_of(text) == [
        "f.yaml:6:14: channels.email.handler: handler module 'tests.kit.handlers' is not in allowed_handler_modules"
    ]


def test_load_config_raises_with_every_finding() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(str(REPO / "tests" / "configs" / "broken.yaml"))
    assert len(raised.value.findings) >= 3


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = REPO / "tests" / "configs" / "broken.yaml"
    assert main(["validate-config", str(broken)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert all(line.startswith(f"{broken}:") for line in out)
    assert main(["validate-config", "--format", "json", str(broken)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and {"file", "line", "column", "path", "message"} <= set(report["errors"][0])
    assert main(["validate-config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["validate-config"]) == 2


def test_librdkafka_refuses_a_misspelt_or_bad_client_setting_before_any_channel_starts() -> None:
    text = VALID.replace('  bootstrap_servers: "localhost:9092"\n',
                         '  bootstrap_servers: "localhost:9092"\n  config:\n    heartbeat.interval.mss: 1000\n')
    assert findings_of(text) == ['f.yaml:4:5: kafka.config.heartbeat.interval.mss: No such configuration property: '
                                 '"heartbeat.interval.mss"']
    text = VALID + "    consumer_config: {session.timeout.ms: abc}\n"
    assert findings_of(text) == ['f.yaml:8:43: channels.email.consumer_config.session.timeout.ms: Invalid value for '
                                 'configuration property "session.timeout.ms"']


def test_client_settings_naming_files_of_the_daemons_host_are_not_opened() -> None:
    # A CI job validates the file without the certificates the daemon's host has.
    text = VALID.replace('  bootstrap_servers: "localhost:9092"\n', '  bootstrap_servers: "localhost:9092"\n'
                         '  config: {security.protocol: SSL, ssl.ca.location: /nowhere/ca.pem}\n')
    config, findings = check_text(text, "f.yaml", {})
    assert findings == [] and config is not None


def test_nan_and_infinity_are_refused_wherever_a_number_goes() -> None:
    # JSON Schema's bounds compare false with NaN: a NaN retry delay once left a notification stuck.
    text = VALID + "    retry_schedule: [.nan, 5s]\n    timeout: .inf\n"
    assert findings_of(text) == ["f.yaml:8:22: channels.email.retry_schedule[0]: nan is not a finite number",
                                 "f.yaml:9:14: channels.email.timeout: inf is not a finite number"]


@pytest.mark.parametrize("port", ["65536", "99999"])
def test_a_metrics_port_beyond_65535_is_refused(port: str) -> None:
    # It used to pass, then end `notifyd run` with an OverflowError and exit 1 (systemd restarts that).
    text = VALID + f"metrics: {{listen: '127.0.0.1:{port}'}}\n"
    assert findings_of(text) == [f"f.yaml:8:19: metrics.listen: '127.0.0.1:{port}' is not a host:port address, the "
                                 "port up to 65535 (e.g. 127.0.0.1:9464)"]
    text = VALID + "metrics: {listen: '[::1]:65535'}\n"
    assert check_text(text, "f.yaml", {})[1] == []


def test_a_recursive_alias_and_an_alias_bomb_are_findings_not_crashes() -> None:
    # The first was a RecursionError traceback; the second ("billion laughs") took 5.6 GB and a minute.
    assert findings_of("a: &a [*a]\n") == ["f.yaml:1:4: (root): an alias refers to a collection that contains it"]
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 9))
    (finding,) = findings_of(bomb)
    assert finding.endswith("(root): the file expands to more than 100,000 values (aliases of aliases?)")


def test_a_duration_of_zero_is_refused_as_text_as_it_is_as_a_number() -> None:
    text = VALID + "    retry_schedule: [0s, 5s]\n    recipient_limit: {max: 2, per: 0.0m}\n"
    assert findings_of(text) == [
        "f.yaml:8:22: channels.email.retry_schedule[0]: '0s' is not a duration (seconds over 0, or text such as 5s, "
        "2m, 1h30m, 7d)",
        "f.yaml:9:36: channels.email.recipient_limit.per: '0.0m' is not a duration over 0 (seconds, or text such as "
        "90s, 10m, 1h, 1d)"]
    assert findings_of(VALID + "    recipient_limit: {max: 2, per: -5}\n") == [
        "f.yaml:8:36: channels.email.recipient_limit.per: -5 is not a duration over 0 (seconds, or text such as 90s, "
        "10m, 1h, 1d)"]


def test_output_to_a_closed_pipe_ends_quietly_with_141(tmp_path: Path) -> None:
    # `notifyd ... | head -1`: a BrokenPipeError traceback (or "Exception ignored" at exit) before.
    path = tmp_path / "notifyd.yaml"
    path.write_text(VALID)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "notifyd", "validate-config", str(path)], cwd=REPO,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (ExitCode.OUTPUT_CLOSED, "")
