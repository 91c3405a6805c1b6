"""A provider's HTTP answer, read in full and free of the client that fetched it."""

from __future__ import annotations

import email.message
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


class Headers(Mapping[str, str]):
    """Answer headers, looked up by any spelling of their name; repeated ones are joined by ", "."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        joined: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._values = joined

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


def standard_phrase(status: int) -> str:
    """The RFC 9110 reason phrase of ``status``; empty for a code it does not define."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@dataclass(frozen=True)
class HttpAnswer:
    """Status, headers and the whole body of one answer, whichever client fetched it."""

    status_code: int
    reason_phrase: str
    headers: Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body decoded by its declared charset (UTF-8 when none or unknown), never raising."""
        declared = email.message.Message()
        declared["content-type"] = self.headers.get("content-type", "")
        charset = declared.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is not JSON."""
        return json.loads(self.content)

    def json_field(self, name: str) -> str | None:
        """A string field of a JSON object body (a provider's message id), or None; never raising."""
        try:
            value = self.json().get(name)
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None
