"""The frozen settings a validated config file becomes: plain, picklable, shared by every process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from notifyd.redaction import redact

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
class RateLimit:
    """A channel's sending rate across all its processes: a token bucket."""

    per_second: float
    burst: int | None = None  # None: one second's worth, at least 1


@dataclass(frozen=True)
class BreakerPolicy:
    """When a channel's circuit opens, and how it probes the provider while open."""

    consecutive_failures: int = 20
    failure_ratio: float = 0.5
    window: float = 30.0
    min_attempts: int = 20  # attempts within the window before the ratio counts
    probe_interval: float = 5.0


@dataclass(frozen=True)
class RecipientLimit:
    """At most ``max`` notifications to one recipient within ``per`` seconds; the rest are dropped or deferred."""

    max: int
    per: float
    action: str = "drop"


@dataclass(frozen=True)
class Fallback:
    """Where a channel's notifications go while its circuit is open or once its attempts are exhausted.

    Either another ``channel`` (the record is produced to ``topic``, that channel's first
    topic) or a ``handler`` with its ``options``, built in the same process and tried once.
    """

    channel: str | None = None
    topic: str | None = None
    handler: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    recipient: str | None = None  # the user field the inline handler's user_id resolves to


@dataclass(frozen=True)
class KafkaSettings:
    """The broker connection, shared by every channel."""

    bootstrap_servers: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerSettings:
    """Where a channel's delivery ledger lives and its times, in seconds; ``path`` is absolute."""

    type: str = "sqlite"
    path: str | None = None
    dsn: str | None = None
    window: float = 86_400.0
    lease: float = 120.0
    retention: float = 2_592_000.0
    flush_interval: float = 0.05


@dataclass(frozen=True)
class ChannelSettings:
    """Everything one channel process needs; plain and picklable so it crosses ``spawn``."""

    name: str
    topics: tuple[str, ...]
    handler: str
    options: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 3
    backoff: BackoffPolicy = BackoffPolicy()
    # Seconds before each retry; when set, it replaces backoff and retries is its length.
    retry_schedule: tuple[float, ...] | None = None
    delay_topic_prefix: str | None = None  # None: notifyd.<name>.delay (notifyd.config.delays)
    dlq: str | None = None
    timeout: float = 30.0
    concurrency: int = 16
    processes: int = 1
    group_id: str = ""
    memory_limit_mb: int | None = None
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    # Templates by name: {subject, body, html} sources; templates_dir is an absolute path.
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    templates_dir: str | None = None
    # Which user field a user_id resolves to (email, phone, ...); None: the handler's default.
    recipient: str | None = None
    rate_limit: RateLimit | None = None
    circuit_breaker: BreakerPolicy | None = None
    recipient_limit: RecipientLimit | None = None
    # The delivery ledger (notifyd.ledger); None: off, at-least-once without dedupe.
    ledger: LedgerSettings | None = None
    # The topic of its outcome events (schemas/outcome.schema.json); None: none published.
    events: str | None = None
    fallback: Fallback | None = None
    # Hold a notification for a user in their quiet hours until the window ends (docs/scheduling.md).
    respect_quiet_hours: bool = False
    # "strict": while a key has a notification waiting for a retry, later ones of that key wait behind it.
    ordering: str = "default"


@dataclass(frozen=True)
class DirectorySettings:
    """Where users live for notifications addressed by ``user_id``; ``path`` is absolute."""

    type: str = "sqlite"
    path: str | None = None
    dsn: str | None = None
    cache_ttl: float = 30.0
    cache_size: int = 10_000


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
    directory: DirectorySettings | None = None
    # Categories whose notifications ignore opt-outs (security alerts, receipts).
    required_categories: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        """``text`` with every secret that came from the environment hidden (``notifyd.redaction``)."""
        return redact(text, self.secrets)
