"""The pure side of ``notifyd status``: member rows and partition lag."""

from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConsumerGroupDescription, MemberAssignment, MemberDescription

from notifyd.commands.status import member_rows, partition_lag


def test_member_rows_list_each_member_and_its_partitions():
    assignment = MemberAssignment([TopicPartition("t", 1), TopicPartition("t", 0)])
    member = MemberDescription("m-1", "notifyd-audit-0", "/10.0.0.5", assignment)
    description = ConsumerGroupDescription("g", False, [member], "range", "STABLE", None)
    assert member_rows(description) == [
        {"client_id": "notifyd-audit-0", "host": "/10.0.0.5", "member_id": "m-1", "assignment": ["t[0]", "t[1]"]}]


def test_partition_lag_is_pure():
    assert partition_lag("t", 0, None, start=5, end=9).lag == 4
    assert partition_lag("t", 0, 7, start=5, end=9).lag == 2
    assert partition_lag("t", 0, 2, start=5, end=9).lag == 4   # committed below the log start: retention ate it
    assert partition_lag("t", 0, 12, start=5, end=9).lag == 0  # the high watermark may lag behind a commit
