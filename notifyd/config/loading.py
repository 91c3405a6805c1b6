"""Loading a config file: YAML, ``${VAR}`` substitution, every check, then the frozen settings.

``validate-config``, ``run`` and a reload on SIGHUP all go through ``check_config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from notifyd.config import envvars, validation, yamlsource
from notifyd.config.delays import DEFAULT_RETRY_SCHEDULE, default_group
from notifyd.config.durations import parse_duration
from notifyd.config.findings import ConfigError, Finding, dotted
from notifyd.config.settings import (
    DEFAULT_METRICS_LISTEN,
    BackoffPolicy,
    BreakerPolicy,
    ChannelSettings,
    Config,
    DirectorySettings,
    Fallback,
    KafkaSettings,
    LedgerSettings,
    RateLimit,
    RecipientLimit,
)
from notifyd.config.statedir import channel_uses_ledger, ledger_section, sqlite_ledger_file
from notifyd.redaction import redact


def check_config(path: str, environ: Mapping[str, str] | None = None, *,
                 writes_state: bool = True) -> tuple[Config | None, list[Finding]]:
    """Load and validate ``path``; returns the config (None if invalid) and every finding.

    ``writes_state``: the caller runs channels, so the ledger's directory must be writable;
    a tool that only publishes or reads (``send``, ``trace``) passes False.
    Raises ``OSError`` if the file cannot be read.
    """
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return check_text(text, path, os.environ if environ is None else environ, writes_state=writes_state)


def load_config(path: str, environ: Mapping[str, str] | None = None, *, writes_state: bool = True) -> Config:
    """Load ``path`` or raise ``ConfigError`` listing every problem."""
    config, findings = check_config(path, environ, writes_state=writes_state)
    if config is None:
        raise ConfigError(findings)
    return config


def check_text(text: str, path: str, environ: Mapping[str, str], *,
               writes_state: bool = True) -> tuple[Config | None, list[Finding]]:
    """``check_config`` for text already read."""
    try:
        data, positions, duplicates = yamlsource.parse(text)
    except yamlsource.YamlProblem as problem:
        return None, [Finding(path, problem.line, problem.column, dotted(problem.path), problem.message)]
    findings = [Finding(path, d.line, d.column, dotted(d.path), d.message) for d in duplicates]
    if not isinstance(data, dict):
        return None, findings + [Finding(path, 1, 1, "(root)", "the file must hold a mapping of settings")]

    substitution = envvars.substitute(data, environ, plain_scalars=positions.plain_scalars)
    for key_path, message in substitution.errors:
        findings.append(Finding(path, *positions.of_value(key_path), dotted(key_path), message))

    problems = validation.all_problems(substitution.data, base_dir=_base_dir(path), environ=environ,
                                       writes_state=writes_state)
    for key_path, message, at_key in problems:
        line, column = positions.of_key(key_path) if at_key else positions.of_value(key_path)
        message = redact(message, substitution.secrets)
        findings.append(Finding(path, line, column, dotted(key_path), message))

    if findings:
        return None, sorted(set(findings))
    return build_config(substitution.data, path, frozenset(substitution.secrets), environ=environ), []


def build_config(data: dict[str, Any], path: str, secrets: frozenset[str] = frozenset(), *,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Frozen settings from data that passed every check, defaults filled in.

    ``environ`` (default ``os.environ``) picks the default state directory (``notifyd.config.statedir``).
    """
    kafka = data["kafka"]
    metrics = data.get("metrics", {})
    allowed = data.get("allowed_handler_modules")
    base = _base_dir(path)
    ledger = _ledger(data, base_dir=base, environ=os.environ if environ is None else environ)
    return Config(
        path=path,
        kafka=KafkaSettings(kafka["bootstrap_servers"], dict(kafka.get("config", {}))),
        channels={name: _channel(name, raw, base_dir=base, ledger=ledger if channel_uses_ledger(raw, data) else None,
                                 all_channels=data["channels"])
                  for name, raw in data["channels"].items()},
        metrics_listen=metrics.get("listen", DEFAULT_METRICS_LISTEN),
        metrics_enabled=metrics.get("enabled", True),
        log_level=data.get("logging", {}).get("level", "info"),
        shutdown_timeout=float(data.get("shutdown_timeout", 30.0)),
        allowed_handler_modules=tuple(allowed) if allowed is not None else None,
        secrets=secrets,
        directory=_directory(data.get("directory"), base_dir=base),
        required_categories=frozenset(name for name, c in data.get("categories", {}).items() if c.get("required")),
    )


