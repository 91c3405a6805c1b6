"""The formats notifyd reads from and writes to Kafka: notification records and DLQ headers.

Shared by the channel process and the operator tools. May import only ``notifyd.api`` and
``notifyd.schemas``.
"""
