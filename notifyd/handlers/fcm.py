"""The ``fcm`` handler: Android push through the FCM HTTP v1 API with service-account OAuth2."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from notifyd.api import Notification, OptionProblem, PermanentError, RetryableError
from notifyd.handlers.answer import HttpAnswer
from notifyd.handlers.http import TIMEOUT_OPTION, HttpHandler, error_for_status, json_or_empty, parse_retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# FCM's own error codes decide where its HTTP status alone would not (e.g. a 404 UNREGISTERED).
PERMANENT_CODES = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"})
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "QUOTA_EXCEEDED", "INTERNAL"})


def load_service_account(*, file: str | None, text: str | None) -> dict[str, Any]:
    """The service-account JSON from a file or a string; ``ValueError`` if unusable."""
    raw = Path(str(file)).read_text() if file is not None else str(text)
    info = json.loads(raw)
    if not isinstance(info, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return info


def string_map(data: Mapping[str, Any]) -> dict[str, str]:
    """FCM's ``data`` map takes strings only: other values travel as JSON text."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if k != "collapse_id"}


def fcm_failure(response: HttpAnswer) -> PermanentError | RetryableError:
    """The error for a google.rpc.Status answer, decided by its FcmError code when present."""
    error = json_or_empty(response).get("error")
    error = error if isinstance(error, dict) else {}
    details = error.get("details") if isinstance(error.get("details"), list) else []
    codes = [d.get("errorCode") for d in details if isinstance(d, dict) and d.get("@type") == FCM_ERROR_TYPE]
    code = codes[0] if codes else error.get("status")
    code = code if isinstance(code, str) else None  # a garbled answer (a list, an object) is decided by its status
    message = f"FCM {code or 'error'} (HTTP {response.status_code}): {error.get('message') or response.reason_phrase}"
    if code in PERMANENT_CODES:
        return PermanentError(message)
    if response.status_code == 401:  # the access token was revoked or rotated early
        return RetryableError(message)
    if code in RETRYABLE_CODES:
        return RetryableError(message, retry_after=parse_retry_after(response.headers.get("retry-after")),
                              throttled=code == "QUOTA_EXCEEDED" or response.status_code == 429)
    return error_for_status(response, message)


class FcmHandler(HttpHandler):
    """Pushes to the registration token in ``to``; the OAuth2 token is cached until it expires."""

    provider = "FCM"
    http2 = True
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["service_account_file"]}, {"required": ["service_account_json"]}],
        "properties": {
            "service_account_file": {"type": "string", "description": "Path of the service-account JSON key."},
            "service_account_json": {"type": "string",
                                     "description": "The service-account JSON itself; use a ${VAR} reference."},
            "project_id": {"type": "string", "description": "Firebase project; default: the service account's."},
            "base_url": {"type": "string", "default": "https://fcm.googleapis.com",
                         "description": "API base URL; changed only to point at a stand-in server."},
            "android_priority": {"enum": ["normal", "high"], "description": "android.priority."},
            "ttl": {"type": "integer", "minimum": 0, "description": "android.ttl in seconds."},
            "collapse_key": {"type": "string",
                             "description": "android.collapse_key; a notification's data.collapse_id overrides it."},
            "timeout": TIMEOUT_OPTION,
        },
    }

    def __init__(
        self,
        *,
        service_account_file: str | None = None,
        service_account_json: str | None = None,
        project_id: str | None = None,
        base_url: str = "https://fcm.googleapis.com",
        android_priority: str | None = None,
        ttl: int | None = None,
        collapse_key: str | None = None,
        timeout: float = 10,
    ) -> None:
        info = load_service_account(file=service_account_file, text=service_account_json)
        super().__init__(timeout=timeout, secrets=[info["private_key"], service_account_json or ""])
        self._credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        self._token_transport = google.auth.transport.requests.Request()
        self._refresh_lock = asyncio.Lock()
        self._stale = False
        project = project_id or info.get("project_id")
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._android = {k: v for k, v in (("priority", android_priority),
                                           ("ttl", f"{ttl}s" if ttl is not None else None)) if v}
        self._collapse_key = collapse_key

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, channel: Mapping[str, Any]) -> Iterable[OptionProblem]:
        key = "service_account_file" if "service_account_file" in options else "service_account_json"
        try:
            info = load_service_account(file=options.get("service_account_file"),
                                        text=options.get("service_account_json"))
            service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        except OSError as exc:
            yield (key,), f"cannot read the service account: {exc.strerror}: {options[key]}"
            return
        except ValueError as exc:  # json.JSONDecodeError included; the message names no key material
            yield (key,), f"not a usable service-account JSON: {type(exc).__name__}: {exc}"[:300]
            return
        if not options.get("project_id") and not info.get("project_id"):
            yield ("project_id",), "no project_id here or in the service account"

    async def access_token(self) -> str:
        """A valid OAuth2 access token, refreshed (off the event loop) only when expired or refused."""
        async with self._refresh_lock:
            if self._stale or not self._credentials.valid:
                try:
                    await asyncio.to_thread(self._credentials.refresh, self._token_transport)
                except google.auth.exceptions.RefreshError as exc:
                    message = self.redact(f"FCM: OAuth2 token refused: {exc}")
                    if getattr(exc, "retryable", False):
                        raise RetryableError(message) from None
                    raise PermanentError(message) from None
                except google.auth.exceptions.TransportError as exc:
                    raise RetryableError(self.redact(f"FCM: OAuth2 token endpoint unreachable: {exc}")) from None
                self._stale = False
            return str(self._credentials.token)

    def message(self, notification: Notification) -> dict[str, Any]:
        """The v1 ``message``: token, notification title/body, string data, android options."""
        if not notification.to:
            raise PermanentError("FCM: the notification has no registration token ('to')")
        message: dict[str, Any] = {"token": notification.to}
        shown = {k: v for k, v in (("title", notification.subject), ("body", notification.body)) if v}
        if shown:
            message["notification"] = shown
        if notification.data:
            message["data"] = string_map(notification.data)
        android = dict(self._android)
        collapse_key = notification.data.get("collapse_id") or self._collapse_key
        if collapse_key:
            android["collapse_key"] = str(collapse_key)
        if android:
            message["android"] = android
        return message

    async def send(self, notification: Notification) -> str | None:
        body = {"message": self.message(notification)}
        headers = {"authorization": f"Bearer {await self.access_token()}"}
        response = await self.request("POST", self._url, json=body, headers=headers)
        if response.is_success:
            return response.json_field("name")  # projects/P/messages/ID, for the ledger and outcome events
        failure = fcm_failure(response)
        if response.status_code == 401 and isinstance(failure, RetryableError):
            self._stale = True
        raise failure

    async def close(self) -> None:
        await super().close()
        self._token_transport.session.close()
