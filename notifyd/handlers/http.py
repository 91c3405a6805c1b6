"""What the HTTP handlers share: one lazy client each, and provider answers mapped onto errors."""

from __future__ import annotations

import base64
import datetime
import email.utils
import time
from collections.abc import Iterable, Mapping
from json import dumps
from typing import Any, ClassVar
from urllib.parse import urlencode

from notifyd.api import Handler, PermanentError, RetryableError
from notifyd.handlers.answer import HttpAnswer
from notifyd.handlers.transport import AiohttpTransport, HttpxTransport, InvalidURLError, NoAnswerError, Transport
from notifyd.redaction import redact

# 408 and 425 say "try again later" as plainly as 429 does; every other 4xx will not change.
RETRYABLE_STATUSES = frozenset({408, 425, 429})

TIMEOUT_OPTION: dict[str, Any] = {
    "type": "number",
    "exclusiveMinimum": 0,
    "default": 10,
    "description": "Seconds allowed for connecting and for each read/write of one request.",
}


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP failure status may succeed when retried."""
    return status >= 500 or status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date); ``None`` if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a zone-less one (asctime's form) is read as such
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(response: HttpAnswer, message: str) -> PermanentError | RetryableError:
    """The exception for a failed answer: retryable (with its Retry-After) or permanent."""
    if is_retryable_status(response.status_code):
        return RetryableError(message, retry_after=parse_retry_after(response.headers.get("retry-after")),
                              throttled=response.status_code == 429)
    return PermanentError(message)


def json_or_empty(response: HttpAnswer) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when the body is not one (an HTML error page, say)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def encode_body(
    *, json: Any, content: bytes | None, data: Mapping[str, str] | None
) -> tuple[bytes | None, str | None]:
    """The request body and its content type: ``json`` and ``data`` encoded the way httpx encodes them."""
    if json is not None:
        return dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(), "application/json"
    if data is not None:
        return urlencode(data).encode(), "application/x-www-form-urlencoded"
    return content, None


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic auth, UTF-8 encoded as httpx encodes it."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request_headers(
    headers: Mapping[str, str] | None, *, content_type: str | None, auth: tuple[str, str] | None
) -> dict[str, str]:
    """``headers`` plus the body's content type (unless they name one) and basic auth."""
    merged = dict(headers or {})
    if content_type and not any(name.lower() == "content-type" for name in merged):
        merged["content-type"] = content_type
    if auth is not None:
        merged["authorization"] = basic_auth(*auth)
    return merged


class HttpHandler(Handler):
    """Base of the HTTP handlers: one client per instance (aiohttp, or httpx with HTTP/2), made in the loop."""

    provider: ClassVar[str] = "HTTP"
    # httpx for HTTP/2 providers (one multiplexed connection); aiohttp for HTTP/1.1 ones, where
    # httpcore's pool walks every connection on each request and collapses at high concurrency.
    http2: ClassVar[bool] = False

    def __init__(self, *, timeout: float, secrets: Iterable[str], **options: Any) -> None:
        super().__init__(timeout=timeout, **options)
        self._timeout = timeout
        self._secrets = {s for s in secrets if s}
        self._transport: Transport | None = None

    def client_options(self) -> dict[str, Any]:
        """Extra ``httpx.AsyncClient`` arguments (e.g. TLS trust) of ``http2`` handlers; overridden by subclasses."""
        return {}

    @property
    def transport(self) -> Transport:
        """The shared client, created on first use so that it binds to the channel's event loop."""
        if self._transport is None:
            if self.http2:
                self._transport = HttpxTransport(timeout=self._timeout, options=self.client_options())
            else:
                self._transport = AiohttpTransport(timeout=self._timeout)
        return self._transport

    def redact(self, text: str) -> str:
        """``text`` without any of this handler's secrets (tokens, keys, secret URLs)."""
        return redact(text, self._secrets)

    def refusal(self, response: HttpAnswer, who: str) -> PermanentError | RetryableError:
        """The error for a refusal whose body is short text, quoted up to 200 characters.

        Redacted before the cut: a secret that crossed it would leak its start.
        """
        detail = self.redact(response.text)[:200].strip() or response.reason_phrase
        return error_for_status(response, self.redact(f"{who} answered HTTP {response.status_code}: {detail}"))

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> HttpAnswer:
        """Send one request; a failure to get any answer becomes a ``RetryableError``."""
        body, content_type = encode_body(json=json, content=content, data=data)
        try:
            return await self.transport.send(
                method, url, content=body, headers=request_headers(headers, content_type=content_type, auth=auth)
            )
        except InvalidURLError as exc:
            raise PermanentError(self.redact(f"{self.provider}: invalid URL: {exc}")) from None
        except NoAnswerError as exc:
            # ``from None``: the chained exception carries the request and its auth headers.
            raise RetryableError(self.redact(f"{self.provider}: {exc}")) from None

    async def close(self) -> None:
        """Close the client's connections."""
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
