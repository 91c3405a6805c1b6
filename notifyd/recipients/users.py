"""One user of the directory, and the users of a YAML/JSON users file.

Every backend gives a user the same fields. ``timezone`` (an IANA name) and ``quiet_hours``
(``"22:00-07:00"``) are top-level fields of a file's user and keys of a database row's
``attributes``: no table changes. A user whose pair cannot be used keeps neither, and says why
in ``schedule_problem``: a typo in one user's zone must not stop that user's notifications, and
``validate-config`` reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from notifyd.recipients.quiethours import quiet_hours_problem

_FILE_FIELDS = {"email", "phone", "webhook_url", "apns_tokens", "fcm_tokens", "opt_out"}
SCHEDULE_FIELDS = ("timezone", "quiet_hours")


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


def users_from_data(data: Any) -> dict[str, User]:
    """Users of a parsed users file; raises ``TypeError`` naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise TypeError("a users file holds a mapping with a 'users' mapping of user id to fields")
    return {str(user_id): _user_from_fields(str(user_id), fields) for user_id, fields in data["users"].items()}


def _user_from_fields(user_id: str, fields: Any) -> User:
    if not isinstance(fields, dict):
        raise TypeError(f"user {user_id!r}: fields must be a mapping")
    for key in ("apns_tokens", "fcm_tokens", "opt_out"):
        if not isinstance(fields.get(key, []), list):
            raise TypeError(f"user {user_id!r}: {key} must be a list")
    return User(
        id=user_id,
        email=fields.get("email"),
        phone=fields.get("phone"),
        webhook_url=fields.get("webhook_url"),
        apns_tokens=tuple(map(str, fields.get("apns_tokens", []))),
        fcm_tokens=tuple(map(str, fields.get("fcm_tokens", []))),
        opt_out=frozenset(map(str, fields.get("opt_out", []))),
        attributes=without_schedule({k: v for k, v in fields.items() if k not in _FILE_FIELDS}),
        **schedule_fields(user_id, fields),
    )


def load_users_file(path: str) -> dict[str, User]:
    """Users of a YAML or JSON file (JSON is read as YAML)."""
    with open(path, encoding="utf-8") as file:
        return users_from_data(yaml.safe_load(file))
