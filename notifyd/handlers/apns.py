"""The ``apns`` handler: iOS push through the APNs HTTP/2 provider API with token auth."""

from __future__ import annotations

import re
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from notifyd.api import Notification, OptionProblem, PermanentError, RetryableError
from notifyd.handlers.answer import HttpAnswer
from notifyd.handlers.http import TIMEOUT_OPTION, HttpHandler, error_for_status, json_or_empty, parse_retry_after

HOSTS = {"production": "https://api.push.apple.com", "development": "https://api.sandbox.push.apple.com"}
PUSH_TYPES = ["alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity",
              "location", "pushtotalk", "widgets", "controls"]
# APNs refuses a provider token older than an hour and answers TooManyProviderTokenUpdates
# when one is renewed more often than every 20 minutes: renew in between.
TOKEN_LIFETIME = 50 * 60
DEVICE_TOKEN = re.compile(r"[0-9a-fA-F]{16,200}")


def load_signing_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key of an APNs ``.p8`` file; ``ValueError`` when it is anything else."""
    key = load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ES256 (P-256) private key")
    return key


class ProviderToken:
    """The ES256 JWT that authenticates requests, signed again every ``TOKEN_LIFETIME`` seconds."""

    def __init__(self, *, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str) -> None:
        self._key, self._key_id, self._team_id = key, key_id, team_id
        self._token, self._issued = "", 0.0

    def current(self, *, now: float) -> str:
        """A token no older than ``TOKEN_LIFETIME``."""
        if not self._token or now - self._issued >= TOKEN_LIFETIME:
            claims = {"iss": self._team_id, "iat": int(now)}
            self._token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._key_id})
            self._issued = now
        return self._token

    def discard(self, token: str) -> None:
        """Forget ``token`` (APNs said it expired), so the next request signs a new one.

        Only if it is still the current one: the requests in flight with it all come back
        expired, and renewing once for each would soon be TooManyProviderTokenUpdates.
        """
        if token == self._token:
            self._token = ""


def aps_payload(notification: Notification, *, push_type: str, sound: str | None) -> dict[str, Any]:
    """The JSON body: ``aps`` (alert title/body, sound) plus the notification's data as custom keys."""
    custom = {k: v for k, v in notification.data.items() if k not in ("aps", "collapse_id")}
    if push_type == "background":
        return {"aps": {"content-available": 1}, **custom}
    alert = {k: v for k, v in (("title", notification.subject), ("body", notification.body)) if v}
    if not alert and push_type == "alert":
        raise PermanentError("APNs: an alert push needs a subject or a body")
    aps: dict[str, Any] = {"alert": alert} if alert else {}
    if sound:
        aps["sound"] = sound
    return {"aps": aps, **custom}


def apns_reason(response: HttpAnswer) -> str:
    """The ``reason`` APNs gives for a refusal (BadDeviceToken, Unregistered, ...)."""
    return str(json_or_empty(response).get("reason") or response.reason_phrase)


def apns_failure(response: HttpAnswer, reason: str) -> PermanentError | RetryableError:
    """The error for a refusal: 410 and BadDeviceToken permanent, 429 and 5xx retryable."""
    message = f"APNs refused with HTTP {response.status_code} {reason}"
    # ExpiredProviderToken: retried with a freshly signed token. IdleTimeout (400) is about
    # the connection, not the notification: the retry goes out on a new one.
    if reason in ("ExpiredProviderToken", "IdleTimeout"):
        return RetryableError(message)
    if response.status_code == 429:
        # APNs's 429s are TooManyRequests ("too many requests to the same device token") and
        # TooManyProviderTokenUpdates (the signing): neither is the channel's pace, so neither
        # slows the channel for every other device.
        return RetryableError(message, retry_after=parse_retry_after(response.headers.get("retry-after")))
    return error_for_status(response, message)


