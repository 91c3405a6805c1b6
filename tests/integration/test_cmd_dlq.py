"""``notifyd dlq inspect`` and ``notifyd dlq replay`` against the real test broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from notifyd.cli import main
from notifyd.config.kafka import topic_reader
from notifyd.records import dlqheaders as h
from notifyd.tools.devbroker import free_port
from notifyd.tools.topicscan import read_to_end
from tests.kit.cliout import assert_one_line_saying_why, unreachable_run
from tests.kit.config import base_config

NOW = datetime.now(UTC)


@pytest.fixture
def setup(kafka, unique, write_config):
    """(config path, original topic with 2 partitions, DLQ topic) of channel ``audit``."""
    topic = unique("dlq-orig")
    dlq = f"{topic}.dlq"
    kafka.create_topics(topic, partitions=2)
    kafka.create_topics(dlq)
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"].update(topics=[topic], dlq=dlq)
    return str(write_config(data)), topic, dlq


def dead_letter(kafka, dlq: str, *, original: str, notification_id: str | None, reason: str = "permanent",
                partition: int = 0, offset: int = 0, failed_at: datetime = NOW, value: bytes | None = None,
                extra_headers: list | None = None) -> None:
    value = value if value is not None else json.dumps({"id": notification_id, "to": "a@x", "body": "b"}).encode()
    headers = (extra_headers or []) + [
        (h.HEADER_CHANNEL, b"audit"), (h.HEADER_ORIGINAL_TOPIC, original.encode()),
        (h.HEADER_ORIGINAL_PARTITION, str(partition).encode()), (h.HEADER_ORIGINAL_OFFSET, str(offset).encode()),
        (h.HEADER_ORIGINAL_TIMESTAMP, b"1700000000000"), (h.HEADER_ERROR_REASON, reason.encode()),
        (h.HEADER_ERROR_CLASS, b"smtplib.SMTPRecipientsRefused"), (h.HEADER_ERROR_MESSAGE, b"550 no such user"),
        (h.HEADER_ATTEMPTS, b"4"), (h.HEADER_FAILED_AT, failed_at.isoformat().encode()),
    ]
    kafka.produce(dlq, value, key=f"key-{notification_id}", headers=headers)


def records(kafka, topic: str) -> list:
    return list(read_to_end(topic_reader({"bootstrap.servers": kafka.bootstrap}), topic, timeout=10))


def inspect_json(path: str, capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    assert main(["dlq", "inspect", "--config", path, "--channel", "audit", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_shows_every_field_and_survives_bad_values(setup, kafka, capsys):
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="n-1", partition=1, offset=41)
    dead_letter(kafka, dlq, original=topic, notification_id=None, reason="invalid", value=b"\xff\xfe{not json")
    kafka.flush()
    first, second = inspect_json(path, capsys)
    assert first == {
        "id": "n-1", "reason": "permanent", "error": "smtplib.SMTPRecipientsRefused: 550 no such user",
        "attempts": 4, "original_topic": topic, "original_partition": 1, "original_offset": 41,
        "failed_at": NOW.isoformat(), "dlq_partition": 0, "dlq_offset": 0,
    }
    assert (second["id"], second["reason"]) == ("-", "invalid")
    assert main(["dlq", "inspect", "--config", path, "--channel", "audit"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "REASON", "ATTEMPTS"]
    assert table[1].startswith("n-1 ") and f"{topic}[1]@41" in table[1]
    assert not [g for g in kafka.admin.list_consumer_groups().result(10).valid if "notifyd.tool" in g.group_id]


def test_inspect_filters_and_limits(setup, kafka, capsys):
    path, topic, dlq = setup
    for i in range(5):
        dead_letter(kafka, dlq, original=topic, notification_id=f"n-{i}", reason="permanent" if i % 2 else "invalid")
        kafka.flush()
    assert [r["id"] for r in inspect_json(path, capsys, "--limit", "2")] == ["n-3", "n-4"]
    assert [r["id"] for r in inspect_json(path, capsys, "--reason", "permanent")] == ["n-1", "n-3"]


def test_replay_sends_each_dead_letter_once_across_runs_and_filters(setup, kafka, capsys):
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="p-1", partition=1,
                extra_headers=[("traceparent", b"00-abc-01"), ("bin", b"\x00\xff")])
    dead_letter(kafka, dlq, original=topic, notification_id="p-2", partition=0)
    dead_letter(kafka, dlq, original=topic, notification_id="i-1", reason="invalid", partition=1)
    kafka.flush()

    assert main(["dlq", "replay", "--config", path, "--channel", "audit", "--reason", "permanent"]) == 0
    copies = {json.loads(r.value())["id"]: r for r in records(kafka, topic)}
    assert sorted(copies) == ["p-1", "p-2"]
    p1 = copies["p-1"]
    assert (p1.partition(), p1.key()) == (1, b"key-p-1")
    marker = (h.REPLAYED_FROM, f"{dlq}:0:0".encode())
    assert p1.headers() == [("traceparent", b"00-abc-01"), ("bin", b"\x00\xff"), marker]

    assert main(["dlq", "replay", "--config", path, "--channel", "audit", "--reason", "permanent"]) == 0
    assert main(["dlq", "replay", "--config", path, "--channel", "audit"]) == 0
    out = capsys.readouterr().out
    assert out.count("already replayed") == 4
    assert sorted(json.loads(r.value())["id"] for r in records(kafka, topic)) == ["i-1", "p-1", "p-2"]


def test_a_copy_from_an_interrupted_run_is_not_sent_again(setup, kafka, capsys):
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="a")
    dead_letter(kafka, dlq, original=topic, notification_id="b")
    kafka.flush()
    # What a run killed after its first acknowledgement leaves behind: one copy, no other trace.
    kafka.produce(topic, b'{"id": "a"}', headers=[(h.REPLAYED_FROM, f"{dlq}:0:0".encode())], partition=0)
    kafka.flush()
    assert main(["dlq", "replay", "--config", path, "--channel", "audit", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip a (dlq 0@0): already replayed" in out and "would replay b (dlq 0@1)" in out
    assert len(records(kafka, topic)) == 1
    assert main(["dlq", "replay", "--config", path, "--channel", "audit"]) == 0
    assert sorted(json.loads(r.value())["id"] for r in records(kafka, topic)) == ["a", "b"]


def test_replay_selects_by_since_and_id(setup, kafka, capsys):
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="old", failed_at=NOW - timedelta(days=2))
    dead_letter(kafka, dlq, original=topic, notification_id="new-1")
    dead_letter(kafka, dlq, original=topic, notification_id="new-2")
    kafka.flush()
    assert main(["dlq", "replay", "--config", path, "--channel", "audit", "--since", "1h", "--id", "new-2", "old"]) == 0
    assert [json.loads(r.value())["id"] for r in records(kafka, topic)] == ["new-2"]
    assert f"no dead letter in {dlq} matches --id old" in capsys.readouterr().err  # once "replayed 1" and no more


@pytest.mark.parametrize("since", ["1970-01-01T00:00:00Z", "0001-01-01T00:10:00Z"])
def test_a_since_near_or_before_the_epoch_reads_from_the_beginning(setup, kafka, capsys, since):
    # The 15-minute margin took the first below 0 ms, which the broker failed ("broker unreachable",
    # exit 3, or a Kafka error), and the second below the year 1: an OverflowError traceback.
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="n-old")
    kafka.flush()
    assert [r["id"] for r in inspect_json(path, capsys, "--since", since)] == ["n-old"]


def test_a_partition_that_no_longer_exists_falls_back_to_the_partitioner(setup, kafka, capsys):
    path, topic, dlq = setup
    dead_letter(kafka, dlq, original=topic, notification_id="far", partition=7)
    kafka.flush()
    assert main(["dlq", "replay", "--config", path, "--channel", "audit"]) == 0
    [copy] = records(kafka, topic)
    assert copy.partition() in (0, 1) and json.loads(copy.value())["id"] == "far"


@pytest.mark.parametrize("argv, code, message", [
    (["dlq", "inspect", "--channel", "nope"], 2, "unknown channel 'nope'"),
    (["dlq", "replay", "--channel", "audit", "--since", "yesterday"], 2, "not an ISO-8601 time"),
    (["dlq", "replay", "--channel", "nodlq"], 2, "has no dlq topic"),
    (["dlq", "inspect", "--channel", "gone"], 5, "does not exist"),
])
def test_usage_errors(kafka, unique, write_config, capsys, argv, code, message):
    data = base_config(kafka.bootstrap)
    data["channels"]["nodlq"] = {"topics": [unique("t")], "handler": "log"}
    data["channels"]["gone"] = {"topics": [unique("t")], "handler": "log", "dlq": unique("missing")}
    path = str(write_config(data))
    assert main([*argv[:2], "--config", path, *argv[2:]]) == code
    assert message in capsys.readouterr().err


def test_unreachable_broker_is_exit_3_after_the_timeout(write_config):
    path = str(write_config(base_config(f"127.0.0.1:{free_port()}")))
    for action in ("inspect", "replay"):
        done = unreachable_run("dlq", action, "--config", path, "--timeout", "2", "--channel", "audit")
        assert_one_line_saying_why(done.stderr)
