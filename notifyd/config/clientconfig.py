"""The librdkafka settings of the file (``kafka.config``, ``consumer_config``), checked by librdkafka itself.

A misspelt property or a value librdkafka refuses used to pass ``validate-config`` and a
reload, and then crash every channel process as it built its consumer. librdkafka
knows its own properties best: each distinct set is handed to a consumer that is built
and closed at once, with no ``bootstrap.servers``, so nothing connects anywhere. Files
named by ``*.location`` settings are left out: they may exist only on the daemon's host,
not where a CI job validates the file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from notifyd.config.findings import Path, Problem

# Left out of the check: where the daemon runs decides these, not the file.
UNCHECKED = ("bootstrap.servers",)
UNCHECKED_SUFFIX = ".location"
_PROPERTY = re.compile(r'property:? "([^"]+)"')


def client_config_problems(data: Mapping[str, Any]) -> list[Problem]:
    """What librdkafka refuses of ``kafka.config``, then of each channel's ``consumer_config`` over it."""
    kafka = data.get("kafka")
    shared = kafka.get("config", {}) if isinstance(kafka, dict) else {}
    refused = refusal(shared)
    if refused is not None:
        return [_placed(("kafka", "config"), shared, refused)]
    channels = data.get("channels", {})
    return [_placed(("channels", name, "consumer_config"), channel["consumer_config"], refused)
            for name, channel in channels.items()
            if isinstance(channel, dict) and isinstance(channel.get("consumer_config"), dict)
            and (refused := refusal({**shared, **channel["consumer_config"]})) is not None]


def refusal(settings: Mapping[str, Any]) -> str | None:
    """librdkafka's reason to refuse ``settings`` for a consumer; None if it takes them.

    Nothing to check, nothing loaded: librdkafka in the supervisor (which validates at start
    and at each reload) costs it ~6 MiB of RSS, paid only by a file that sets client settings.
    """
    checked = {key: value for key, value in settings.items()
               if key not in UNCHECKED and not key.endswith(UNCHECKED_SUFFIX)}
    if not checked:
        return None
    from confluent_kafka import Consumer, KafkaException

    try:
        Consumer({"group.id": "notifyd-validate-config", **checked, "logger": _quiet_logger()}).close()
    except KafkaException as exc:
        return exc.args[0].str()
    except (TypeError, ValueError) as exc:  # confluent-kafka's own keys (callbacks) with a plain value
        return str(exc)
    return None


def _placed(base: Path, settings: Mapping[str, Any], reason: str) -> Problem:
    """The problem at the property librdkafka names when it is one of ``settings``, else at ``base``."""
    named = _PROPERTY.search(reason)
    if named is None or named.group(1) not in settings:
        return base, reason, False
    key = named.group(1)
    return (*base, key), reason, reason.startswith("No such configuration property")


def _quiet_logger() -> logging.Logger:
    """A logger for the throwaway consumer: its warnings (no bootstrap.servers) are not the file's problems."""
    logger = logging.getLogger("notifyd.validate.librdkafka")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger
