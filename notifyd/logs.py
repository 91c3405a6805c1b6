"""Structured JSON logs on stderr, shared by the supervisor and the channel processes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str, *, redact: Callable[[str], str] | None = None,
                      sample: Callable[..., Any] | None = None, **context: Any) -> None:
    """Send structlog output as one JSON object a line to stderr, each carrying ``context``.

    ``context`` (e.g. ``channel`` and ``member``) is added to every line of the process;
    fields bound on a logger or given in the call win over it. ``redact`` (the config's
    secret redaction) is applied to every rendered line. ``sample`` (a
    ``notifyd.logsampling.LineSampler``) goes first, so a line it leaves out costs
    nothing more; at level debug every line is logged.
    """

    def add_context(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for name, value in context.items():
            event.setdefault(name, value)
        return event

    structlog.configure(
        processors=[
            *([sample] if sample is not None and level.lower() != "debug" else []),
            structlog.contextvars.merge_contextvars,
            add_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
            # Last, over the whole line: a traceback or a library's message can carry a
            # ${VAR} secret that no call site redacted.
            *([lambda _logger, _method, line: redact(line)] if redact else []),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level.lower(), logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


class _ToStructlog(logging.Handler):
    """Hands stdlib log records to structlog, so they come out as JSON like every other line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            structlog.get_logger().log(record.levelno, record.getMessage(), source="librdkafka")
        except Exception:
            self.handleError(record)


def kafka_logger() -> logging.Logger:
    """The logger for librdkafka's own lines (its ``logger`` client setting).

    Without it librdkafka writes ``%3|…|FAIL|…`` lines straight to stderr, the one
    part of the daemon's output that would not be JSON.
    """
    logger = logging.getLogger("notifyd.librdkafka")
    if not logger.handlers:
        logger.addHandler(_ToStructlog())
        logger.propagate = False
        logger.setLevel(logging.DEBUG)  # librdkafka filters by its own log_level / debug settings
    return logger
