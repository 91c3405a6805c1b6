"""The notification schema as a msgspec type: a valid record is decoded and checked in one pass.

The channel reads every record through ``accepted_fields``. A record it accepts is valid
(``schemas/notification.schema.json``); one it does not accept goes to the schema itself,
which decides and words the reason, so this type may be stricter than the schema but never
looser (``tests/unit/test_wire.py`` compares the two on thousands of records). ~1 us a
record against ~1.8 for orjson, jsonschema-rs and a ``Notification`` built from the dict.

Patterns end in ``\\Z``: msgspec matches with Python's ``re``, whose ``$`` lets one line
break at the end through; the schema's regex dialect does not. An integer beyond 64 bits in
``data`` or ``metadata`` stays exact here, where orjson (the schema's path) makes it a float.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from notifyd.records.schedule import LAST_EPOCH

# The schema's patterns, "$" written "\Z" (tests/unit/test_wire.py compares them).
CATEGORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z"
MOMENT_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}"
                  r"(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z")
_NON_EMPTY = Annotated[str, msgspec.Meta(min_length=1)]
_MOMENT = Annotated[str, msgspec.Meta(pattern=MOMENT_PATTERN)] | Annotated[float, msgspec.Meta(ge=0, le=LAST_EPOCH)]


class _Notification(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A notification record's fields. A default of None stands for "absent": a JSON null is refused."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    to: _NON_EMPTY = None  # type: ignore[assignment]
    user_id: _NON_EMPTY = None  # type: ignore[assignment]
    subject: str = None  # type: ignore[assignment]
    body: str = None  # type: ignore[assignment]
    html: str = None  # type: ignore[assignment]
    template: _NON_EMPTY = None  # type: ignore[assignment]
    category: Annotated[str, msgspec.Meta(pattern=CATEGORY_PATTERN)] = None  # type: ignore[assignment]
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    send_at: _MOMENT = None  # type: ignore[assignment]
    expires_at: _MOMENT = None  # type: ignore[assignment]
    priority: Literal["high", "normal"] = "normal"


_DECODER = msgspec.json.Decoder(_Notification)


def accepted_fields(value: bytes) -> dict[str, Any] | None:
    """Every field of the valid notification ``value`` holds (absent ones None or empty); None if not surely valid."""
    try:
        fields = msgspec.structs.asdict(_DECODER.decode(value))
    except Exception:  # invalid, or past what msgspec reads (RecursionError at ~1,000 levels): the schema decides
        return None
    # The schema's allOf: exactly one of to and user_id; body or template.
    if (fields["to"] is None) == (fields["user_id"] is None) or fields["body"] is None and fields["template"] is None:
        return None
    return fields
