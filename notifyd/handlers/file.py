"""The ``file`` handler: appends each notification to a file as one JSON line."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import IO, Any, ClassVar

from notifyd.api import Handler, Notification, OptionProblem, RetryableError


class FileHandler(Handler):
    """Delivers by appending JSON lines to ``path``; handy for local runs and tests."""

    blocking: ClassVar[bool] = False  # a local write: called on the event loop

    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "File the lines are appended to; created if missing, its directory must exist.",
            },
            "fsync": {
                "type": "boolean",
                "default": False,
                "description": "Flush each line to disk before the delivery counts as done. Default: false.",
            },
        },
    }

    def __init__(self, *, path: str, fsync: bool = False) -> None:
        super().__init__(path=path, fsync=fsync)
        self._path = path
        self._fsync = fsync
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, channel: Mapping[str, Any]) -> Iterable[OptionProblem]:
        parent = os.path.dirname(os.path.abspath(options["path"]))
        if not os.path.isdir(parent):
            yield ("path",), f"directory {parent!r} does not exist"
        elif os.path.isdir(options["path"]):
            yield ("path",), f"{options['path']!r} is a directory"

    def send(self, notification: Notification) -> None:
        line = json.dumps(notification_record(notification), ensure_ascii=False, default=str) + "\n"
        # Threads of the channel's pool deliver at once; whole lines must not interleave.
        with self._lock:
            try:
                file = self._open()
                file.write(line)
                file.flush()
                if self._fsync:
                    os.fsync(file.fileno())
            except OSError as exc:
                self._close_file()
                raise RetryableError(f"cannot append to {self._path!r}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._close_file()

    def _open(self) -> IO[str]:
        if self._file is None:
            self._file = open(self._path, "a", encoding="utf-8")  # kept open: one open per process, not per line
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


def notification_record(notification: Notification) -> dict[str, Any]:
    """The JSON object written for ``notification`` (headers left out: they are bytes)."""
    return {
        "id": notification.id,
        "channel": notification.channel,
        "to": notification.to,
        "user_id": notification.user_id,
        "subject": notification.subject,
        "body": notification.body,
        "html": notification.html,
        "template": notification.template,
        "data": dict(notification.data),
        "metadata": dict(notification.metadata),
        "attempt": notification.attempt,
    }
