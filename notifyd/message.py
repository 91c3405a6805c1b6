"""From Kafka record bytes to a ``Notification``, or a clear ``InvalidNotification``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import fastjsonschema
import orjson

from notifyd.handler import Notification
from notifyd.schemas import load_schema, validator

# Errors go into logs and DLQ headers; a 10 MB value must not be copied into them.
MAX_REASON_CHARS = 500


class InvalidNotification(Exception):
    """The record is not a valid notification; ``notification_id`` when one could be read."""

    def __init__(self, reason: str, *, notification_id: str | None = None) -> None:
        super().__init__(shorten(reason))
        self.notification_id = notification_id


def shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def parse_notification(value: bytes | None, *, channel: str,
                       headers: Iterable[tuple[str, bytes | None]] | None = None) -> Notification:
    """The notification a record's value holds; raises ``InvalidNotification``."""
    document = _decode(value)
    try:
        _fast_check()(document)
    except fastjsonschema.JsonSchemaException:
        raise _rejected(document) from None
    # The schema admits only Notification's own fields (additionalProperties: false;
    # tests/test_message.py checks each property is one), so the document is the values.
    document["channel"] = channel
    if headers:
        document["headers"] = _header_map(headers)
    return Notification._from_valid(document)


def _rejected(document: Any) -> InvalidNotification:
    notification_id = document.get("id") if isinstance(document, dict) else None
    error = next(validator("notification").iter_errors(document), None)
    reason = _describe(error) if error is not None else "rejected by the notification schema"
    return InvalidNotification(f"not a valid notification: {reason}",
                               notification_id=notification_id if isinstance(notification_id, str) else None)


@cache
def _fast_check() -> Callable[[Any], Any]:
    """The notification schema compiled to Python by fastjsonschema, ~10x faster than jsonschema.

    Only accepting is decided here; an invalid value is explained by the ``jsonschema``
    validator, whose messages are clearer. The schema uses only keywords draft-07 has,
    which is the newest draft fastjsonschema knows (tests/test_message.py checks both agree).
    """
    schema = _without_raising_branches(copy.deepcopy(load_schema("notification")))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    # Without details a rejection formats no message and builds no definition dict.
    return fastjsonschema.compile(schema, detailed_exceptions=False)


def _without_raising_branches(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each "exactly one of two required keys" ``oneOf`` as an if/then/else.

    fastjsonschema tries every ``oneOf`` branch and a failing branch raises, so the check
    of every valid notification raised and caught an exception (3.2 -> 2.0 us a record).
    ``if a: then not b, else b`` accepts the same documents and raises only without ``a``.
    """
    for part in schema.get("allOf", ()):
        branches = part.get("oneOf", ())
        if len(branches) == 2 and all(set(b) == {"required"} and len(b["required"]) == 1 for b in branches):
            (first,), (second,) = (b["required"] for b in branches)
            del part["oneOf"]
            part.update({"if": {"required": [first]}, "then": {"properties": {second: False}},
                         "else": {"required": [second]}})
    return schema


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
