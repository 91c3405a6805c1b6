"""The channel's one-pass check (``notifyd.records.wire``) against the notification schema itself.

The fast check may refuse what the schema admits (the schema then decides), but must never
admit what it refuses; and a record it admits must become the same ``Notification`` the
schema's path gives.
"""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema_rs
import orjson
import pytest

from notifyd.records import notification as records
from notifyd.records.notification import InvalidNotification, parse_notification
from notifyd.records.wire import CATEGORY_PATTERN, MOMENT_PATTERN, accepted_fields
from notifyd.schemas import load_schema

TEXT = ["", "x", "a@example.com", "ünïcødé ✓", "line\n", "\n", " ", "x" * 256, "x" * 257, "\u0000", "\ud7ff"]
NOT_TEXT = [None, 0, 1.5, True, [], {}, ["x"]]
MOMENTS = ["2026-12-04T10:00:00Z", "2026-12-04t10:00:00z", "2026-12-04 10:00:00+01:00", "2026-12-04T10:00Z",
           "2026-12-04T10:00:00.123456-05:30", "2026-12-04T10:00:00", "2026-12-04T10:00:00Z\n", "2026-02-30T00:00:00Z",
           "9999-12-31T23:59:59Z", "tomorrow", 0, 1, 1.5, -1, -0.0, 253402300799, 253402300799.5, 253402300800, 1e20,
           True, None, [], {}]
CATEGORIES = ["marketing", "a", "A.b_c-9", "-a", "_a", "a" * 64, "a" * 65, "a\n", "a b", "é", ""]
OBJECTS = [{}, {"k": 1}, {"nested": {"list": [1, 2.5, None, True, "s"]}}, [], "x", 1, None]


def field_value(rng: random.Random, name: str) -> Any:
    choices: list[Any] = {
        "id": TEXT + NOT_TEXT, "to": TEXT + NOT_TEXT, "user_id": TEXT + NOT_TEXT, "subject": TEXT + NOT_TEXT,
        "body": TEXT + NOT_TEXT, "html": TEXT + NOT_TEXT, "template": TEXT + NOT_TEXT,
        "category": CATEGORIES + NOT_TEXT, "data": OBJECTS, "metadata": OBJECTS, "send_at": MOMENTS,
        "expires_at": MOMENTS, "priority": ["high", "normal", "low", "", "HIGH", None, 1],
    }[name]
    return rng.choice(choices)


def random_document(rng: random.Random) -> dict[str, Any]:
    """Mostly near-valid documents: each field absent, well formed, or one of the edge cases above."""
    document: dict[str, Any] = {"id": f"n-{rng.randrange(10**6)}"}
    address = rng.choice(["to", "user_id", "both", "neither"])
    document.update({"to": "a@example.com"} if address in ("to", "both") else {})
    document.update({"user_id": "u-1"} if address in ("user_id", "both") else {})
    document[rng.choice(["body", "template"])] = "hello"
    for name in rng.sample(sorted(load_schema("notification")["properties"]), rng.randrange(0, 4)):
        document[name] = field_value(rng, name)
    if rng.random() < 0.05:
        document["colour"] = "red"  # not a property
    return document


def schema_admits(value: bytes) -> bool:
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return jsonschema_rs.validator_for(load_schema("notification")).is_valid(document)


def parsed(value: bytes) -> Any:
    """The notification ``parse_notification`` gives, or the reason it gives for refusing it."""
    try:
        return parse_notification(value, channel="c", headers=[("h", b"1")])
    except InvalidNotification as exc:
        return str(exc)


def by_the_schema(value: bytes) -> Any:
    """``parsed``, through the schema's path alone."""
    original = records.accepted_fields
    records.accepted_fields = lambda _value: None
    try:
        return parsed(value)
    finally:
        records.accepted_fields = original


def test_the_patterns_are_the_schema_s_anchored_at_the_very_end() -> None:
    schema = load_schema("notification")
    assert CATEGORY_PATTERN == schema["properties"]["category"]["pattern"].removesuffix("$") + r"\Z"
    assert MOMENT_PATTERN == schema["$defs"]["moment"]["oneOf"][0]["pattern"].removesuffix("$") + r"\Z"


def test_thousands_of_documents_are_judged_as_the_schema_judges_them() -> None:
    rng = random.Random(20261206)
    admitted = refused = 0
    for _ in range(6000):
        value = json.dumps(random_document(rng)).encode()
        fast = accepted_fields(value) is not None
        assert fast == schema_admits(value), value
        if fast:
            admitted += 1
            assert parsed(value) == by_the_schema(value), value
        else:
            refused += 1
    assert admitted > 1000 and refused > 1000  # both sides were explored


@pytest.mark.parametrize("value", [
    b'{"id":"a","to":"t","body":"x"} ', b'{"id":"a","to":"t","body":"x"}\n', b' \t{"id":"a","to":"t","body":"x"}',
    b'{"id":"a","to":"t","body":"x","to":"u"}', b'{"id":"a","to":null,"to":"u","body":"x"}',
    b'{"id":"a","to":"t","body":"x","data":{"f":1.5e308,"g":-0.0,"e":1E-7}}',
    b'{"id":"a","to":"t","body":"x","send_at":1e400}', b'{"id":"a","to":"t","body":"x","send_at":1.0e2}',
    b'{"id":"a","to":"t","body":"x","data":{"n":NaN}}', b'{"id":"a","to":"t","body":"\\ud800"}',
    b'{"id":"a","to":"t","body":"\\ud83d\\ude00"}', b'{"id":"\xff","to":"t","body":"x"}',
    b'\xef\xbb\xbf{"id":"a","to":"t","body":"x"}', b'{"id":"a","to":"t","body":"x"}{}',
    b'{"id":"a","to":"t","body":"x","data":' + b'{"a":' * 2000 + b'1' + b'}' * 2000 + b'}',
    b'{"id":"a","to":"t","body":"x","data":{"":1,"k":[]}}', b'{"id":"a","to":"t","body":"x","data":{"k":1,"k":2}}',
    b'[]', b'null', b'""', b'1', b'', b'{}',
], ids=lambda value: repr(value)[:60])
def test_raw_records_at_the_edges_of_json_are_judged_as_the_schema_judges_them(value: bytes) -> None:
    fast = accepted_fields(value) is not None
    assert not fast or schema_admits(value)  # never looser; stricter only sends a record the slow way
    if fast:
        assert parsed(value) == by_the_schema(value)


def test_an_integer_beyond_64_bits_stays_exact() -> None:
    value = b'{"id":"a","to":"t","body":"x","data":{"n":123456789012345678901234567890}}'
    assert parse_notification(value, channel="c").data == {"n": 123456789012345678901234567890}
    assert by_the_schema(value).data == {"n": 1.2345678901234568e29}  # orjson's float, as before msgspec


def test_nesting_too_deep_for_msgspec_is_refused_with_a_reason_not_a_crash() -> None:
    value = b'{"id":"a","to":"t","body":"x","data":' + b'{"a":' * 5000 + b'1' + b'}' * 5000 + b'}'
    assert accepted_fields(value) is None
    with pytest.raises(InvalidNotification, match="not JSON"):
        parse_notification(value, channel="c")


def test_a_record_the_fast_check_refuses_is_still_delivered_when_the_schema_admits_it() -> None:
    value = b'{"id":"a","to":null,"to":"u","body":"x"}'  # a duplicate key: orjson keeps the last
    assert accepted_fields(value) is None and schema_admits(value)
    assert parse_notification(value, channel="c").to == "u"
