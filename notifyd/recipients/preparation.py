"""Turning a parsed notification into a deliverable one: recipient and template.

The channel process calls the preparer before each delivery attempt's ``send``, from a
worker thread (it may do blocking I/O such as a directory lookup), and only for
notifications that ``needs_preparation``: the others are delivered as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from notifyd.api import Notification, PermanentError, RetryableError, SkipNotification
from notifyd.config.settings import ChannelSettings, Config
from notifyd.recipients.hold import HeldBack, hold_reason
from notifyd.recipients.templates import Templates, load_sources
from notifyd.recipients.users import DirectoryUnavailable, User

if TYPE_CHECKING:
    from notifyd.recipients.directory import Directory

Preparer = Callable[[Notification], Notification]

# The user field a user_id resolves to when the channel does not say (``recipient:``).
DEFAULT_RECIPIENTS = {
    "smtp": "email",
    "twilio": "phone",
    "apns": "apns_token",
    "fcm": "fcm_token",
    "webhook": "webhook_url",
}


def needs_preparation(notification: Notification) -> bool:
    """Whether the preparer would change ``notification``: a user to look up or a template to render."""
    return notification.user_id is not None or notification.template is not None


def opted_out(user: User, channel: str, category: str | None) -> bool:
    """Whether ``user``'s opt-outs cover a notification of ``category`` on ``channel``.

    An opt-out entry (the file's ``opt_out`` list, the ``opt_outs.channel`` column) is a
    channel name (all of it), ``*`` (every channel), ``<channel>/<category>`` or
    ``*/<category>`` (that category on one channel, or on all): docs/preferences.md.
    """
    entries = user.opt_out
    if not entries:
        return False
    if channel in entries or "*" in entries:
        return True
    return category is not None and (f"{channel}/{category}" in entries or f"*/{category}" in entries)


def make_preparer(config: Config, channel: str) -> Preparer:
    """The preparer of ``channel``.

    It raises ``PermanentError`` (unknown user, no address, missing template or variable),
    ``RetryableError`` (the directory cannot be reached), ``SkipNotification("opted_out")`` or
    ``HeldBack`` (the user's quiet hours, on a channel that respects them).
    Raises ``OSError`` itself if the channel's ``templates_dir`` cannot be read.
    """
    settings = config.channels[channel]
    directory = None
    if config.directory is not None:
        # Here, not at the top: sqlite3, YAML and the cache only in a process that has a directory.
        from notifyd.recipients.directory import open_directory

        directory = open_directory(config.directory)
    templates = Templates(load_sources(inline=settings.templates, directory=settings.templates_dir))
    recipient = settings.recipient or DEFAULT_RECIPIENTS.get(settings.handler)

    def prepare(notification: Notification) -> Notification:
        user = None
        if notification.user_id is not None:
            user = _resolve_user(notification.user_id, directory, settings, config.redact)
            if notification.category not in config.required_categories:
                _refuse_opted_out(user, settings.name, notification.category)
            if settings.respect_quiet_hours:
                _hold_for_quiet_hours(notification, user, settings)
            if notification.to is None:
                notification = replace(notification, to=_address(user, recipient, settings))
        if notification.template is not None:
            notification = _render(notification, templates, user)
        return notification

    return prepare


def _resolve_user(
    user_id: str, directory: Directory | None, settings: ChannelSettings, redact: Callable[[str], str]
) -> User:
    if directory is None:
        raise PermanentError(f"user_id {user_id!r} given but no user directory is configured")
    try:
        user = directory.lookup(user_id)
    except DirectoryUnavailable as exc:
        raise RetryableError(redact(str(exc))) from None
    if user is None:
        raise PermanentError(f"unknown user {user_id!r}")
    return user


def _refuse_opted_out(user: User, channel: str, category: str | None) -> None:
    if opted_out(user, channel, category):
        what = f"channel {channel!r}" + (f", category {category!r}" if category else "")
        raise SkipNotification("opted_out", f"user {user.id!r} opted out of {what}")


def _hold_for_quiet_hours(notification: Notification, user: User, settings: ChannelSettings) -> None:
    """Raise ``HeldBack`` while ``user`` is inside their quiet hours (not for a ``high`` priority)."""
    hold = hold_reason(notification, user, settings, time.time())
    if hold is not None:
        raise HeldBack(*hold)


def _address(user: User, recipient: str | None, settings: ChannelSettings) -> str:
    if recipient is None:
        raise PermanentError(
            f"channel {settings.name!r} (handler {settings.handler!r}) cannot address a user_id: set its 'recipient'"
        )
    address = user.address(recipient)
    if not address:
        raise PermanentError(f"user {user.id!r} has no {recipient}")
    return address


def _render(notification: Notification, templates: Templates, user: User | None) -> Notification:
    context: dict[str, Any] = dict(notification.data)
    if user is not None:
        context["user"] = user.context()
    rendered = templates.render(notification.template or "", context)
    return replace(
        notification,
        subject=rendered.subject if rendered.subject is not None else notification.subject,
        body=rendered.body,
        html=rendered.html if rendered.html is not None else notification.html,
    )
