"""One user of the directory, and the error of a directory that cannot be read.

Every backend gives a user the same fields. ``timezone`` (an IANA name) and ``quiet_hours``
(``"22:00-07:00"``) are top-level fields of a file's user and keys of a database row's
``attributes``: no table changes. A user whose pair cannot be used keeps neither, and says why
in ``schedule_problem``: a typo in one user's zone must not stop that user's notifications, and
``validate-config`` reports it.

Apart from ``directory`` (and ``usersfile``) so that the channel process imports neither
sqlite3, YAML nor the cache unless its config has a directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from notifyd.recipients.quiethours import quiet_hours_problem

SCHEDULE_FIELDS = ("timezone", "quiet_hours")


class DirectoryUnavailable(Exception):
    """The directory could not be read (a database down, a file missing): try again later."""


@dataclass(frozen=True)
class User:
    """One user's addresses, the channels they opted out of, and their quiet hours."""

    id: str
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    apns_tokens: tuple[str, ...] = ()
    fcm_tokens: tuple[str, ...] = ()
    opt_out: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict, hash=False)
    timezone: str | None = None
    quiet_hours: str | None = None
    schedule_problem: str | None = None

    def address(self, recipient: str) -> str | None:
        """The address for a channel's ``recipient`` kind; push goes to the newest token."""
        if recipient in ("apns_token", "fcm_token"):
            tokens = self.apns_tokens if recipient == "apns_token" else self.fcm_tokens
            return tokens[0] if tokens else None
        return getattr(self, recipient)

    def context(self) -> dict[str, Any]:
        """What templates see as ``user``."""
        return {**self.attributes, "id": self.id, "email": self.email, "phone": self.phone,
                "timezone": self.timezone}


def schedule_fields(user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``User`` keyword arguments of a user's ``timezone`` and ``quiet_hours`` fields."""
    timezone, window = fields.get("timezone"), fields.get("quiet_hours")
    problem = quiet_hours_problem(window, timezone)
    if problem is not None:
        return {"schedule_problem": f"user {user_id!r}: {problem}"}
    return {"timezone": timezone, "quiet_hours": window}


def without_schedule(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` less the schedule fields, which the ``User`` holds checked."""
    return {k: v for k, v in attributes.items() if k not in SCHEDULE_FIELDS}
