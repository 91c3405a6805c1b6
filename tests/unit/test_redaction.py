"""Secrets hidden as whole tokens; ports, numbers, host names and offsets never garbled."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from notifyd.config.loading import check_text
from notifyd.logs import configure_logging
from notifyd.redaction import is_secret, redact, secret_key

CONFIG = """\
kafka:
  bootstrap_servers: "${KAFKA_BOOTSTRAP}"
  config: {sasl.username: "${SASL_USER}", sasl.password: "${SASL_PASSWORD}"}
metrics: {listen: "127.0.0.1:${METRICS_PORT}"}
channels:
  hooks:
    topics: [notify.hooks]
    handler: webhook
    concurrency: ${CONCURRENCY}
    options:
      url: "https://${HOOK_HOST}/hooks/${HOOK_TOKEN}"
"""
ENVIRON = {
    "KAFKA_BOOTSTRAP": "broker-1.internal:9092,broker-2.internal:9092",
    "SASL_USER": "notifyd",
    "SASL_PASSWORD": "pw42",
    "METRICS_PORT": "9464",
    "CONCURRENCY": "16",
    "HOOK_HOST": "hooks.example.com",
    "HOOK_TOKEN": "T0ZX9Q7kLm3vB8nR",
}


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_the_rule_for_keys_and_values() -> None:
    assert all(secret_key(k) for k in ("sasl.username", "password", "auth_token", "ssl.key.password", "dsn",
                                       "Authorization", "private_key", "client_secret", "credentials"))
    assert not any(secret_key(k) for k in ("url", "listen", "monkey", "author", "concurrency", 3))
    assert is_secret("password", "pw") and is_secret("url", "https://x.example.com/T0ZX9Q7kLm3vB8nR")
    assert not is_secret("listen", "9464") and not is_secret("port", "123456789")
    assert not is_secret("bootstrap_servers", "broker-1.internal:9092,broker-2.internal:9092")
    assert not is_secret("host", "smtp.example.com") and not is_secret("level", "debug")
    assert is_secret("level", "hunter2-token") and not is_secret("password", "")


def test_whole_tokens_only() -> None:
    assert redact("offset 194640 at 127.0.0.1:9464", {"9464"}) == "offset 194640 at 127.0.0.1:***"
    assert redact("user pw42x and pw42", {"pw42"}) == "user pw42x and ***"
    assert redact("GET https://h.example.com/hooks/T0ZX9Q7kLm3vB8nR?x=1", {"T0ZX9Q7kLm3vB8nR"}) \
        == "GET https://h.example.com/hooks/***?x=1"
    assert redact('{"e": "a \\"quoted\\" secret"}', {'a "quoted" secret'}) == '{"e": "***"}'
    assert redact("-x-", {"-x-"}) == "***" and redact("nothing", set()) == "nothing"


def test_config_records_only_secrets_and_logs_keep_everything_else(capsys: pytest.CaptureFixture[str]) -> None:
    config, findings = check_text(CONFIG, "f.yaml", ENVIRON)
    assert findings == []
    url = config.channels["hooks"].options["url"]
    assert config.secrets == {"notifyd", "pw42", "T0ZX9Q7kLm3vB8nR"}
    configure_logging("info", redact=config.redact)
    structlog.get_logger().info("listening", address=config.metrics_listen, offset=1946402, count=16,
                                host="hooks.example.com", servers=config.kafka.bootstrap_servers,
                                password="pw42", url=url)
    line = json.loads(capsys.readouterr().err)
    assert line["address"] == "127.0.0.1:9464" and line["offset"] == 1946402 and line["count"] == 16
    assert line["host"] == "hooks.example.com" and line["servers"] == ENVIRON["KAFKA_BOOTSTRAP"]
    assert line["password"] == "***" and line["url"] == "https://hooks.example.com/hooks/***"


def test_validation_messages_hide_a_short_secret_under_a_secret_key() -> None:
    text = CONFIG.replace("${CONCURRENCY}", "'${SASL_PASSWORD}'")
    config, findings = check_text(text, "f.yaml", ENVIRON)
    assert config is None and findings
    assert all("pw42" not in str(f) for f in findings) and any("***" in str(f) for f in findings)
