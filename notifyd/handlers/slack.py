"""The ``slack`` handler: a message through a Slack incoming webhook."""

from __future__ import annotations

from typing import Any, ClassVar

from notifyd.api import Notification, PermanentError
from notifyd.handlers.http import TIMEOUT_OPTION, HttpHandler

# Slack's limits: a header block's text is at most 150 characters, a section's 3000.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000


def message(notification: Notification, *, blocks: bool) -> dict[str, Any]:
    """The webhook payload: ``text`` (also the notification fallback) and, optionally, blocks."""
    subject, body = notification.subject, notification.body
    if not subject and not body:
        raise PermanentError("Slack: the notification has neither subject nor body")
    text = "\n".join(part for part in (f"*{subject}*" if subject else None, body) if part)
    if not blocks:
        return {"text": text}
    parts: list[dict[str, Any]] = []
    if subject:
        parts.append({"type": "header", "text": {"type": "plain_text", "text": subject[:HEADER_LIMIT]}})
    if body:
        parts.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:SECTION_LIMIT]}})
    return {"text": text, "blocks": parts}


class SlackHandler(HttpHandler):
    """Posts the subject and body to the channel an incoming webhook URL belongs to."""

    provider = "Slack"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["webhook_url"],
        "properties": {
            "webhook_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The incoming webhook URL; it is a secret, so use a ${VAR} reference.",
            },
            "blocks": {
                "type": "boolean",
                "default": True,
                "description": "Lay the message out as a header and a section block (else plain text).",
            },
            "timeout": TIMEOUT_OPTION,
        },
    }

    def __init__(self, *, webhook_url: str, blocks: bool = True, timeout: float = 10) -> None:
        super().__init__(timeout=timeout, secrets=[webhook_url])
        self._url = webhook_url
        self._blocks = blocks

    async def send(self, notification: Notification) -> None:
        response = await self.request("POST", self._url, json=message(notification, blocks=self._blocks))
        if not response.is_success:
            # Slack answers errors as one plain word: invalid_payload, no_service, channel_not_found...
            raise self.refusal(response, "Slack")
