"""The ``fallback`` key: a channel or an inline handler, from YAML to settings; loops and unknown targets refused."""

from __future__ import annotations

from notifyd.config.fallbacks import fallback_cycle
from notifyd.config.loading import check_text
from notifyd.config.settings import Fallback

BASE = """\
kafka: {bootstrap_servers: "localhost:9092"}
channels:
  ses:
    topics: [notify.ses, notify.ses.more]
    handler: log
"""
RELAY = """\
  relay:
    topics: [notify.relay, notify.relay.b]
    handler: log
"""


def check(text: str):
    return check_text(text, "f.yaml", {})


def positions(findings) -> list[str]:
    return [f"{f.line}:{f.column} {f.key_path}: {f.message}" for f in findings]


def test_a_fallback_channel_loads_with_its_first_topic() -> None:
    config, findings = check(BASE + "    fallback: relay\n" + RELAY)
    assert findings == []
    assert config.channels["ses"].fallback == Fallback(channel="relay", topic="notify.relay")
    assert config.channels["relay"].fallback is None


def test_an_inline_handler_loads_with_its_options() -> None:
    config, findings = check(BASE + "    fallback: {handler: file, options: {path: /tmp/x.jsonl}, recipient: email}\n")
    assert findings == [], positions(findings)
    assert config.channels["ses"].fallback == Fallback(handler="file", options={"path": "/tmp/x.jsonl"},
                                                        recipient="email")


def test_an_unknown_channel_is_refused_at_its_position() -> None:
    config, findings = check(BASE + "    fallback: rellay\n" + RELAY)
    assert config is None
    assert positions(findings) == [
        "6:15 channels.ses.fallback: fallback names an unknown channel 'rellay'; did you mean 'relay'?"]


def test_a_channel_falling_back_to_itself_is_a_loop() -> None:
    config, findings = check(BASE + "    fallback: ses\n")
    assert config is None
    assert positions(findings) == [
        "6:15 channels.ses.fallback: fallback loop: ses -> ses; a notification would bounce between them"]


def test_a_loop_of_two_is_refused_at_both_keys() -> None:
    config, findings = check(BASE + "    fallback: relay\n" + RELAY + "    fallback: ses\n")
    assert config is None
    assert positions(findings) == [
        "6:15 channels.ses.fallback: fallback loop: ses -> relay -> ses; a notification would bounce between them",
        "10:15 channels.relay.fallback: fallback loop: relay -> ses -> relay; a notification would bounce "
        "between them",
    ]


def test_a_chain_is_not_a_loop() -> None:
    channels = {"a": {"fallback": "b"}, "b": {"fallback": "c"}, "c": {}, "d": {"fallback": "b"}}
    assert all(fallback_cycle(name, channels) is None for name in channels)
    assert fallback_cycle("x", {"x": {"fallback": "y"}, "y": {"fallback": "z"}, "z": {"fallback": "y"}}) is None


def test_an_inline_handler_is_checked_like_a_channel_handler() -> None:
    config, findings = check(BASE + "    fallback: {handler: nosuch.module:Handler}\n")
    assert config is None
    assert [f.key_path for f in findings] == ["channels.ses.fallback.handler"]
    assert findings[0].line == 6


def test_inline_handler_options_are_checked_against_its_schema() -> None:
    config, findings = check(BASE + "    fallback:\n      handler: file\n      options: {pathh: /tmp/x}\n")
    assert config is None
    assert any(f.key_path.startswith("channels.ses.fallback.options") and f.line == 8 for f in findings), \
        positions(findings)


def test_a_fallback_must_be_a_name_or_a_handler() -> None:
    config, findings = check(BASE + "    fallback: {options: {}}\n")
    assert config is None and findings
