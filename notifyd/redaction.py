"""Hiding secret config values in text bound for logs, metrics and DLQ headers."""

from __future__ import annotations


def redact(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:  # very short values (ports, flags) are not secrets worth hiding
            text = text.replace(secret, "***")
    return text
