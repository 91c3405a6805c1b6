"""The ledger on by default, in a real channel process: a redelivered id that was sent is not sent again.

``ledger: off`` sending it again: ``test_ledger_delivery.test_a_redelivered_notification_is_not_sent_twice``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notifyd.exitcodes import ExitCode
from tests.kit.handlers import read_records
from tests.kit.kafka import KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import channel_config, notification

pytestmark = pytest.mark.kafka


def deliver_the_same_id_twice(kafka: KafkaKit, unique, tmp_path: Path, start, **channel: object) -> list[str]:
    """Ids the handler saw when ``dup-1`` is consumed, committed, then published and consumed again."""
    topic, path = unique("ledger.default"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic)
    config = channel_config(kafka.bootstrap, c={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path)}, **channel})
    group = config.channels["c"].group_id
    for offset in (1, 2):  # a second process, as after a restart: the ledger is on disk, not in memory
        kafka.produce(topic, notification("dup-1"), key="k")
        kafka.flush()
        worker = start(config, "c")
        wait_until(lambda end=offset: kafka.committed(group, topic) == [end], what=f"offset {offset} committed")
        assert worker.finish() == ExitCode.OK
    return [record["id"] for record in read_records(path)]


def test_a_default_channel_does_not_send_an_id_again(kafka: KafkaKit, unique, tmp_path: Path, start,
                                                     state_dir: Path) -> None:
    assert deliver_the_same_id_twice(kafka, unique, tmp_path, start) == ["dup-1"]
    assert (state_dir / "ledger.sqlite3").exists()  # in this test's own state directory

