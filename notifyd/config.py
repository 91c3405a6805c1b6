"""The config file: loading, validation and the frozen settings the processes run with.

``validate-config``, ``run`` and a reload on SIGHUP all go through ``check_config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from notifyd import envvars, validation, yamlsource
from notifyd.findings import ConfigError, Finding, dotted

DEFAULT_CONFIG_PATH = "/etc/notifyd/notifyd.yaml"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff between delivery attempts, in seconds."""

    initial: float = 1.0
    max: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True


@dataclass(frozen=True)
class KafkaSettings:
    """The broker connection, shared by every channel."""

    bootstrap_servers: str
    config: Mapping[str, Any] = field(default_factory=dict)

    def client_config(self, *layers: Mapping[str, Any]) -> dict[str, Any]:
        """librdkafka settings: bootstrap servers, ``kafka.config``, then each layer over it."""
        settings: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, **self.config}
        for layer in layers:
            settings.update(layer)
        return settings


@dataclass(frozen=True)
class ChannelSettings:
    """Everything one channel process needs; plain and picklable so it crosses ``spawn``."""

    name: str
    topics: tuple[str, ...]
    handler: str
    options: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 3
    backoff: BackoffPolicy = BackoffPolicy()
    dlq: str | None = None
    timeout: float = 30.0
    concurrency: int = 16
    processes: int = 1
    group_id: str = ""
    memory_limit_mb: int | None = None
    consumer_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A validated config file."""

    path: str
    kafka: KafkaSettings
    channels: Mapping[str, ChannelSettings]
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    metrics_enabled: bool = True
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    allowed_handler_modules: tuple[str, ...] | None = None
    secrets: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        """``text`` with every value that came from the environment hidden."""
        return envvars.redact(text, set(self.secrets))


def check_config(path: str, environ: Mapping[str, str] | None = None) -> tuple[Config | None, list[Finding]]:
    """Load and validate ``path``; returns the config (None if invalid) and every finding.

    Raises ``OSError`` if the file cannot be read.
    """
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return check_text(text, path, os.environ if environ is None else environ)


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` or raise ``ConfigError`` listing every problem."""
    config, findings = check_config(path, environ)
    if config is None:
        raise ConfigError(findings)
    return config


def check_text(text: str, path: str, environ: Mapping[str, str]) -> tuple[Config | None, list[Finding]]:
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

    for key_path, message, at_key in validation.all_problems(substitution.data):
        line, column = positions.of_key(key_path) if at_key else positions.of_value(key_path)
        message = envvars.redact(message, substitution.secrets)
        findings.append(Finding(path, line, column, dotted(key_path), message))

    if findings:
        return None, sorted(set(findings))
    return build_config(substitution.data, path, frozenset(substitution.secrets)), []


def build_config(data: dict[str, Any], path: str, secrets: frozenset[str] = frozenset()) -> Config:
    """Frozen settings from data that passed every check, defaults filled in."""
    kafka = data["kafka"]
    metrics = data.get("metrics", {})
    allowed = data.get("allowed_handler_modules")
    return Config(
        path=path,
        kafka=KafkaSettings(kafka["bootstrap_servers"], dict(kafka.get("config", {}))),
        channels={name: _channel(name, raw) for name, raw in data["channels"].items()},
        metrics_listen=metrics.get("listen", DEFAULT_METRICS_LISTEN),
        metrics_enabled=metrics.get("enabled", True),
        log_level=data.get("logging", {}).get("level", "info"),
        shutdown_timeout=float(data.get("shutdown_timeout", 30.0)),
        allowed_handler_modules=tuple(allowed) if allowed is not None else None,
        secrets=secrets,
    )


def _channel(name: str, raw: dict[str, Any]) -> ChannelSettings:
    return ChannelSettings(
        name=name,
        topics=tuple(raw["topics"]),
        handler=raw["handler"],
        options=raw.get("options", {}),
        retries=raw.get("retries", 3),
        backoff=BackoffPolicy(**raw.get("backoff", {})),
        dlq=raw.get("dlq"),
        timeout=float(raw.get("timeout", 30.0)),
        concurrency=raw.get("concurrency", 16),
        processes=raw.get("processes", 1),
        group_id=raw.get("group_id", f"notifyd.{name}"),
        memory_limit_mb=raw.get("memory_limit_mb"),
        consumer_config=raw.get("consumer_config", {}),
    )
