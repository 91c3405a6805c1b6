"""The ``log`` handler: writes each notification to the structured log."""

from __future__ import annotations

from typing import Any, ClassVar

import structlog

from notifyd.api import Handler, Notification


class LogHandler(Handler):
    """Delivers by logging; useful for trying a channel out and for local runs."""

    blocking: ClassVar[bool] = False  # a log line: called on the event loop

    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "level": {
                "enum": ["debug", "info", "warning"],
                "default": "info",
                "description": "Log level of the delivery line.",
            },
            "include_body": {
                "type": "boolean",
                "default": True,
                "description": "Whether the body is written to the log.",
            },
        },
    }

    def __init__(self, *, level: str = "info", include_body: bool = True) -> None:
        super().__init__(level=level, include_body=include_body)
        self._log = getattr(structlog.get_logger("notifyd.handlers.log"), level)
        self._include_body = include_body

    def send(self, notification: Notification) -> None:
        fields: dict[str, Any] = {
            "notification_id": notification.id,
            "channel": notification.channel,
            "to": notification.to,
            "subject": notification.subject,
            "attempt": notification.attempt,
        }
        if self._include_body:
            fields["body"] = notification.body
        self._log("notification delivered", **fields)