class ApnsHandler(HttpHandler):
    """Pushes to the device token in ``to`` over one HTTP/2 connection per channel process."""

    provider = "APNs"
    http2 = True
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["team_id", "key_id", "topic"],
        "oneOf": [{"required": ["private_key"]}, {"required": ["private_key_file"]}],
        "properties": {
            "team_id": {"type": "string", "minLength": 1, "description": "Apple Developer team ID (JWT iss)."},
            "key_id": {"type": "string", "minLength": 1, "description": "ID of the APNs auth key (JWT kid)."},
            "private_key": {"type": "string", "description": "The .p8 key's PEM text; use a ${VAR} reference."},
            "private_key_file": {"type": "string", "description": "Path of the .p8 key file."},
            "topic": {"type": "string", "minLength": 1, "description": "apns-topic: usually the app's bundle ID."},
            "environment": {"enum": ["production", "development"], "default": "production",
                            "description": "Which APNs service: production or the development sandbox."},
            "base_url": {"type": "string", "description": "Overrides environment; for a stand-in server."},
            "ca_file": {"type": "string", "description": "PEM file of CAs to trust instead of the system's."},
            "push_type": {"enum": PUSH_TYPES, "default": "alert", "description": "apns-push-type."},
            "priority": {"enum": [10, 5, 1], "default": 10,
                         "description": "apns-priority: 10 now, 5 power-considerate, 1 lowest."},
            "expiration": {"type": "integer", "minimum": 0,
                           "description": "Seconds APNs keeps retrying an offline device (apns-expiration = "
                           "now + this; 0 = deliver once). Unset: APNs' default."},
            "collapse_id": {"type": "string", "maxLength": 64,
                            "description": "apns-collapse-id; a notification's data.collapse_id overrides it."},
            "sound": {"type": "string", "description": "aps.sound of alert pushes, e.g. 'default'."},
            "timeout": TIMEOUT_OPTION,
        },
    }

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        topic: str,
        private_key: str | None = None,
        private_key_file: str | None = None,
        environment: str = "production",
        base_url: str | None = None,
        ca_file: str | None = None,
        push_type: str = "alert",
        priority: int = 10,
        expiration: int | None = None,
        collapse_id: str | None = None,
        sound: str | None = None,
        timeout: float = 10,
    ) -> None:
        super().__init__(timeout=timeout, secrets=[private_key or ""])
        pem = private_key if private_key is not None else Path(str(private_key_file)).read_bytes()
        self._token = ProviderToken(key=load_signing_key(pem), key_id=key_id, team_id=team_id)
        self._base = (base_url or HOSTS[environment]).rstrip("/")
        self._ca_file = ca_file
        self._topic, self._push_type, self._priority = topic, push_type, priority
        self._expiration, self._collapse_id, self._sound = expiration, collapse_id, sound

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, channel: Mapping[str, Any]) -> Iterable[OptionProblem]:
        for name in ("private_key_file", "ca_file"):
            if name in options and not Path(options[name]).is_file():
                yield (name,), f"file not found: {options[name]}"
        try:
            if "private_key" in options:
                load_signing_key(options["private_key"])
            elif Path(options["private_key_file"]).is_file():
                load_signing_key(Path(options["private_key_file"]).read_bytes())
        except ValueError as exc:
            key_option = "private_key" if "private_key" in options else "private_key_file"
            yield (key_option,), f"not an APNs auth key (.p8, PEM): {exc}"
        if options.get("push_type") == "background" and options.get("priority", 10) == 10:
            yield ("priority",), "background pushes must use priority 5 or 1 (APNs refuses 10)"

    def client_options(self) -> dict[str, Any]:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self._ca_file) if self._ca_file else True
        # APNs speaks only HTTP/2, which the base client offers; http1=False refuses a fallback.
        return {"http1": False, "verify": verify}

    def request_headers(self, notification: Notification, *, now: float) -> dict[str, str]:
        """The apns-* headers and the bearer provider token."""
        headers = {
            "authorization": f"bearer {self._token.current(now=now)}",
            # Derived from the notification id, so a retry carries the same apns-id.
            "apns-id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"notifyd:{notification.id}")),
            "apns-topic": self._topic,
            "apns-push-type": self._push_type,
            "apns-priority": str(self._priority),
        }
        if self._expiration is not None:
            headers["apns-expiration"] = str(int(now) + self._expiration if self._expiration else 0)
        collapse_id = notification.data.get("collapse_id") or self._collapse_id
        if collapse_id:
            headers["apns-collapse-id"] = str(collapse_id)
        return headers

    async def send(self, notification: Notification) -> None:
        device = notification.to or ""
        if not DEVICE_TOKEN.fullmatch(device):
            raise PermanentError(f"APNs: 'to' is not a device token (hex): {device!r}")
        body = aps_payload(notification, push_type=self._push_type, sound=self._sound)
        headers = self.request_headers(notification, now=time.time())
        response = await self.request("POST", f"{self._base}/3/device/{device}", json=body, headers=headers)
        if response.is_success:
            return
        reason = apns_reason(response)
        if reason == "ExpiredProviderToken":
            self._token.discard(headers["authorization"].removeprefix("bearer "))
        raise apns_failure(response, reason)
