"""The handler registry: built-in names and resolution of ``package.module:Class`` references."""

from __future__ import annotations

import importlib

from notifyd.api import Handler

# Built-ins are named by import path so that resolving one imports only its own
# dependencies (an SMS channel process never imports the HTTP/2 stack).
BUILTIN_HANDLERS: dict[str, str] = {
    "log": "notifyd.handlers.log:LogHandler",
    "file": "notifyd.handlers.file:FileHandler",
    "smtp": "notifyd.handlers.smtp:SmtpHandler",
    "twilio": "notifyd.handlers.twilio:TwilioHandler",
    "webhook": "notifyd.handlers.webhook:WebhookHandler",
    "slack": "notifyd.handlers.slack:SlackHandler",
    "apns": "notifyd.handlers.apns:ApnsHandler",
    "fcm": "notifyd.handlers.fcm:FcmHandler",
}


class HandlerImportError(Exception):
    """A handler reference that cannot be imported or does not name a Handler subclass."""


def resolve_handler(reference: str) -> type[Handler]:
    """Return the handler class a YAML ``handler:`` value names."""
    target = BUILTIN_HANDLERS.get(reference, reference)
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        known = ", ".join(sorted(BUILTIN_HANDLERS))
        raise HandlerImportError(
            f"unknown handler {reference!r}: use a built-in name ({known}) or 'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised
        raise HandlerImportError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    handler_class = getattr(module, attribute, None)
    if handler_class is None:
        raise HandlerImportError(f"module {module_name!r} has no attribute {attribute!r}")
    if not (isinstance(handler_class, type) and issubclass(handler_class, Handler)):
        raise HandlerImportError(f"{target!r} is not a subclass of notifyd.Handler")
    return handler_class
