"""The ``twilio`` handler: SMS through the Twilio Messages API."""

from __future__ import annotations

from typing import Any, ClassVar

from notifyd.api import Notification, PermanentError, RetryableError
from notifyd.handlers.answer import HttpAnswer
from notifyd.handlers.http import TIMEOUT_OPTION, HttpHandler, error_for_status, json_or_empty, parse_retry_after

# Twilio error codes that may succeed later although their HTTP status reads as final:
# 20429 "Too Many Requests", 20500 internal error, 20503 service unavailable, and 21611
# (HTTP 400): the sender's queue holds 10 hours of messages already, so send slower.
RETRYABLE_CODES = frozenset({20429, 20500, 20503, 21611})
THROTTLING_CODES = frozenset({20429, 21611})


def twilio_failure(response: HttpAnswer) -> PermanentError | RetryableError:
    """The error for a Twilio error answer (``{"code", "message", "more_info", "status"}``)."""
    body = json_or_empty(response)
    code = body.get("code")
    code = code if isinstance(code, int) else None  # a garbled answer (a list, an object) is decided by its status
    text = body.get("message") or response.reason_phrase
    message = f"Twilio error {code}: {text} (HTTP {response.status_code})" if code else (
        f"Twilio answered HTTP {response.status_code}: {text}"
    )
    if code in RETRYABLE_CODES:
        return RetryableError(message, retry_after=parse_retry_after(response.headers.get("retry-after")),
                              throttled=code in THROTTLING_CODES or response.status_code == 429)
    return error_for_status(response, message)


class TwilioHandler(HttpHandler):
    """Sends the notification's body as an SMS to ``to`` (an E.164 number)."""

    provider = "Twilio"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["account_sid", "auth_token"],
        "anyOf": [{"required": ["from"]}, {"required": ["messaging_service_sid"]}],
        "properties": {
            "account_sid": {"type": "string", "pattern": "^AC", "description": "The account SID (AC...)."},
            "auth_token": {
                "type": "string",
                "minLength": 1,
                "description": "The account's auth token, or the API key's secret when api_key_sid is set. "
                "Use a ${VAR} reference.",
            },
            "api_key_sid": {
                "type": "string",
                "pattern": "^SK",
                "description": "Authenticate with this API key (SK...) instead of the account SID.",
            },
            "from": {"type": "string", "minLength": 1, "description": "Sender: an E.164 number or alphanumeric ID."},
            "messaging_service_sid": {
                "type": "string",
                "pattern": "^MG",
                "description": "Send through this Messaging Service (MG...) instead of a fixed sender.",
            },
            "status_callback": {"type": "string", "description": "URL Twilio calls with delivery status updates."},
            "base_url": {
                "type": "string",
                "default": "https://api.twilio.com",
                "description": "API base URL; changed only to point at a stand-in server.",
            },
            "timeout": TIMEOUT_OPTION,
        },
    }

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        api_key_sid: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10,
        **sender: str,
    ) -> None:
        # "from" is a Python keyword, so it arrives through **sender.
        unknown = set(sender) - {"from"}
        if unknown:
            raise TypeError(f"unexpected options: {', '.join(sorted(unknown))}")
        super().__init__(timeout=timeout, secrets=[auth_token])
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (api_key_sid or account_sid, auth_token)
        self._origin = {"From": sender["from"]} if "from" in sender else {"MessagingServiceSid": messaging_service_sid}
        if status_callback:
            self._origin["StatusCallback"] = status_callback

    def form(self, notification: Notification) -> dict[str, str]:
        """The form fields of the Messages request."""
        if not notification.to:
            raise PermanentError("Twilio: the notification has no recipient phone number ('to')")
        text = notification.body or notification.subject
        if not text:
            raise PermanentError("Twilio: the notification has no body to send")
        return {"To": notification.to, "Body": text, **self._origin}

    async def send(self, notification: Notification) -> str | None:
        response = await self.request("POST", self._url, data=self.form(notification), auth=self._auth)
        if not response.is_success:
            raise twilio_failure(response)
        return response.json_field("sid")  # the message SID, for the ledger and outcome events
