"""``notifyd topics ensure`` against the real test broker."""

from __future__ import annotations

from notifyd.cli import main
from notifyd.commands.topics import configured_topics
from notifyd.config.loading import load_config
from notifyd.tools.devbroker import free_port
from tests.kit.cliout import assert_one_line_saying_why, unreachable_run
from tests.kit.config import base_config


def config_with_topics(kafka, unique, write_config) -> tuple[str, list[str]]:
    a, b, dlq, c = unique("ens-a"), unique("ens-b"), unique("ens-dlq"), unique("ens-c")
    data = base_config(kafka.bootstrap)
    data["channels"] = {
        "mail": {"topics": [a, b], "handler": "log", "dlq": dlq, "group_id": unique("g")},
        "sms": {"topics": [c], "handler": "log", "dlq": dlq, "group_id": unique("g")},
    }
    return str(write_config(data)), [a, b, dlq, c]


def test_ensure_creates_only_what_is_missing(kafka, unique, write_config, capsys):
    path, topics = config_with_topics(kafka, unique, write_config)
    kafka.create_topics(topics[0], partitions=2)
    assert main(["topics", "ensure", "--config", path, "--partitions", "3"]) == 0
    out = capsys.readouterr().out
    assert f"exists   {topics[0]} (2 partitions)" in out
    assert all(f"created  {t}" in out for t in topics[1:])
    metadata = kafka.admin.list_topics(timeout=10).topics
    assert len(metadata[topics[0]].partitions) == 2
    assert [len(metadata[t].partitions) for t in topics[1:]] == [3, 3, 3]

    assert main(["topics", "ensure", "--config", path]) == 0
    assert "created" not in capsys.readouterr().out


def test_dry_run_creates_nothing_then_broker_defaults_apply(kafka, unique, write_config, capsys):
    path, topics = config_with_topics(kafka, unique, write_config)
    assert main(["topics", "ensure", "--config", path, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("missing  ") == 4 + 2 * 10  # and each channel's ten delay topics
    assert not set(topics) & set(kafka.admin.list_topics(timeout=10).topics)
    assert main(["topics", "ensure", "--config", path]) == 0
    assert set(topics) <= set(kafka.admin.list_topics(timeout=10).topics)


def test_configured_topics_lists_each_once(kafka, unique, write_config):
    path, topics = config_with_topics(kafka, unique, write_config)
    assert configured_topics(load_config(path)) == topics


def test_usage_errors_and_unreachable_broker(write_config):
    path = str(write_config(base_config(f"127.0.0.1:{free_port()}")))
    assert main(["topics", "ensure", "--config", path, "--partitions", "0"]) == 2
    assert_one_line_saying_why(unreachable_run("topics", "ensure", "--config", path, "--timeout", "2").stderr)


def test_consumer_only_settings_do_not_reach_the_admin_client(kafka, unique, write_config, capfd):
    # An admin client is a producer-type handle in librdkafka, which warns on stderr
    # (CONFWARN) about each consumer-only property of kafka.config it is given.
    path, _ = config_with_topics(kafka, unique, write_config)
    assert main(["topics", "ensure", "--config", path]) == 0
    assert "CONFWARN" not in capfd.readouterr().err
