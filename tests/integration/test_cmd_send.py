"""``notifyd send`` end to end against the real test broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from notifyd.cli import main
from notifyd.commands.send import parse_lines
from notifyd.config.kafka import topic_reader
from notifyd.records.notification import parse_notification
from notifyd.records.schedule import parse_moment
from notifyd.exitcodes import ExitCode
from notifyd.tools.devbroker import EmbeddedBroker, free_port
from notifyd.tools.topicscan import read_to_end
from tests.kit.cliout import assert_one_line_saying_why, unreachable_run
from tests.kit.config import base_config
from tests.kit.daemon import ROOT
from tests.kit.kafka import KafkaKit


@pytest.fixture
def setup(kafka, unique, write_config):
    """(config path, topic) of a channel ``audit`` on a fresh topic."""
    topic = unique("send")
    kafka.create_topics(topic)
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"]["topics"] = [topic, f"{topic}.b"]
    return str(write_config(data)), topic


def values(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(r.value()) for r in read_to_end(topic_reader({"bootstrap.servers": bootstrap}), topic, timeout=10)]


def test_send_prints_the_id_of_what_it_produced(setup, kafka, capsys):
    path, topic = setup
    code = main(["send", "--config", path, "--channel", "audit", "--to", "ops@example.com", "--body", "hi",
                 "--subject", "alert", "--data", '{"n": 1}', "--key", "k1"])
    out = capsys.readouterr().out.strip()
    assert code == 0
    [record] = read_to_end(topic_reader({"bootstrap.servers": kafka.bootstrap}), topic, timeout=10)
    assert record.key() == b"k1"
    assert json.loads(record.value()) == {"id": out, "to": "ops@example.com", "body": "hi", "subject": "alert",
                                          "data": {"n": 1}}


def test_config_comes_from_the_environment(setup, kafka, capsys, monkeypatch):
    path, topic = setup
    monkeypatch.setenv("NOTIFYD_CONFIG", path)
    assert main(["send", "--channel", "audit", "--user-id", "u1", "--template", "t", "--id", "fixed"]) == 0
    assert capsys.readouterr().out.strip() == "fixed"
    assert values(kafka.bootstrap, topic)[0]["id"] == "fixed"


def test_file_sends_every_line(setup, kafka, tmp_path, capsys):
    path, topic = setup
    lines = [json.dumps({"id": f"f-{i}", "to": "a@example.com", "body": str(i)}) for i in range(50)]
    lines.insert(10, "")
    (tmp_path / "batch.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["send", "--config", path, "--channel", "audit", "--file", str(tmp_path / "batch.jsonl")]) == 0
    assert capsys.readouterr().out.split() == [f"f-{i}" for i in range(50)]
    assert [v["id"] for v in values(kafka.bootstrap, topic)] == [f"f-{i}" for i in range(50)]


def test_file_with_a_bad_line_names_it_and_sends_nothing(setup, kafka, tmp_path, capsys):
    path, topic = setup
    good = json.dumps({"to": "a@example.com", "body": "x"})
    (tmp_path / "bad.jsonl").write_text(f"{good}\n{{not json\n{good}\n" + json.dumps({"to": "x"}) + "\n")
    assert main(["send", "--config", path, "--channel", "audit", "--file", str(tmp_path / "bad.jsonl")]) == 4
    err = capsys.readouterr().err
    assert "line 2: invalid JSON" in err
    assert "line 4: needs body or template" in err
    assert values(kafka.bootstrap, topic) == []


@pytest.mark.parametrize("argv, code, message", [
    (["--channel", "nope", "--to", "a", "--body", "b"], 2, "unknown channel 'nope'"),
    (["--channel", "audit", "--to", "a"], 4, "body or template"),
    (["--channel", "audit", "--to", "a", "--body", "b", "--data", "{oops"], 4, "--data is not valid JSON"),
    (["--channel", "audit", "--to", "a", "--body", "b", "--data", "[1]"], 4, "data: [1] is not of type 'object'"),
    (["--channel", "audit", "--file", "/nonexistent.jsonl"], 2, "cannot read /nonexistent.jsonl"),
])
def test_bad_input_is_an_error_with_its_exit_code(setup, capsys, argv, code, message):
    path, _ = setup
    assert main(["send", "--config", path, *argv]) == code
    assert message in capsys.readouterr().err


def test_unreachable_broker_is_exit_3_after_the_timeout(write_config):
    path = str(write_config(base_config(f"127.0.0.1:{free_port()}")))
    done = unreachable_run("send", "--config", path, "--timeout", "2", "--channel", "audit", "--to", "a", "--body", "b")
    assert_one_line_saying_why(done.stderr)


def test_a_missing_topic_is_named(kafka, unique, write_config, capsys):
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"]["topics"] = [unique("never-created")]
    assert main(["send", "--config", str(write_config(data)), "--channel", "audit", "--to", "a", "--body", "b"]) == 5
    assert "does not exist (notifyd topics ensure creates it)" in capsys.readouterr().err


def test_progress_is_shown_on_a_terminal(setup, tmp_path, capsys, monkeypatch):
    path, _ = setup
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"to": "a", "body": str(i)}) + "\n" for i in range(20)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["send", "--config", path, "--channel", "audit", "--file", str(tmp_path / "b.jsonl")]) == 0
    assert "\rsent 20/20 (100%)\n" in capsys.readouterr().err


def test_invalid_or_missing_config(write_config, tmp_path, capsys):
    broken = str(write_config(text="kafka: {}\nchannels: {}\n"))
    assert main(["send", "--config", broken, "--channel", "a", "--to", "a", "--body", "b"]) == 1
    assert main(["send", "--config", str(tmp_path / "none.yaml"), "--channel", "a", "--to", "a", "--body", "b"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_parse_lines_reports_each_bad_line():
    lines = ['{"to": "a", "body": "b"}\n', "[]\n", "\n", '{"id": 5, "to": "a", "body": "b"}']
    notifications, problems = parse_lines(lines)
    assert len(notifications) == 1 and notifications[0]["id"]
    assert problems[0] == "line 2: a notification is a JSON object, not list"
    assert problems[1] == "line 4: id: 5 is not of type 'string'"


def test_at_expires_and_priority_set_the_schedule_fields(setup, kafka, capsys):
    path, topic = setup
    before = time.time()
    assert main(["send", "--config", path, "--channel", "audit", "--to", "a", "--body", "b", "--at", "+10m",
                 "--expires", "2030-01-01T09:00:00+01:00", "--priority", "high", "--id", "later"]) == 0
    assert main(["send", "--config", path, "--channel", "audit", "--to", "a", "--body", "b", "--at", "1924992000",
                 "--id", "epoch"]) == 0
    later, epoch = values(kafka.bootstrap, topic)
    assert (later["id"], later["expires_at"], later["priority"]) == ("later", "2030-01-01T08:00:00Z", "high")
    send_at = parse_moment(later["send_at"])
    assert before + 600 <= send_at <= time.time() + 600 and later["send_at"].endswith("Z")
    assert (epoch["send_at"], "expires_at" in epoch, "priority" in epoch) == ("2031-01-01T00:00:00Z", False, False)
    assert parse_notification(json.dumps(later).encode(), channel="audit").send_at == send_at


def test_at_applies_to_each_line_of_a_file_without_its_own(setup, kafka, tmp_path):
    path, topic = setup
    own = "2031-05-01T12:00:00+02:00"
    lines = [{"id": "plain", "to": "a", "body": "b"}, {"id": "own", "to": "a", "body": "b", "send_at": own}]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["send", "--config", path, "--channel", "audit", "--file", str(tmp_path / "b.jsonl"),
                 "--at", "in 2h"]) == 0
    plain, mine = values(kafka.bootstrap, topic)
    assert abs(parse_moment(plain["send_at"]) - (time.time() + 7200)) < 60 and mine["send_at"] == own


@pytest.mark.parametrize("argv, message", [
    (["--at", "2026-12-04T10:00:00"], "--at: '2026-12-04T10:00:00' has no UTC offset"),
    (["--at", "tomorrow"], "--at: 'tomorrow' is not an RFC 3339 time"),
    (["--expires=-5m"], "--expires: '-5m' is not an RFC 3339 time"),
    (["--at", "+2h", "--expires", "+1h"], "--expires is not after --at"),
])
def test_a_bad_time_is_a_usage_error_and_nothing_is_sent(setup, kafka, capsys, argv, message):
    path, topic = setup
    assert main(["send", "--config", path, "--channel", "audit", "--to", "a", "--body", "b", *argv]) == 2
    assert message in capsys.readouterr().err
    assert values(kafka.bootstrap, topic) == []


# The topic check answers, then the broker stops answering; "frozen" on stderr says so.
FREEZE_AFTER_TOPIC_CHECK = """
import os, signal, sys
from notifyd.cli import main
from notifyd.commands import send
signal.signal(signal.SIGINT, signal.default_int_handler)  # a test runner's child may inherit SIG_IGN
check = send._check_topic
def check_then_freeze(*args, **kwargs):
    check(*args, **kwargs)
    os.kill(int(sys.argv[1]), signal.SIGSTOP)
    print("frozen", file=sys.stderr, flush=True)
