"""The users of a YAML or JSON users file (``directory.type: file``)."""

from __future__ import annotations

from typing import Any

import yaml

from notifyd.recipients.users import User, schedule_fields, without_schedule

_FILE_FIELDS = {"email", "phone", "webhook_url", "apns_tokens", "fcm_tokens", "opt_out"}


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
