"""The user directory: addresses and opt-outs of users that notifications name by ``user_id``.

A ``User`` and the users file's format are in ``notifyd.recipients.users``.
Users live in a YAML/JSON file, a SQLite database (the embedded default) or PostgreSQL.
A file holds ``users: {<id>: {email, phone, webhook_url, apns_tokens, fcm_tokens, opt_out,
...}}``; any other field of a user is kept as an attribute templates can read (``user.name``).
The databases hold the tables of ``SCHEMA_SQL``: ``users`` (one row per user, extra
attributes as a JSON object in ``attributes``), ``user_devices`` (push tokens, newest first)
and ``opt_outs`` (what the user receives nothing from: see ``preparation.opted_out``).

Lookups run in the channel's worker threads: each thread has its own database connection,
and results (unknown users too) are cached for ``cache_ttl`` seconds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cachetools
import yaml

from notifyd.recipients.users import DirectoryUnavailable, User, schedule_fields, without_schedule
from notifyd.recipients.usersfile import load_users_file

if TYPE_CHECKING:
    from notifyd.config.settings import DirectorySettings

SCHEMA_SQL = (
    (
        "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT, phone TEXT, webhook_url TEXT,"
        " attributes TEXT NOT NULL DEFAULT '{}')"
    ),
    (
        "CREATE TABLE IF NOT EXISTS user_devices (user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
        " platform TEXT NOT NULL CHECK (platform IN ('apns', 'fcm')), token TEXT NOT NULL,"
        " added_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (platform, token))"
    ),
    "CREATE INDEX IF NOT EXISTS user_devices_by_user ON user_devices (user_id)",
    (
        "CREATE TABLE IF NOT EXISTS opt_outs (user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
        " channel TEXT NOT NULL, PRIMARY KEY (user_id, channel))"
    ),
)
TABLES = ("users", "user_devices", "opt_outs")




class FileUsers:
    """Users from a file, read again whenever the file changes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._loaded: tuple[float, dict[str, User]] | None = None

    def fetch(self, user_id: str) -> User | None:
        """The user, or None; raises ``DirectoryUnavailable`` if the file cannot be read."""
        try:
            modified = os.stat(self._path).st_mtime
            with self._lock:
                if self._loaded is None or self._loaded[0] != modified:
                    self._loaded = (modified, load_users_file(self._path))
                return self._loaded[1].get(user_id)
        except (OSError, TypeError, yaml.YAMLError) as exc:
            raise DirectoryUnavailable(f"users file {self._path!r}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release."""


class SqlUsers:
    """Users from SQLite or PostgreSQL, one connection per thread."""

    def __init__(self, connect: Callable[[], Any], *, placeholder: str, errors: tuple[type[Exception], ...]) -> None:
        self._connect = connect
        self._p = placeholder
        self._errors = errors
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def fetch(self, user_id: str) -> User | None:
        """The user, or None; raises ``DirectoryUnavailable`` if the database fails."""
        try:
            return self._query(self._connection(), user_id)
        except self._errors as exc:
            self._drop_connection()  # a broken connection is replaced on the next lookup
            raise DirectoryUnavailable(f"user directory: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

    def _query(self, connection: Any, user_id: str) -> User | None:
        p = self._p
        row = connection.execute(f"SELECT email, phone, webhook_url, attributes FROM users WHERE id = {p}", (user_id,))
        found = row.fetchone()
        if found is None:
            return None
        devices = connection.execute(
            f"SELECT platform, token FROM user_devices WHERE user_id = {p} ORDER BY added_at DESC, token", (user_id,)
        ).fetchall()
        opt_out = connection.execute(f"SELECT channel FROM opt_outs WHERE user_id = {p}", (user_id,)).fetchall()
        email, phone, webhook_url, attributes = found
        extra = json.loads(attributes or "{}")
        extra = extra if isinstance(extra, dict) else {}
        return User(
            id=user_id,
            email=email,
            phone=phone,
            webhook_url=webhook_url,
            apns_tokens=tuple(token for platform, token in devices if platform == "apns"),
            fcm_tokens=tuple(token for platform, token in devices if platform == "fcm"),
            opt_out=frozenset(channel for (channel,) in opt_out),
            attributes=without_schedule(extra),
            **schedule_fields(user_id, extra),
        )

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._all = [c for c in self._all if c is not connection]
            # Closing a connection that already failed may fail again; it is gone either way.
            with contextlib.suppress(Exception):
                connection.close()


class Directory:
    """Cached user lookups over one source (``FileUsers`` or ``SqlUsers``)."""

    def __init__(self, source: FileUsers | SqlUsers, *, ttl: float = 30.0, size: int = 10_000) -> None:
        self._source = source
        self._cache: cachetools.TTLCache[str, User | None] | None = cachetools.TTLCache(size, ttl) if ttl > 0 else None
        self._lock = threading.Lock()

    def lookup(self, user_id: str) -> User | None:
        """The user, or None if unknown; raises ``DirectoryUnavailable``."""
        if self._cache is None:
            return self._source.fetch(user_id)
        with self._lock:
            if user_id in self._cache:
                return self._cache[user_id]
        user = self._source.fetch(user_id)
        with self._lock:
            self._cache[user_id] = user
        return user

    def close(self) -> None:
        """Close the source's connections."""
        self._source.close()


def open_directory(settings: DirectorySettings) -> Directory:
    """The directory ``settings`` describe; connects lazily, on the first lookup."""
    if settings.type == "file":
        source: FileUsers | SqlUsers = FileUsers(settings.path or "")
    elif settings.type == "postgres":
        import psycopg  # only a postgres directory needs it

        dsn = settings.dsn or ""
        source = SqlUsers(lambda: psycopg.connect(dsn, autocommit=True), placeholder="%s", errors=(psycopg.Error,))
    else:
        source = SqlUsers(_sqlite_connector(settings.path or ""), placeholder="?", errors=(sqlite3.Error,))
    return Directory(source, ttl=settings.cache_ttl, size=settings.cache_size)


def _sqlite_connector(path: str) -> Callable[[], sqlite3.Connection]:
    uri = Path(path).resolve().as_uri() + "?mode=ro"  # read-only: a lookup never creates an empty database

    def connect() -> sqlite3.Connection:
        # Used by one thread at a time; closed at shutdown from another thread.
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def create_sqlite_schema(path: str) -> None:
    """Create the directory's tables in the SQLite database ``path`` (created if missing)."""
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA_SQL:
            connection.execute(statement)
    connection.close()


def settings_problems(raw: Mapping[str, Any], base_dir: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """Problems of a schema-valid ``directory`` section, as ``(key path, message)``."""
    kind = raw.get("type", "sqlite")
    if kind == "postgres":
        if importlib.util.find_spec("psycopg") is None:
            yield ("type",), "a postgres directory needs psycopg: pip install 'notifyd[postgres]'"
        return
    path = os.path.join(base_dir, raw["path"])
    if not os.path.isfile(path):
        yield ("path",), f"{path!r} is a directory, not a file" if os.path.isdir(path) else f"file {path!r} does not exist"
    elif kind == "file":
        try:
            users = load_users_file(path)
        except (OSError, TypeError, UnicodeDecodeError, yaml.YAMLError) as exc:  # not UTF-8: the users file's fault
            yield ("path",), f"cannot read users from {path!r}: {exc}"
            return
        yield from _schedule_problems(path, users.values())
    else:
        yield from _sqlite_problems(path)


def _sqlite_problems(path: str) -> Iterator[tuple[tuple[str, ...], str]]:
    try:
        connection = _sqlite_connector(path)()
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        yield ("path",), f"{path!r} is not a SQLite database: {exc}"
        return
    missing = [table for table in TABLES if table not in {name for (name,) in rows}]
    if missing:
        yield ("path",), f"{path!r} lacks the table(s) {', '.join(missing)} (see notifyd.recipients.directory.create_sqlite_schema)"
        return
    try:
        users = list(_sqlite_scheduled_users(path))
    except sqlite3.Error as exc:
        yield ("path",), f"cannot read users from {path!r}: {exc}"
        return
    yield from _schedule_problems(path, users)


_SCHEDULED_ROWS = "SELECT id, attributes FROM users WHERE attributes LIKE '%timezone%' OR attributes LIKE '%quiet_hours%'"


def _sqlite_scheduled_users(path: str) -> Iterator[User]:
    connection = _sqlite_connector(path)()
    try:
        for user_id, attributes in connection.execute(_SCHEDULED_ROWS):
            try:
                extra = json.loads(attributes or "{}")
            except ValueError:
                continue  # not ours to judge here: templates read attributes as they are
            if isinstance(extra, dict):
                yield User(id=user_id, **schedule_fields(user_id, extra))
    finally:
        connection.close()


def _schedule_problems(path: str, users: Iterable[User]) -> Iterator[tuple[tuple[str, ...], str]]:
    """The users whose quiet hours cannot be used, the first few by name (a user keeps neither field)."""
    problems = [user.schedule_problem for user in users if user.schedule_problem]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        yield ("path",), f"{path!r}: {shown}"
