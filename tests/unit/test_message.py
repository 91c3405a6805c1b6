"""Parsing a record's bytes into a Notification."""

from __future__ import annotations

import json

import pytest

from notifyd.records.notification import InvalidNotification, parse_notification


def parse(value, headers=None):
    return parse_notification(value, channel="email", headers=headers)


def test_a_full_notification() -> None:
    document = {"id": "n-1", "to": "a@example.com", "subject": "Hi", "body": "text", "html": "<p>text</p>",
                "data": {"code": 42}, "metadata": {"trace": "t"}}
    notification = parse(json.dumps(document).encode(), headers=[("h", b"\x00\x01"), ("none", None)])
    assert notification.id == "n-1" and notification.channel == "email"
    assert (notification.to, notification.subject, notification.body, notification.html) == (
        "a@example.com", "Hi", "text", "<p>text</p>")
    assert notification.data == {"code": 42} and notification.metadata == {"trace": "t"}
    assert notification.headers == {"h": b"\x00\x01", "none": b""}
    assert notification.attempt == 1 and notification.user_id is None and notification.template is None


def test_user_id_and_template_instead_of_to_and_body() -> None:
    notification = parse(b'{"id": "n", "user_id": "u-7", "template": "welcome"}')
    assert (notification.user_id, notification.template, notification.to) == ("u-7", "welcome", None)


@pytest.mark.parametrize(("value", "words"), [
    (None, "tombstone"),
    (b"", "not JSON"),
    (b"hello", "not JSON"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b'"just a string"', "not a valid notification"),
    (b"[1, 2]", "not a valid notification"),
    (b'{"to": "a", "body": "b"}', "'id' is a required property"),
    (b'{"id": "n", "body": "b"}', "not a valid notification"),
    (b'{"id": "n", "to": "a", "user_id": "u", "body": "b"}', "not a valid notification"),
    (b'{"id": 5, "to": "a", "body": "b"}', "at /id"),
    (b'{"id": "n", "to": "a", "body": "b", "colour": "red"}', "colour"),
])
def test_invalid_values_raise_a_clear_reason(value, words) -> None:
    with pytest.raises(InvalidNotification) as caught:
        parse(value)
    assert words in str(caught.value)


def test_the_id_is_kept_when_the_rest_is_invalid() -> None:
    with pytest.raises(InvalidNotification) as caught:
        parse(b'{"id": "n-9", "to": "a"}')
    assert caught.value.notification_id == "n-9"


def test_a_ten_megabyte_value_gives_a_short_reason() -> None:
    huge = json.dumps({"id": "big", "to": "a", "body": 7, "data": {"blob": "x" * 10_000_000}}).encode()
    with pytest.raises(InvalidNotification) as caught:
        parse(huge)
    assert len(str(caught.value)) < 1000
    huge_string = json.dumps("y" * 10_000_000).encode()
    with pytest.raises(InvalidNotification) as caught:
        parse(huge_string)
    assert len(str(caught.value)) < 1000


def test_a_valid_ten_megabyte_body_is_accepted() -> None:
    notification = parse(json.dumps({"id": "big", "to": "a", "body": "z" * 10_000_000}).encode())
    assert len(notification.body) == 10_000_000


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidNotification):
        parse(b"[" * 100_000 + b"]" * 100_000)


def test_the_fast_check_agrees_with_the_reference_validator() -> None:
    from notifyd.records.notification import _fast_check
    from notifyd.schemas import validator

    documents = [
        {"id": "n", "to": "a", "body": "b"}, {"id": "n", "user_id": "u", "template": "t", "data": {}},
        {"id": "n", "to": "a", "user_id": "u", "body": "b"}, {"id": "n", "to": "a"}, {"id": "", "to": "a", "body": "b"},
        {"id": "x" * 257, "to": "a", "body": "b"}, {"id": "n", "to": "", "body": "b"}, {"id": "n", "to": 1, "body": "b"},
        {"id": "n", "to": "a", "body": "b", "data": []}, {"id": "n", "to": "a", "body": "b", "metadata": "m"},
        {"id": "n", "to": "a", "body": "b", "extra": 1}, {"id": "n", "to": "a", "template": ""}, [], "s", None, 3,
        {"id": "n", "to": "a", "body": "b", "subject": None}, {"id": "n", "to": "a", "html": "<p/>"},
        {"id": "n", "body": "b"}, {"id": "n", "user_id": "u", "body": "b"}, {"id": "n", "user_id": "", "body": "b"},
        {"id": "n", "to": "a", "user_id": "u", "template": "t"},
    ]
    fast, reference = _fast_check(), validator("notification")
    for document in documents:
        assert fast(document) == reference.is_valid(document), document


def test_what_a_channel_refuses_the_client_refuses_too() -> None:
    # Python's re lets a pattern's $ match before one line break at the end; the schema's dialect does not.
    from notifyd.records.notification import UNEXPLAINED, notification_problems

    document = {"id": "n", "to": "a", "body": "b", "category": "marketing\n"}
    assert notification_problems(document) == [UNEXPLAINED]
    with pytest.raises(InvalidNotification, match="line break"):
        parse(json.dumps(document).encode())


@pytest.mark.parametrize(("value", "words"), [
    (b"\xef\xbb\xbf" + b'{"id": "n", "to": "a", "body": "b"}', "not JSON"),  # a BOM: not plain UTF-8 JSON
    (b'{"id": "n", "to": "a", "body": "b", "data": {"x": NaN}}', "not JSON"),
    (b'{"id": "n", "to": "\xc3", "body": "b"}', "UTF-8"),  # cut inside a string
    (b'{"id": "n", "to": "a", "body": "b"} trailing', "not JSON"),
])
def test_values_the_parser_rejects_are_worded_by_cause(value, words) -> None:
    with pytest.raises(InvalidNotification) as caught:
        parse(value)
    assert words in str(caught.value)


def test_data_nested_a_few_hundred_levels_is_accepted() -> None:
    nested = b'{"a": ' * 500 + b"1" + b"}" * 500
    notification = parse(b'{"id": "n", "to": "a", "body": "b", "data": ' + nested + b"}")
    assert "a" in notification.data


def test_without_headers_the_notification_has_an_empty_mapping() -> None:
    notification = parse(b'{"id": "n", "to": "a", "body": "b"}', headers=None)
    assert dict(notification.headers) == {} and dict(notification.data) == {} and dict(notification.metadata) == {}


def test_every_schema_property_is_a_notification_field() -> None:
    """parse_notification passes the validated document as keywords: a new property needs a field."""
    import dataclasses

    from notifyd.api import Notification
    from notifyd.schemas import load_schema

    fields = {field.name for field in dataclasses.fields(Notification)}
    assert set(load_schema("notification")["properties"]) <= fields - {"channel", "headers", "attempt"}


def test_a_parsed_notification_is_the_same_object_the_constructor_makes() -> None:
    import dataclasses
    import pickle

    from notifyd.api import Notification

    parsed = parse(b'{"id": "n", "to": "a", "body": "b"}')
    assert parsed == Notification(id="n", channel="email", to="a", body="b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.body = "changed"
    again = dataclasses.replace(parsed, attempt=2)
    assert (again.attempt, again.body, parsed.attempt) == (2, "b", 1)
    assert parsed._with_attempt(2) == again and parsed.attempt == 1  # a retry's cheap copy
    assert pickle.loads(pickle.dumps(parsed)) == parsed
    other = parse(b'{"id": "m", "to": "a", "body": "b"}')
    assert parsed.data is not other.data and parsed.headers is not other.headers  # no shared defaults
