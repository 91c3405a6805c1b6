"""A user as the directory returns it, and the error of a directory that cannot be read.

Apart from ``directory`` so that the channel process imports neither sqlite3, YAML nor the
cache unless its config has a directory (``preparation`` imports that module only then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DirectoryUnavailable(Exception):
    """The directory could not be read (a database down, a file missing): try again later."""


@dataclass(frozen=True)
class User:
    """One user's addresses and the channels they opted out of."""

    id: str
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    apns_tokens: tuple[str, ...] = ()
    fcm_tokens: tuple[str, ...] = ()
    opt_out: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def address(self, recipient: str) -> str | None:
        """The address for a channel's ``recipient`` kind; push goes to the newest token."""
        if recipient in ("apns_token", "fcm_token"):
            tokens = self.apns_tokens if recipient == "apns_token" else self.fcm_tokens
            return tokens[0] if tokens else None
        return getattr(self, recipient)

    def context(self) -> dict[str, Any]:
        """What templates see as ``user``."""
        return {**self.attributes, "id": self.id, "email": self.email, "phone": self.phone}
