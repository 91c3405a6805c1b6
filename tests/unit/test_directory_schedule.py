"""Each user's timezone and quiet_hours in the three directory backends, and validate-config's checks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from notifyd.config.loading import check_text
from notifyd.config.settings import DirectorySettings
from notifyd.recipients.directory import SCHEMA_SQL, create_sqlite_schema, open_directory
from tests.unit.test_directory import add_user, config_with

USERS = {
    "quiet": {"email": "q@example.org", "timezone": "Europe/Berlin", "quiet_hours": "22:00-07:00", "name": "Q"},
    "zone-only": {"email": "z@example.org", "timezone": "America/New_York"},
    "none": {"email": "n@example.org"},
    "bad-zone": {"email": "b@example.org", "timezone": "Europe/Berlinn", "quiet_hours": "22:00-07:00"},
    "bad-window": {"email": "w@example.org", "timezone": "UTC", "quiet_hours": "10pm-7am"},
    "no-zone": {"email": "x@example.org", "quiet_hours": "22:00-07:00"},
}


def check_users(directory) -> None:
    quiet = directory.lookup("quiet")
    assert (quiet.timezone, quiet.quiet_hours, quiet.schedule_problem) == ("Europe/Berlin", "22:00-07:00", None)
    assert quiet.attributes == {"name": "Q"} and quiet.context()["timezone"] == "Europe/Berlin"
    zone_only = directory.lookup("zone-only")
    assert (zone_only.timezone, zone_only.quiet_hours, zone_only.schedule_problem) == ("America/New_York", None, None)
    assert (directory.lookup("none").timezone, directory.lookup("none").quiet_hours) == (None, None)
    for user_id, words in {"bad-zone": "'Europe/Berlinn' is not an IANA", "bad-window": "'10pm-7am' is not a window",
                           "no-zone": "quiet_hours needs a timezone"}.items():
        user = directory.lookup(user_id)  # still delivered to, only without quiet hours
        assert (user.timezone, user.quiet_hours, user.email) == (None, None, USERS[user_id]["email"])
        assert user.schedule_problem.startswith(f"user {user_id!r}: ") and words in user.schedule_problem
    directory.close()


def sql_rows(connection, p: str) -> None:
    for user_id, fields in USERS.items():
        extra = {k: v for k, v in fields.items() if k != "email"}
        add_user(connection, p, user_id, email=fields["email"], attributes=extra)


def test_file_users(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": USERS}))
    check_users(open_directory(DirectorySettings(type="file", path=str(path))))


def test_sqlite_users(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    create_sqlite_schema(str(path))
    with sqlite3.connect(path) as connection:
        sql_rows(connection, "?")
    connection.close()
    check_users(open_directory(DirectorySettings(type="sqlite", path=str(path))))


def test_postgres_users(postgres_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for statement in SCHEMA_SQL:
            connection.execute(statement)
        sql_rows(connection, "%s")
    check_users(open_directory(DirectorySettings(type="postgres", dsn=postgres_dsn)))


def test_validate_config_names_the_users_whose_quiet_hours_cannot_be_used(tmp_path: Path) -> None:
    config_path = str(tmp_path / "notifyd.yaml")
    (tmp_path / "users.yaml").write_text(json.dumps({"users": USERS}))
    create_sqlite_schema(str(tmp_path / "users.db"))
    with sqlite3.connect(tmp_path / "users.db") as connection:
        sql_rows(connection, "?")
    connection.close()
    for directory, where in (("{type: file, path: users.yaml}", "users.yaml"), ("{path: users.db}", "users.db")):
        _, findings = check_text(config_with(directory), config_path, {})
        assert len(findings) == 1, findings
        text = str(findings[0])
        assert f"directory.path: '{tmp_path}/{where}': user 'bad-zone': timezone 'Europe/Berlinn'" in text
        assert "user 'bad-window'" in text and "user 'no-zone'" in text and "'quiet'" not in text


def test_validate_config_shows_the_first_five_of_many(tmp_path: Path) -> None:
    users = {f"u{i}": {"timezone": "Nowhere/City"} for i in range(8)}
    (tmp_path / "users.yaml").write_text(json.dumps({"users": users}))
    _, findings = check_text(config_with("{type: file, path: users.yaml}"), str(tmp_path / "n.yaml"), {})
    assert str(findings[0]).count("Nowhere/City") == 5 and str(findings[0]).endswith("; and 3 more")