send._check_topic = check_then_freeze
sys.exit(main(sys.argv[2:]))
"""


def test_ctrl_c_during_a_file_send_says_how_many_were_acknowledged(tmp_path, write_config):
    # It ended in a KeyboardInterrupt traceback, no id printed and no word of what had gone.
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"to": "a", "body": str(i)}) + "\n" for i in range(3)))
    with EmbeddedBroker(log_path=str(tmp_path / "broker.log")) as broker:
        KafkaKit(broker.bootstrap_servers).create_topics("notify.audit")
        path = str(write_config(base_config(broker.bootstrap_servers)))
        sender = subprocess.Popen([sys.executable, "-c", FREEZE_AFTER_TOPIC_CHECK, str(broker.process.pid), "send",
                                   "--config", path, "--channel", "audit", "--file", str(tmp_path / "b.jsonl"),
                                   "--timeout", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            assert sender.stderr.readline() == "frozen\n"
            time.sleep(1)  # past the checks, into the wait for acknowledgements
            sender.send_signal(signal.SIGINT)
            out, err = sender.communicate(timeout=30)
        finally:
            sender.kill()
            os.kill(broker.process.pid, signal.SIGCONT)
    assert sender.returncode == ExitCode.INTERRUPTED, err
    assert err.strip() == ("notifyd send: interrupted: 0 of 3 notification(s) acknowledged by the broker "
                           "(ids are printed only once all are); the others may have been written or not")
    assert out == ""
