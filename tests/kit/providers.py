"""Stand-ins for the providers, served by ``tests.kit.httpserver``: Twilio, FCM, APNs, webhooks, Slack.

Each stand-in is a callable that checks a request the way the provider would and answers
with the provider's documented shapes. It keeps the requests it accepted in ``delivered``;
outcomes are scripted per recipient. ``deliver_once`` and ``deliver_all`` drive a handler
the way a channel process would.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.kit.httpserver import Reply, Request


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --- Twilio: Messages API, form POST with basic auth, errors as {"code", "message", ...} ---


def twilio_error(code: int, message: str, status: int = 400, headers: dict[str, str] | None = None) -> Reply:
    """A Twilio REST error answer."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return Reply(status, body, headers or {})


@dataclass
class TwilioStandIn:
    """Answers ``POST /2010-04-01/Accounts/{sid}/Messages.json``; ``outcomes`` maps a ``To`` to a reply."""

    account_sid: str
    username: str
    password: str
    outcomes: dict[str, Reply] = field(default_factory=dict)
    delivered: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return twilio_error(20404, "The requested resource was not found", 404)
        if request.headers.get("authorization") != basic_auth(self.username, self.password):
            return twilio_error(20003, "Authentication Error - invalid username", 401)
        form = request.form()
        if form.get("To") in self.outcomes:
            return self.outcomes[form["To"]]
        if not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(21602, "Message body is required.")
        self.delivered.append(form)
        sid = "SM" + uuid.uuid4().hex
        return Reply(201, {"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"]})


# --- FCM HTTP v1, with the OAuth2 token endpoint a service account's token_uri names ---


def make_service_account(token_uri: str, project_id: str = "notifyd-test") -> tuple[dict[str, str], Any]:
    """A service-account JSON (as a dict) with a fresh RSA key, and that key's public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem.decode(),
        "client_email": f"notifyd@{project_id}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return info, key.public_key()


def fcm_error(code: int, status: str, message: str, error_code: str | None = None) -> Reply:
    """A google.rpc.Status answer, with an FcmError detail when ``error_code`` is given."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if error_code:
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
    return Reply(code, {"error": error})


@dataclass
class FcmStandIn:
    """Answers ``POST /token`` (JWT-bearer grant) and ``POST /v1/projects/{id}/messages:send``."""

    public_key: Any
    project_id: str = "notifyd-test"
    token_lifetime: int = 3600
    outcomes: dict[str, Reply] = field(default_factory=dict)
    tokens_issued: list[str] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/token":
            return self._token(request.form())
        if request.method == "POST" and request.path == f"/v1/projects/{self.project_id}/messages:send":
            return self._send(request)
        return fcm_error(404, "NOT_FOUND", f"Requested entity was not found: {request.path}")

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                options={"verify_aud": False})
        except jwt.InvalidTokenError as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if "https://www.googleapis.com/auth/firebase.messaging" not in claims.get("scope", "").split():
            return Reply(400, {"error": "invalid_scope"})
        token = f"ya29.stand-in-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        return Reply(200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _send(self, request: Request) -> Reply:
        if not self.tokens_issued or request.headers.get("authorization") != f"Bearer {self.tokens_issued[-1]}":
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        message = request.json().get("message", {})
        if message.get("token") in self.outcomes:
            return self.outcomes[message["token"]]
        self.delivered.append(message)
        return Reply(200, {"name": f"projects/{self.project_id}/messages/{uuid.uuid4().hex}"})


# --- APNs provider API: HTTP/2 over TLS, token (ES256 JWT) auth ---


def make_apns_key() -> tuple[str, Any]:
    """An APNs-style signing key (P-256, PKCS#8 PEM like a .p8 file) and its public half."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), key.public_key()


def apns_error(
    status: int, reason: str, *, timestamp: int | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """An APNs error answer: ``{"reason": ...}`` (plus ``timestamp`` for 410)."""
    body: dict[str, Any] = {"reason": reason}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return Reply(status, body, {"apns-id": str(uuid.uuid4()), **(headers or {})})


@dataclass
class ApnsStandIn:
    """Answers ``POST /3/device/{token}`` over HTTP/2; ``outcomes`` maps a device token to a reply."""

    public_key: Any
    team_id: str
    key_id: str
    topic: str
    outcomes: dict[str, Reply] = field(default_factory=dict)
    delivered: list[Request] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if request.http_version != "2":
            return Reply(505, "APNs requires HTTP/2")
        if request.method != "POST" or not request.path.startswith("/3/device/"):
            return apns_error(404, "BadPath")
        refusal = self._check_token(request.headers.get("authorization", ""))
        if refusal:
            return apns_error(403, refusal)
        if request.headers.get("apns-topic") != self.topic:
            return apns_error(400, "DeviceTokenNotForTopic")
        device = request.path.removeprefix("/3/device/")
        if device in self.outcomes:
            return self.outcomes[device]
        self.delivered.append(request)
        return Reply(200, b"", {"apns-id": request.headers.get("apns-id") or str(uuid.uuid4())})

    def _check_token(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"], options={"require": ["iat", "iss"]})
        except jwt.InvalidTokenError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        return None


# --- A Standard Webhooks receiver, and a Slack incoming webhook ---


@dataclass
class WebhookReceiver:
    """Verifies the Standard Webhooks signature, then answers 200 or the reply ``outcomes`` has for the path."""

    secret: str
    outcomes: dict[str, Reply] = field(default_factory=dict)
    delivered: list[Request] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        try:
            Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            return Reply(401, {"error": f"signature: {exc}"})
        if request.path in self.outcomes:
            return self.outcomes[request.path]
        self.delivered.append(request)
        return Reply(200, {"received": True})


@dataclass
class SlackStandIn:
    """Answers an incoming-webhook path like Slack: ``ok``, or an error word as plain text."""

    hook_path: str = "/services/T0001/B0001/stand-in-secret-token"
    outcomes: dict[str, Reply] = field(default_factory=dict)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if request.path in self.outcomes:
            return self.outcomes[request.path]
        if request.method != "POST" or request.path != self.hook_path:
            return Reply(404, "no_service")
        try:
            payload = request.json()
        except ValueError:
            return Reply(400, "invalid_payload")
        if not payload.get("text") and not payload.get("blocks"):
            return Reply(400, "no_text")
        self.delivered.append(payload)
        return Reply(200, "ok")


def deliver_once(handler: Any, notification: Any) -> None:
    """Send one notification on a fresh event loop, then close the handler, as a channel process would."""

    async def run() -> None:
        try:
            await handler.send(notification)
        finally:
            await handler.close()

    asyncio.run(run())


def deliver_all(handler: Any, *notifications: Any) -> list[BaseException | None]:
    """Send notifications concurrently on one loop, then close the handler; the outcome of each."""

    async def run() -> list[BaseException | None]:
        try:
            return await asyncio.gather(*(handler.send(n) for n in notifications), return_exceptions=True)
        finally:
            await handler.close()

    return asyncio.run(run())
