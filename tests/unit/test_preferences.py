"""Preferences by category: opt-outs by channel and by category in all three directories; required categories."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from notifyd.api import Notification, SkipNotification
from notifyd.config.loading import check_text
from notifyd.recipients.directory import SCHEMA_SQL, User, create_sqlite_schema
from notifyd.recipients.preparation import make_preparer, opted_out
from tests.unit.test_directory import add_user

OPT_OUT = ["sms", "email/marketing", "*/digest"]


@pytest.mark.parametrize(("entries", "channel", "category", "out"), [
    ([], "email", "marketing", False),
    (["sms"], "sms", None, True),
    (["sms"], "email", "marketing", False),
    (["*"], "email", None, True),
    (["email/marketing"], "email", "marketing", True),
    (["email/marketing"], "push", "marketing", False),
    (["email/marketing"], "email", None, False),
    (["*/digest"], "push", "digest", True),
    (["*/digest"], "push", "security", False),
])
def test_opt_out_entries(entries: list[str], channel: str, category: str | None, out: bool) -> None:
    assert opted_out(User("u", opt_out=frozenset(entries)), channel, category) is out


def config_text(directory: dict) -> str:
    return yaml.safe_dump({
        "kafka": {"bootstrap_servers": "localhost:9092"},
        "directory": directory,
        "categories": {"security": {"required": True}, "marketing": {"description": "offers"}},
        "channels": {"email": {"topics": ["notify.email"], "handler": "log", "recipient": "email"},
                     "sms": {"topics": ["notify.sms"], "handler": "log", "recipient": "phone"}},
    })


def sqlite_directory(tmp_path: Path) -> dict:
    path = tmp_path / "users.db"
    create_sqlite_schema(str(path))
    with sqlite3.connect(path) as connection:
        add_user(connection, "?", "u-1", email="ana@example.org", phone="+15550100001", opt_out=OPT_OUT)
    return {"type": "sqlite", "path": str(path)}


def file_directory(tmp_path: Path) -> dict:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {"u-1": {"email": "ana@example.org", "phone": "+15550100001",
                                                       "opt_out": OPT_OUT}}}))
    return {"type": "file", "path": str(path)}


def check_preferences(tmp_path: Path, directory: dict) -> None:
    path = tmp_path / "notifyd.yaml"
    config, findings = check_text(config_text(directory), str(path), {})
    assert findings == []
    email, sms = make_preparer(config, "email"), make_preparer(config, "sms")

    def note(category: str | None) -> Notification:
        return Notification(id="n", channel="email", user_id="u-1", body="hi", category=category)

    assert email(note(None)).to == "ana@example.org"
    assert email(note("security")).to == "ana@example.org"
    with pytest.raises(SkipNotification, match="category 'marketing'") as skipped:
        email(note("marketing"))
    assert skipped.value.reason == "opted_out"
    with pytest.raises(SkipNotification):
        email(note("digest"))  # */digest: on every channel
    with pytest.raises(SkipNotification, match="channel 'sms'"):
        sms(note(None))
    assert sms(note("security")).to == "+15550100001"  # required: opt-outs do not apply


def test_sqlite_directory_preferences(tmp_path: Path) -> None:
    check_preferences(tmp_path, sqlite_directory(tmp_path))


def test_file_directory_preferences(tmp_path: Path) -> None:
    check_preferences(tmp_path, file_directory(tmp_path))


def test_postgres_directory_preferences(tmp_path: Path, postgres_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for statement in SCHEMA_SQL:
            connection.execute(statement)
        connection.execute("DELETE FROM users WHERE id = 'u-1'")
        add_user(connection, "%s", "u-1", email="ana@example.org", phone="+15550100001", opt_out=OPT_OUT)
    check_preferences(tmp_path, {"type": "postgres", "dsn": postgres_dsn})


def test_a_category_name_is_checked_by_the_schema() -> None:
    from notifyd.records.notification import InvalidNotification, parse_notification

    good = parse_notification(b'{"id": "n", "to": "a", "body": "b", "category": "marketing"}', channel="email")
    assert good.category == "marketing"
    with pytest.raises(InvalidNotification):
        parse_notification(b'{"id": "n", "to": "a", "body": "b", "category": "has space"}', channel="email")
