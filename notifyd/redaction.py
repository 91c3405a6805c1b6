"""Hiding secret config values in text bound for logs, metrics, DLQ headers and messages.

The rule, in one sentence: a value substituted from the environment is a secret when it
sits under a secret-looking key (one with a word ``password``, ``passwd``, ``secret``,
``token``, ``key``, ``dsn``, ``auth``, ``authorization`` or ``credentials``, or any
``sasl.*`` key) or is eight characters or longer and not a plain number or host address,
and a secret is replaced by ``***`` wherever it occurs as a whole token, never inside a
longer run of letters and digits.

So with ``NOTIFYD_PORT=9464`` in the environment the listen address still logs as
``127.0.0.1:9464`` and offset ``194640`` stays whole, while ``password: ${PW}`` hides even
a four-letter password and ``url: https://hooks.example.com/${HOOK_TOKEN}`` hides the token.
Which values are secret is decided by the config loader (``is_secret``); ``redact`` only
replaces what it is given, so handlers pass their own secrets (tokens, secret URLs) too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "***"
LONG_VALUE = 8
SECRET_WORDS = frozenset({"password", "passwd", "secret", "token", "key", "dsn", "auth", "authorization",
                          "credential", "credentials"})

_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_ADDRESS = r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*(?::\d{1,5})?"
_ADDRESSES = re.compile(rf"{_ADDRESS}(?:,{_ADDRESS})*")
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9]")


def secret_key(key: object) -> bool:
    """Whether a config key looks like it holds a secret (``sasl.password``, ``auth_token``, ``dsn``...)."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered.startswith("sasl.") or any(word in SECRET_WORDS for word in _WORD_SPLIT.split(lowered))


def is_secret(key: object, value: str) -> bool:
    """Whether ``value``, substituted from the environment under ``key``, is a secret by the module's rule."""
    if not value:
        return False
    if secret_key(key):
        return True
    return len(value) >= LONG_VALUE and not _plain(value)


def _plain(value: str) -> bool:
    """A number or a host address list (``host``, ``host:port``, ``a.b.c:9092,d.e.f:9092``)."""
    if _NUMBER.fullmatch(value):
        return True
    return _ADDRESSES.fullmatch(value) is not None and ("." in value or ":" in value)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every whole-token occurrence of each secret replaced by ``***``."""
    if not secrets:
        return text
    # The config's secrets are a frozenset already: every log line passes through here.
    spellings, pattern = _pattern(secrets if isinstance(secrets, frozenset) else frozenset(secrets))
    # Substring tests first: ~10x cheaper than the regex on the usual line, which holds no secret.
    if not any(spelling in text for spelling in spellings):
        return text
    return pattern.sub(MASK, text)


@lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> tuple[tuple[str, ...], re.Pattern[str]]:
    """Every secret in its plain and its JSON-escaped spelling, longest first, and one regex for them all.

    Log lines are redacted after JSON rendering, where a quote, a backslash or a
    non-ASCII character of a secret appears escaped.
    """
    spellings = {spelling for secret in secrets if secret for spelling in (secret, json.dumps(secret)[1:-1])}
    ordered = tuple(sorted(spellings, key=len, reverse=True))
    return ordered, re.compile("|".join(_whole_token(s) for s in ordered) or "(?!)")


def _whole_token(secret: str) -> str:
    before = r"(?<![A-Za-z0-9])" if _TOKEN_CHAR.match(secret[0]) else ""
    after = r"(?![A-Za-z0-9])" if _TOKEN_CHAR.match(secret[-1]) else ""
    return before + re.escape(secret) + after
