"""Checks of a parsed config: its JSON Schema, then what a schema cannot express."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema

from notifyd.config.clientconfig import client_config_problems
from notifyd.config.delaychecks import delay_problems, delay_topics_of, group_of, prefix_problem
from notifyd.config.fallbacks import fallback_problems
from notifyd.config.findings import Path, Problem
from notifyd.config.statedir import channel_uses_ledger, ledger_place_problems
from notifyd.handlers import BUILTIN_HANDLERS, HandlerImportError, resolve_handler
from notifyd.recipients import directory, templates
from notifyd.schemas import validator


def all_problems(data: Any, *, base_dir: str = ".", environ: Mapping[str, str] | None = None,
                 writes_state: bool = True) -> list[Problem]:
    """Schema violations, plus the semantic problems of every part the schema accepted.

    ``base_dir`` is where relative paths in the file (templates_dir, directory.path) start;
    ``environ`` (default ``os.environ``) picks the default state directory, which must be
    writable when ``writes_state``.
    """
    problems = list(schema_problems(data)) + list(_non_finite_problems(data, ()))
    if not isinstance(data, dict) or not isinstance(data.get("channels"), dict):
        return problems
    broken_channels = {p[1] for p, _, _ in problems if len(p) > 1 and p[0] == "channels"}
    sound = {name: c for name, c in data["channels"].items() if name not in broken_channels}
    allowed_is_sound = not any(p[:1] == ("allowed_handler_modules",) for p, _, _ in problems)
    allowed = data.get("allowed_handler_modules") if allowed_is_sound else None
    problems += semantic_problems(sound, allowed, base_dir=base_dir)
    if not any(p[:1] in (("ledger",), ("state_dir",)) for p, _, _ in problems):
        problems += _ledger_problems(data, sound)
        if writes_state:
            environ = os.environ if environ is None else environ
            problems += [(path, message, False) for path, message in ledger_place_problems(
                data, base_dir=base_dir, environ=environ)]
    problems += [(path, message, False) for path, message in fallback_problems(sound, data["channels"])]
    if not any(p[:2] == ("kafka", "config") or p[-1:] == ("consumer_config",) for p, _, _ in problems):
        problems += client_config_problems({**data, "channels": sound})
    if isinstance(data.get("directory"), dict) and not any(p[:1] == ("directory",) for p, _, _ in problems):
        problems += _directory_problems(data["directory"], base_dir)
    elif "directory" not in data:
        problems += _quiet_hours_problems(sound)
    return problems


def _non_finite_problems(data: Any, path: Path) -> Iterator[Problem]:
    """YAML's .nan and .inf: JSON Schema's bounds compare false with NaN, and no setting means either."""
    if isinstance(data, float) and not math.isfinite(data):
        yield path, f"{data!r} is not a finite number", False
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _non_finite_problems(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _non_finite_problems(value, (*path, index))


def schema_problems(data: Any) -> Iterator[Problem]:
    """Every violation of ``schemas/notifyd.schema.json``, unknown keys one by one."""
    yield from _schema_errors(validator("notifyd"), data, ())


def _schema_errors(schema_validator: jsonschema.protocols.Validator, data: Any, base: Path) -> Iterator[Problem]:
    errors = sorted(schema_validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        yield from _explain(error, base)


def _explain(error: jsonschema.ValidationError, base: Path) -> Iterator[Problem]:
    path = base + tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in known:
                yield path + (key,), _unknown_key_message(key, known), True
        return
    if error.validator == "propertyNames":
        yield path + (error.instance,), f"invalid name {error.instance!r}: {error.message}", True
        return
    if error.validator == "anyOf" and "x-pattern-hint" in error.schema:
        yield path, f"{error.instance!r} is not {error.schema['x-pattern-hint']}", False
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        yield from _explain(deepest, base)
        return
    if error.validator == "pattern" and "x-pattern-hint" in error.schema:
        yield path, f"{error.instance!r} is not {error.schema['x-pattern-hint']}", False
        return
    yield path, error.message, False


def _unknown_key_message(key: str, known: list[str]) -> str:
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    if known:
        return f"{message} (allowed: {', '.join(sorted(known))})"
    return message


def semantic_problems(
    channels: dict[str, dict[str, Any]], allowed: list[str] | None, *, base_dir: str = "."
) -> Iterator[Problem]:
    """Problems a schema cannot express, over channels that passed the schema."""
    yield from _backoff_problems(channels)
    yield from _topic_problems(channels)
    yield from _colliding_topic_names(channels)
    yield from _group_problems(channels)
    yield from delay_problems(channels)
    for name, channel in channels.items():
        yield from _handler_problems(("channels", name), channel, allowed)
        if isinstance(channel.get("fallback"), dict):  # an inline handler: checked as the channel's own
            yield from _handler_problems(("channels", name, "fallback"), channel["fallback"], allowed)
        yield from _template_problems(name, channel, base_dir)


def _template_problems(name: str, channel: dict[str, Any], base_dir: str) -> Iterator[Problem]:
    for template, parts in channel.get("templates", {}).items():
        for part, message in templates.syntax_problems(parts):
            yield ("channels", name, "templates", template, part), message, False
    if "templates_dir" in channel:
        folder = os.path.join(base_dir, channel["templates_dir"])
        for where, message in templates.directory_problems(folder):
            prefix = "" if where == folder else f"{where}: "
            yield ("channels", name, "templates_dir"), prefix + message, False


def _directory_problems(settings: dict[str, Any], base_dir: str) -> list[Problem]:
    return [(("directory", *key), message, False) for key, message in directory.settings_problems(settings, base_dir)]


def _quiet_hours_problems(channels: dict[str, dict[str, Any]]) -> list[Problem]:
    """Without a directory no user has quiet hours: the key would silently do nothing."""
    message = "needs a directory: users' timezone and quiet_hours live there (docs/scheduling.md)"
    return [(("channels", name, "respect_quiet_hours"), message, False)
            for name, channel in channels.items() if channel.get("respect_quiet_hours")]


def _ledger_problems(data: dict[str, Any], channels: dict[str, dict[str, Any]]) -> list[Problem]:
    """A claim must outlive an attempt, or a slow send would lose it to another process."""
    ledger = data.get("ledger")
    lease = ledger.get("lease", 120.0) if isinstance(ledger, dict) else 120.0
    message = ("timeout ({}) must be less than the ledger's lease ({}); "
               "raise ledger.lease, or set ledger: off on this channel")
    return [(("channels", name, "timeout"), message.format(channel.get("timeout", 30.0), lease), False)
            for name, channel in channels.items()
            if channel_uses_ledger(channel, data) and channel.get("timeout", 30.0) >= lease] + _ordering_problems(
        data, channels)


def _ordering_problems(data: dict[str, Any], channels: dict[str, dict[str, Any]]) -> list[Problem]:
    """Strict order keeps each key's queue in the ledger's storage: without one it could not hold across restarts."""
    message = "ordering: strict needs the delivery ledger (its per-key queues live there); remove ledger: off"
    return [(("channels", name, "ordering"), message, False) for name, channel in channels.items()
            if channel.get("ordering") == "strict" and not channel_uses_ledger(channel, data)]


def _backoff_problems(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, channel in channels.items():
        for key in ("retries", "backoff"):
            if key in channel and "retry_schedule" in channel:
                message = f"{key} and retry_schedule exclude each other: the schedule sets the delay of every retry"
                yield ("channels", name, key), message, True
        backoff = channel.get("backoff", {})
        initial, maximum = backoff.get("initial", 1.0), backoff.get("max", 60.0)
        if maximum < initial:
            yield ("channels", name, "backoff", "max"), f"max ({maximum}) is less than initial ({initial})", False


def _colliding_topic_names(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    """Two topic names that differ only in '.' and '_': Kafka's metric names do not tell them apart,
    so it refuses to create the second (``topics ensure``, or the delay topics at a channel's start)."""
    first_of: dict[str, str] = {}
    reported: set[tuple[str, tuple[Any, ...] | None]] = set()  # a channel's delay topics collide together
    for name, channel in channels.items():
        for topic, place in _topics_named_by(name, channel):
            other = first_of.setdefault(topic.replace(".", "_"), topic)
            if other == topic or (name, place) in reported:
                continue
            reported.add((name, place))
            message = f"topic {topic!r} and topic {other!r} differ only in '.' and '_', which Kafka refuses: " \
                      "it cannot create both"
            yield prefix_problem(name, channel, message) if place is None else (place, message, False)


def _topics_named_by(name: str, channel: dict[str, Any]) -> Iterator[tuple[str, tuple[Any, ...] | None]]:
    """Each topic a channel names or makes, and the key that names it (None: a delay topic)."""
    for index, topic in enumerate(channel["topics"]):
        yield topic, ("channels", name, "topics", index)
    for key in ("dlq", "events"):
        if channel.get(key):
            yield channel[key], ("channels", name, key)
    for topic in delay_topics_of(name, channel):
        yield topic, None


def _topic_problems(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    consumer_of: dict[str, str] = {}
    for name, channel in channels.items():
        for index, topic in enumerate(channel["topics"]):
            if topic in consumer_of:
                message = f"topic {topic!r} is already consumed by channel {consumer_of[topic]!r}"
                yield ("channels", name, "topics", index), message, False
            else:
                consumer_of[topic] = name
    for name, channel in channels.items():
        for topic in delay_topics_of(name, channel):
            if topic in consumer_of:
                message = f"delay topic {topic!r} of this channel is consumed by channel {consumer_of[topic]!r}"
                yield prefix_problem(name, channel, message)
    for name, channel in channels.items():
        dlq = channel.get("dlq")
        if dlq and dlq in consumer_of:
            message = f"DLQ topic {dlq!r} is consumed by channel {consumer_of[dlq]!r}; it would loop"
            yield ("channels", name, "dlq"), message, False
        events = channel.get("events")
        if events and events in consumer_of:
            message = (f"events topic {events!r} is consumed by channel {consumer_of[events]!r}; "
                       "its records are not notifications")
            yield ("channels", name, "events"), message, False


def _group_problems(channels: dict[str, dict[str, Any]]) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    for name, channel in channels.items():
        group = group_of(name, channel)
        if group in owner:
            message = f"consumer group {group!r} is also used by channel {owner[group]!r}"
            yield ("channels", name, "group_id"), message, False
        else:
            owner[group] = name


def _handler_problems(base: Path, channel: dict[str, Any], allowed: list[str] | None) -> Iterator[Problem]:
    """Problems of the handler named at ``base`` (a channel, or its inline fallback) and of its options."""
    reference = channel["handler"]
    path: Path = (*base, "handler")
    if allowed is not None and reference not in BUILTIN_HANDLERS:
        module = reference.partition(":")[0]
        if not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
            yield path, f"handler module {module!r} is not in allowed_handler_modules", False
            return
    try:
        handler_class = resolve_handler(reference)
    except HandlerImportError as exc:
        yield path, str(exc), False
        return
    options_validator_class = jsonschema.validators.validator_for(handler_class.options_schema)
    options_validator = options_validator_class(handler_class.options_schema)
    options = channel.get("options", {})
    yield from _schema_errors(options_validator, options, (*base, "options"))
    check = getattr(handler_class, "check_options", None)
    if check is not None and options_validator.is_valid(options):
        for option_path, message in check(options, channel=channel):
            yield (*base, "options", *option_path), message, False
