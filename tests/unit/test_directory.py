"""The user directory: SQLite, a YAML/JSON file and PostgreSQL; cache; validate-config checks."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from notifyd.config.loading import check_text
from notifyd.config.settings import DirectorySettings
from notifyd.recipients.directory import SCHEMA_SQL, DirectoryUnavailable, User, create_sqlite_schema, open_directory
from notifyd.tools.devbroker import free_port
from tests.kit.wait import wait_until

USERS_YAML = """\
users:
  u-1:
    email: ana@example.org
    phone: "+15550100001"
    apns_tokens: [apns-new, apns-old]
    opt_out: [sms]
    name: Ana
  u-2: {email: bo@example.org}
"""


def add_user(connection: Any, p: str, user_id: str, *, email: str | None = None, **more: Any) -> None:
    connection.execute(
        f"INSERT INTO users (id, email, phone, attributes) VALUES ({p}, {p}, {p}, {p})",
        (user_id, email, more.get("phone"), json.dumps(more.get("attributes", {}))),
    )
    for platform in ("apns", "fcm"):
        for token in more.get(f"{platform}_tokens", []):
            connection.execute(
                f"INSERT INTO user_devices (user_id, platform, token) VALUES ({p}, {p}, {p})", (user_id, platform, token)
            )
    for channel in more.get("opt_out", []):
        connection.execute(f"INSERT INTO opt_outs (user_id, channel) VALUES ({p}, {p})", (user_id, channel))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "users.db"
    create_sqlite_schema(str(path))
    with sqlite3.connect(path) as connection:
        add_user(connection, "?", "u-1", email="ana@example.org", phone="+15550100001", fcm_tokens=["fcm-1"],
                 opt_out=["sms"], attributes={"name": "Ana"})
    return path


def test_sqlite_users_resolved(sqlite_db: Path) -> None:
    directory = open_directory(DirectorySettings(type="sqlite", path=str(sqlite_db)))
    user = directory.lookup("u-1")
    assert user == User(id="u-1", email="ana@example.org", phone="+15550100001", fcm_tokens=("fcm-1",),
                        opt_out=frozenset({"sms"}), attributes={"name": "Ana"})
    assert user.address("fcm_token") == "fcm-1" and user.address("apns_token") is None
    assert user.context()["name"] == "Ana"
    assert directory.lookup("nobody") is None
    with ThreadPoolExecutor(max_workers=4) as pool:  # each worker thread gets its own connection
        assert set(pool.map(lambda _: directory.lookup("u-1"), range(20))) == {user}
    directory.close()


def test_yaml_and_json_file_users(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(USERS_YAML)
    directory = open_directory(DirectorySettings(type="file", path=str(path), cache_ttl=0))
    ana = directory.lookup("u-1")
    assert ana.address("apns_token") == "apns-new" and ana.opt_out == {"sms"} and ana.attributes == {"name": "Ana"}
    assert directory.lookup("u-2").email == "bo@example.org" and directory.lookup("u-3") is None
    path.write_text(json.dumps({"users": {"u-3": {"phone": "+15550100003"}}}))
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even within the clock's resolution
    assert directory.lookup("u-3").phone == "+15550100003"


def test_cache_holds_results_until_ttl(sqlite_db: Path) -> None:
    directory = open_directory(DirectorySettings(type="sqlite", path=str(sqlite_db), cache_ttl=0.5))
    assert directory.lookup("u-1").email == "ana@example.org" and directory.lookup("u-9") is None
    with sqlite3.connect(sqlite_db) as connection:
        connection.execute("UPDATE users SET email = 'new@example.org' WHERE id = 'u-1'")
        add_user(connection, "?", "u-9", email="nine@example.org")
    assert directory.lookup("u-1").email == "ana@example.org" and directory.lookup("u-9") is None
    wait_until(lambda: directory.lookup("u-1").email == "new@example.org", timeout=5,
               what="the cached user to expire")
    assert directory.lookup("u-9").email == "nine@example.org"


def test_unreadable_sources_are_unavailable_not_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(DirectoryUnavailable):
        open_directory(DirectorySettings(type="sqlite", path=str(missing))).lookup("u-1")
    assert not missing.exists()  # a lookup never creates an empty database
    broken = tmp_path / "users.yaml"
    broken.write_text("users: [not, a, mapping]")
    with pytest.raises(DirectoryUnavailable, match="'users' mapping"):
        open_directory(DirectorySettings(type="file", path=str(broken))).lookup("u-1")


def config_with(directory: str) -> str:
    return f"kafka: {{bootstrap_servers: k:9092}}\ndirectory: {directory}\nchannels:\n  a: {{topics: [t], handler: log}}\n"


def test_validate_config_checks_the_directory(tmp_path: Path, sqlite_db: Path) -> None:
    (tmp_path / "users.yaml").write_text(USERS_YAML)
    (tmp_path / "empty.db").write_bytes(b"")
    (tmp_path / "latin1.yaml").write_bytes("users: {u: {email: caf\xe9@example.org}}\n".encode("latin-1"))
    (tmp_path / "folder").mkdir()
    config_path = str(tmp_path / "notifyd.yaml")
    config, findings = check_text(config_with("{type: file, path: users.yaml, cache_ttl: 5}"), config_path, {})
    assert findings == [] and config.directory == DirectorySettings("file", str(tmp_path / "users.yaml"), None, 5.0)
    config, findings = check_text(config_with("{path: users.db}"), config_path, {})
    assert findings == [] and config.directory.type == "sqlite"
    cases = {
        "{type: sqlite, path: none.db}": "2:33: directory.path: file '{tmp}/none.db' does not exist",
        "{type: sqlite, path: empty.db}": "2:33: directory.path: '{tmp}/empty.db' lacks the table(s) users, user_devices,"
        " opt_outs (see notifyd.recipients.directory.create_sqlite_schema)",
        "{type: postgres}": "2:12: directory: 'dsn' is a required property",
        "{type: file}": "2:12: directory: 'path' is a required property",
        # It named the config file ("cannot read notifyd.yaml") and said nothing of where.
        "{type: file, path: latin1.yaml}": "2:31: directory.path: cannot read users from '{tmp}/latin1.yaml': "
        "'utf-8' codec can't decode byte 0xe9 in position 22: invalid continuation byte",
        "{type: file, path: folder}": "2:31: directory.path: '{tmp}/folder' is a directory, not a file",
    }
    for directory, expected in cases.items():
        _, findings = check_text(config_with(directory), config_path, {})
        assert [str(f) for f in findings] == [f"{config_path}:" + expected.format(tmp=tmp_path)]


def test_postgres_users_resolved(postgres_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for statement in SCHEMA_SQL:
            connection.execute(statement)
        add_user(connection, "%s", "u-1", email="ana@example.org", apns_tokens=["apns-1"], opt_out=["email"])
    directory = open_directory(DirectorySettings(type="postgres", dsn=postgres_dsn))
    user = directory.lookup("u-1")
    assert (user.email, user.apns_tokens, user.opt_out) == ("ana@example.org", ("apns-1",), {"email"})
    assert directory.lookup("u-2") is None
    directory.close()
    down = open_directory(DirectorySettings(type="postgres", dsn=f"host=127.0.0.1 port={free_port()} connect_timeout=2"))
    with pytest.raises(DirectoryUnavailable):
        down.lookup("u-1")
