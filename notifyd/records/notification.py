"""From Kafka record bytes to a ``Notification``, or a clear ``InvalidNotification``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import orjson

from notifyd.api import Notification
from notifyd.records.schedule import BadMoment, moment_fields
from notifyd.records.wire import accepted_fields
from notifyd.schemas import load_schema, validator

# Errors go into logs and DLQ headers; a 10 MB value must not be copied into them.
MAX_REASON_CHARS = 500
# What jsonschema-rs refuses and Python's ``jsonschema`` accepts: a pattern's ``$`` lets one
# line break at the end through in Python's ``re``, not in the schema's regex dialect.
UNEXPLAINED = "rejected by the notification schema (a value ending in a line break?)"


class InvalidNotification(ValueError):
    """Not a valid notification: a consumed record, or one a tool or the client was given.

    ``problems`` says why, one line each; ``notification_id`` is set when one could be read,
    ``index`` is the notification's place in a batch the client was given.
    """

    def __init__(self, problems: str | list[str], *, notification_id: str | None = None, index: int = 0) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(shorten("; ".join(self.problems)))
        self.notification_id = notification_id
        self.index = index


def shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def parse_notification(value: bytes | None, *, channel: str,
                       headers: Iterable[tuple[str, bytes | None]] | None = None) -> Notification:
    """The notification a record's value holds; raises ``InvalidNotification``."""
    document = accepted_fields(value) if value is not None else None
    if document is None:
        document = _checked(value)
    # The schema admits only Notification's own fields (additionalProperties: false;
    # tests/unit/test_message.py checks each property is one), so the document is the values.
    if document.get("send_at") is not None or document.get("expires_at") is not None:
        document.update(_moments(document))
    document["channel"], document["attempt"] = channel, 1
    document["headers"] = _header_map(headers) if headers else {}
    return Notification._from_valid(document)


def _checked(value: bytes | None) -> dict[str, Any]:
    """The document of a record ``accepted_fields`` did not accept: the schema decides, and words a refusal."""
    document = _decode(value)
    if not _fast_check()(document):
        raise _rejected(document)
    return document


def _moments(document: dict[str, Any]) -> dict[str, float]:
    # The schema admitted the shape; the calendar (a 30 February) is checked here.
    try:
        return moment_fields(document)
    except BadMoment as exc:
        raise InvalidNotification(f"not a valid notification: {shorten(str(exc), 200)}",
                                  notification_id=document["id"]) from None


def _rejected(document: Any) -> InvalidNotification:
    notification_id = document.get("id") if isinstance(document, dict) else None
    error = next(validator("notification").iter_errors(document), None)
    reason = _describe(error) if error is not None else UNEXPLAINED
    return InvalidNotification(f"not a valid notification: {reason}",
                               notification_id=notification_id if isinstance(notification_id, str) else None)


@cache
def _fast_check() -> Callable[[Any], bool]:
    """Whether a document is a valid notification, decided by jsonschema-rs (Rust).

    The channel asks it only about records ``accepted_fields`` did not accept; the client
    asks it too. 0.3 us a document where fastjsonschema's generated Python took 2-3 us and
    jsonschema ~30 us. Only accepting is decided here; an invalid value is explained by
    the ``jsonschema`` validator, whose messages ``validate-config`` and the client share
    (tests/unit/test_message.py checks both agree).
    """
    import jsonschema_rs  # ~9 MiB resident: a channel whose records all pass ``accepted_fields`` never loads it

    return jsonschema_rs.validator_for(load_schema("notification")).is_valid


def _decode(value: bytes | None) -> Any:
    if value is None:
        raise InvalidNotification("the record has no value (a tombstone)")
    try:
        # orjson reads the bytes as UTF-8 only (never UTF-16/32) with no str copy in between,
        # and stops at 1024 levels of nesting instead of recursing.
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidNotification(_not_json(value, exc)) from None


def _not_json(value: bytes, error: orjson.JSONDecodeError) -> str:
    # Decoding again costs only on rejected values, and words bad UTF-8 as the codec does.
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the value is not UTF-8 text: {exc}"
    return f"the value is not JSON: {error}"


def _describe(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    # The validator's message can repr the whole offending value: keep it short.
    return f"{shorten(error.message, 200)} (at /{where})" if where else shorten(error.message, 200)


def _header_map(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, bytes]:
    return {name: value or b"" for name, value in headers or ()}


def notification_problems(notification: Any) -> list[str]:
    """Every way ``notification`` breaks the notification schema, as readable lines."""
    if not isinstance(notification, dict):
        return [f"a notification is a JSON object, not {type(notification).__name__}"]
    problems = []
    for error in sorted(validator("notification").iter_errors(notification), key=lambda e: list(map(str, e.path))):
        where = ".".join(map(str, error.absolute_path))
        if error.validator in ("oneOf", "anyOf") and error.schema.get("description"):
            message = f"needs {error.schema['description']}"
        else:
            message = error.message
        problems.append(f"{where}: {message}" if where else message)
    if not problems:
        problems.extend(_moment_problems(notification))
    if not problems and not _fast_check()(notification):  # what a channel would refuse, the client refuses
        problems.append(UNEXPLAINED)
    return problems


def _moment_problems(notification: dict[str, Any]) -> list[str]:
    try:
        moment_fields(notification)
    except BadMoment as exc:
        return [str(exc)]
    return []
