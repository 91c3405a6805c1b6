"""Turning a parsed notification into a deliverable one: recipient and template.

The channel process calls the preparer before each delivery attempt's ``send``, from a
worker thread (it may do blocking I/O such as a directory lookup).
"""

from __future__ import annotations

from collections.abc import Callable

from notifyd.config import Config
from notifyd.handler import Notification, PermanentError

Preparer = Callable[[Notification], Notification]


class SkipNotification(Exception):
    """Deliberately not delivered (e.g. the user opted out): finished, not dead-lettered."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def make_preparer(config: Config, channel: str) -> Preparer:
    """The preparer of ``channel``: raises ``PermanentError`` or ``SkipNotification``."""

    def prepare(notification: Notification) -> Notification:
        if notification.user_id is not None and notification.to is None:
            raise PermanentError("user_id given but no user directory is configured")
        if notification.template is not None and notification.body is None:
            raise PermanentError(f"template {notification.template!r} given but the channel has no templates")
        return notification

    return prepare
