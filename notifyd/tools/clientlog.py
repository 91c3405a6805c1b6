"""What an operator tool's Kafka clients log: kept for the tool's own error, not printed.

Left to itself, librdkafka writes a ``%3|…|FAIL|…`` line to stderr at every failed
connection attempt, retrying from 100 ms apart: ``notifyd send --timeout 3`` against a
stopped broker printed about 60 of them before its own one-line error, and ``notifyd
status`` during an outage as many. A tool's clients log here instead, and the last error
line ends the tool's message about an unreachable broker: it says why (connection refused,
a name that does not resolve, a TLS handshake that failed).
"""

from __future__ import annotations

import logging

LOGGER_NAME = "notifyd.tools.librdkafka"


class _LastError(logging.Handler):
    """Keeps the text of the last error line."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.text = record.getMessage()


def client_logger() -> logging.Logger:
    """The ``logger`` client setting of a tool's Kafka clients."""
    logger = logging.getLogger(LOGGER_NAME)
    if not _keepers(logger):
        logger.addHandler(_LastError())
        logger.propagate = False
        logger.setLevel(logging.ERROR)  # warnings and below are not worth a record here
    return logger


def last_error() -> str | None:
    """The text of the clients' last error line, without librdkafka's prefix; None if there was none.

    A line reads ``FAIL [rdkafka#producer-1] [thrd:host:9092/bootstrap]: host:9092/bootstrap:
    Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)``;
    what follows the thread's tag is kept.
    """
    for handler in _keepers(logging.getLogger(LOGGER_NAME)):
        if handler.text:
            return handler.text.split("]: ", 1)[-1]
    return None


def forget() -> None:
    """Drop the last error line (a tool run in process, as the tests run them, starts afresh)."""
    for handler in _keepers(logging.getLogger(LOGGER_NAME)):
        handler.text = None


def _keepers(logger: logging.Logger) -> list[_LastError]:
    return [handler for handler in logger.handlers if isinstance(handler, _LastError)]