def _channel(name: str, raw: dict[str, Any], *, base_dir: str, ledger: LedgerSettings | None,
             all_channels: dict[str, Any]) -> ChannelSettings:
    return ChannelSettings(
        name=name,
        topics=tuple(raw["topics"]),
        handler=raw["handler"],
        options=raw.get("options", {}),
        **_retry_policy(raw),
        dlq=raw.get("dlq"),
        timeout=float(raw.get("timeout", 30.0)),
        concurrency=raw.get("concurrency", 16),
        processes=raw.get("processes", 1),
        group_id=raw.get("group_id", default_group(name)),
        memory_limit_mb=raw.get("memory_limit_mb"),
        consumer_config=raw.get("consumer_config", {}),
        templates=raw.get("templates", {}),
        templates_dir=os.path.join(base_dir, raw["templates_dir"]) if "templates_dir" in raw else None,
        recipient=raw.get("recipient"),
        rate_limit=RateLimit(**raw["rate_limit"]) if "rate_limit" in raw else None,
        circuit_breaker=BreakerPolicy(**raw["circuit_breaker"]) if "circuit_breaker" in raw else None,
        recipient_limit=_recipient_limit(raw.get("recipient_limit")),
        ledger=ledger,
        events=raw.get("events"),
        fallback=_fallback(raw.get("fallback"), all_channels),
        delay_topic_prefix=raw.get("delay_topic_prefix"),
        respect_quiet_hours=raw.get("respect_quiet_hours", False),
        ordering=raw.get("ordering", "default"),
    )


def _fallback(raw: str | dict[str, Any] | None, channels: dict[str, Any]) -> Fallback | None:
    """A fallback channel by name (with its first topic), or an inline handler with its options."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return Fallback(channel=raw, topic=channels[raw]["topics"][0])
    return Fallback(handler=raw["handler"], options=raw.get("options", {}), recipient=raw.get("recipient"))


def _recipient_limit(raw: dict[str, Any] | None) -> RecipientLimit | None:
    if raw is None:
        return None
    return RecipientLimit(max=raw["max"], per=parse_duration(raw["per"]), action=raw.get("action", "drop"))


def _retry_policy(raw: dict[str, Any]) -> dict[str, Any]:
    """retries, backoff and retry_schedule: an explicit schedule, today's backoff keys, or the default schedule."""
    backoff = BackoffPolicy(**raw.get("backoff", {}))
    if "retry_schedule" in raw:
        schedule = tuple(parse_duration(step) for step in raw["retry_schedule"])
    elif "retries" in raw or "backoff" in raw:
        return {"retries": raw.get("retries", 3), "backoff": backoff, "retry_schedule": None}
    else:
        schedule = DEFAULT_RETRY_SCHEDULE
    return {"retries": len(schedule), "backoff": backoff, "retry_schedule": schedule}


def _directory(raw: dict[str, Any] | None, *, base_dir: str) -> DirectorySettings | None:
    if raw is None:
        return None
    path = raw.get("path")
    return DirectorySettings(
        type=raw.get("type", "sqlite"),
        path=os.path.join(base_dir, path) if path is not None else None,
        dsn=raw.get("dsn"),
        cache_ttl=float(raw.get("cache_ttl", 30.0)),
        cache_size=raw.get("cache_size", 10_000),
    )


def _ledger(data: dict[str, Any], *, base_dir: str, environ: Mapping[str, str]) -> LedgerSettings | None:
    """The ledger's settings (None when no channel uses it), its SQLite file's path absolute."""
    if not any(channel_uses_ledger(raw, data) for raw in data["channels"].values()):
        return None
    raw = ledger_section(data)
    kind = raw.get("type", "sqlite")
    path = sqlite_ledger_file(data, base_dir=base_dir, environ=environ) if kind == "sqlite" else None
    times = {key: float(raw[key]) for key in ("window", "lease", "retention", "flush_interval") if key in raw}
    return LedgerSettings(type=kind, path=path, dsn=raw.get("dsn"), **times)


def _base_dir(config_path: str) -> str:
    """Relative paths in the file (templates_dir, directory.path) are relative to the file's directory."""
    return os.path.dirname(os.path.abspath(config_path))
