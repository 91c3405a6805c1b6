"""A real HTTP server on 127.0.0.1 for provider stand-ins (``tests.kit.providers``).

``ProviderServer`` runs hypercorn (HTTP/1.1, or HTTP/2 over TLS for APNs) in a thread and
hands every request to a responder, which answers with a ``Reply``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig


@dataclass
class Request:
    """One request as the server received it; header names are lower case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    http_version: str
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    """What a stand-in answers: a dict body is sent as JSON."""

    status: int = 200
    body: dict[str, Any] | str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if isinstance(self.body, dict):
            body = json.dumps(self.body).encode()
            headers.setdefault("content-type", "application/json")
        else:
            body = self.body.encode() if isinstance(self.body, str) else self.body
            headers.setdefault("content-type", "text/plain")
        return body, [(k.encode(), v.encode()) for k, v in headers.items()]


# A coroutine function may answer too, to hold a request until something else happens.
Responder = Callable[[Request], Reply | Awaitable[Reply]]


class ProviderServer:
    """A real HTTP server on 127.0.0.1; ``with ProviderServer(responder) as server: server.url``."""

    def __init__(
        self, responder: Responder, *, tls: trustme.CA | None = None, tmp_dir: Path | None = None, port: int = 0
    ) -> None:
        self.responder = responder
        self.requests: list[Request] = []
        self._config = HypercornConfig()
        self._config.graceful_timeout = 1.0
        self._config.accesslog = None
        # Providers keep a connection for as many requests as it carries (hypercorn: 1000).
        self._config.keep_alive_max_requests = 1_000_000
        sock = socket.socket()
        # What hypercorn does for the sockets it binds itself; accepted sockets inherit it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart on the same port
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._config.bind = [f"fd://{sock.detach()}"]
        self.scheme = "http"
        if tls is not None:
            self._use_tls(tls, tmp_dir)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="provider-server", daemon=True)
        self._ready = threading.Event()

    def _use_tls(self, ca: trustme.CA, tmp_dir: Path | None) -> None:
        if tmp_dir is None:
            raise ValueError("a TLS server needs tmp_dir for its certificate files")
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(str(tmp_dir / "server.key"))
        leaf.cert_chain_pems[0].write_to_path(str(tmp_dir / "server.pem"))
        self._config.keyfile = str(tmp_dir / "server.key")
        self._config.certfile = str(tmp_dir / "server.pem")
        self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("provider server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._thread.is_alive():  # already stopped by the test itself
            return
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        # asyncio.run cancels whatever is left at the end, which closes every client connection.
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._quiet_after_stop)
        self._stop = asyncio.Event()
        self._ready.set()
        server = asyncio.ensure_future(serve(self._app, self._config, shutdown_trigger=self._stop.wait))
        await self._stop.wait()
        # hypercorn would wait for idle HTTP/2 connections to end; a provider going away drops them.
        await asyncio.wait([server], timeout=self._config.graceful_timeout)
        server.cancel()

    def _quiet_after_stop(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Connections cut at shutdown (cancelled tasks, TLS close races) are the point, not news.
        if self._stop is None or not self._stop.is_set():
            loop.default_exception_handler(context)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Request(
            scope["method"], scope["path"], scope["query_string"].decode(), headers, body, scope["http_version"],
            scope["client"][1],
        )
        self.requests.append(request)
        reply = self.responder(request)
        if inspect.isawaitable(reply):
            reply = await reply
        content, reply_headers = reply.encoded()
        await send({"type": "http.response.start", "status": reply.status, "headers": reply_headers})
        await send({"type": "http.response.body", "body": content})
