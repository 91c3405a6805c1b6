"""The preparer: user_id to address through the directory, opt-out, templates."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.config.loading import check_text
from notifyd.config.settings import Config
from notifyd.recipients.directory import create_sqlite_schema
from notifyd.recipients.preparation import SkipNotification, make_preparer
from notifyd.tools.devbroker import free_port

CONFIG = """\
kafka: {bootstrap_servers: "localhost:9092"}
directory: {type: sqlite, path: users.db, cache_ttl: 0}
channels:
  email:
    topics: [notify.email]
    handler: smtp
    options: {host: 127.0.0.1, sender: no-reply@example.com}
    templates:
      welcome:
        subject: "Welcome {{ user.name }}"
        body: "Hi {{ user.name }}, code {{ code }}"
        html: "<b>{{ code }}</b>"
  sms:
    topics: [notify.sms]
    handler: log
    recipient: phone
  audit:
    topics: [notify.audit]
    handler: log
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    database = tmp_path / "users.db"
    create_sqlite_schema(str(database))
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO users (id, email, phone, attributes) VALUES"
            " ('u-1', 'ana@example.org', '+15550100001', '{\"name\": \"Ana\"}'), ('u-2', NULL, NULL, '{}')"
        )
        connection.execute("INSERT INTO opt_outs (user_id, channel) VALUES ('u-1', 'sms')")
    loaded, findings = check_text(CONFIG, str(tmp_path / "notifyd.yaml"), {})
    assert findings == []
    return loaded


def note(channel: str, **fields: object) -> Notification:
    return Notification(id="n-1", channel=channel, **fields)


def test_plain_notification_passes_unchanged(config: Config) -> None:
    notification = note("email", to="x@example.org", body="hi")
    assert make_preparer(config, "email")(notification) is notification
    assert pickle.loads(pickle.dumps(config)) == config  # still crosses a spawn


def test_user_id_resolves_by_the_handlers_recipient_and_renders_the_template(config: Config) -> None:
    prepared = make_preparer(config, "email")(note("email", user_id="u-1", template="welcome", data={"code": 7}))
    assert prepared.to == "ana@example.org"
    assert (prepared.subject, prepared.body, prepared.html) == ("Welcome Ana", "Hi Ana, code 7", "<b>7</b>")


def test_opted_out_user_is_skipped(config: Config) -> None:
    with pytest.raises(SkipNotification) as skipped:
        make_preparer(config, "sms")(note("sms", user_id="u-1", body="hi"))
    assert skipped.value.reason == "opted_out"


def test_permanent_failures(config: Config) -> None:
    cases = [
        ("email", note("email", user_id="u-404", body="hi"), "unknown user 'u-404'"),
        ("email", note("email", user_id="u-2", body="hi"), "user 'u-2' has no email"),
        ("audit", note("audit", user_id="u-1", body="hi"), "cannot address a user_id: set its 'recipient'"),
        ("email", note("email", to="a@b.c", template="nope"), "template 'nope' does not exist"),
        ("email", note("email", to="a@b.c", template="welcome"), "undefined variable"),
    ]
    for channel, notification, message in cases:
        with pytest.raises(PermanentError, match=message):
            make_preparer(config, channel)(notification)


def test_user_id_without_a_directory_is_permanent(tmp_path: Path) -> None:
    text = "\n".join(line for line in CONFIG.splitlines() if not line.startswith("directory"))
    config, _ = check_text(text, str(tmp_path / "notifyd.yaml"), {})
    with pytest.raises(PermanentError, match="no user directory is configured"):
        make_preparer(config, "sms")(note("sms", user_id="u-1", body="hi"))


def test_unreachable_directory_is_retryable_and_redacted(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    text = CONFIG.replace("{type: sqlite, path: users.db, cache_ttl: 0}", "{type: postgres, dsn: '${PG_DSN}'}")
    dsn = f"host=127.0.0.1 port={free_port()} user=notifyd password=hunter2-secret connect_timeout=2"
    config, findings = check_text(text, str(tmp_path / "notifyd.yaml"), {"PG_DSN": dsn})
    assert findings == []
    with pytest.raises(RetryableError) as raised:
        make_preparer(config, "sms")(note("sms", user_id="u-1", body="hi"))
    assert "hunter2-secret" not in str(raised.value)
