"""The complete handler in docs/handlers.md, run as written against a local HTTP server.

The code block is taken from the document, defined as a module of its own, checked the
way ``validate-config`` checks a channel, and driven with real ``Notification`` objects.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notifyd import Handler, Notification, PermanentError, RetryableError, SkipNotification
from notifyd.config.validation import semantic_problems

DOC = Path(__file__).resolve().parents[2] / "docs" / "handlers.md"
MODULE = "acme_notify_docs_example"
REFERENCE = f"{MODULE}:ChatRoomHandler"


def documented_code() -> str:
    """The one fenced python block of docs/handlers.md."""
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"docs/handlers.md should hold exactly one python block, found {len(blocks)}"
    return blocks[0]


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The documented code as an importable module, as a channel would name it."""
    module = types.ModuleType(MODULE)
    monkeypatch.setitem(sys.modules, MODULE, module)
    exec(compile(documented_code(), str(DOC), "exec"), module.__dict__)
    return module


class ChatServer:
    """A local chat server: records each POST and answers with the next planned reply."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/abc"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Reply(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status, headers = server.replies.pop(0) if server.replies else (200, {})
                answer = b"ok" if status < 300 else b"no"
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(answer))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        return Reply

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as chat:
        yield chat


def notification(**fields: Any) -> Notification:
    return Notification(**{"id": "n-1", "channel": "ops-room", "to": "town-square", "body": "db1 at 95%", **fields})


def send_all(handler: Handler, *notifications: Notification) -> list[BaseException | None]:
    """Send each notification on one event loop, as a channel process does; then close the handler."""

    async def scenario() -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        for item in notifications:
            try:
                await handler.send(item)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        await handler.close()
        return outcomes

    return asyncio.run(scenario())


def channel_problems(options: dict[str, Any]) -> list[tuple[Any, str]]:
    """What validate-config says about a channel naming the example with ``options``."""
    channel = {"topics": ["notify.ops-room"], "handler": REFERENCE, "options": options}
    return [(path, message) for path, message, _ in semantic_problems({"ops-room": channel}, [MODULE])]


def test_the_example_passes_validate_config_and_its_own_checks(example: types.ModuleType) -> None:
    assert issubclass(example.ChatRoomHandler, Handler)
    assert channel_problems({"url": "https://chat.example.com/hooks/abc", "username": "alerts"}) == []
    assert [path for path, _ in channel_problems({})] == [("channels", "ops-room", "options")]
    problems = channel_problems({"url": "ftp://chat.example.com/x"})
    assert problems == [(("channels", "ops-room", "options", "url"),
                         "must be an http:// or https:// URL with a host name")]


def test_a_delivered_notification_reaches_the_room(example: types.ModuleType, server: ChatServer) -> None:
    handler = example.ChatRoomHandler(url=server.url, username="alerts")
    outcomes = send_all(handler, notification(subject="Disk full"), notification(id="n-2", subject=None))
    assert outcomes == [None, None]
    first, second = server.requests
    assert first["path"] == "/hooks/abc"
    assert first["json"] == {"channel": "town-square", "username": "alerts", "text": "**Disk full**\ndb1 at 95%"}
    assert first["headers"]["Idempotency-Key"] == "n-1"
    assert second["json"]["text"] == "db1 at 95%"
    assert handler._session.closed


def test_refusals_map_to_retryable_and_permanent_errors(example: types.ModuleType, server: ChatServer) -> None:
    server.replies += [(503, {"Retry-After": "7"}), (429, {}), (400, {})]
    handler = example.ChatRoomHandler(url=server.url)
    busy, throttled, refused = send_all(handler, notification(), notification(), notification())
    assert isinstance(busy, RetryableError) and busy.retry_after == 7.0
    assert isinstance(throttled, RetryableError) and throttled.retry_after is None
    assert isinstance(refused, PermanentError) and "400" in str(refused)
    assert len(server.requests) == 3


def test_quiet_notifications_are_skipped_without_a_request(example: types.ModuleType, server: ChatServer) -> None:
    handler = example.ChatRoomHandler(url=server.url)
    (outcome,) = send_all(handler, notification(data={"quiet": True}))
    assert isinstance(outcome, SkipNotification) and outcome.reason == "quiet"
    assert server.requests == []


def test_an_unreachable_server_is_retryable(example: types.ModuleType) -> None:
    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = example.ChatRoomHandler(url=f"http://127.0.0.1:{port}/hooks/abc")
    (outcome,) = send_all(handler, notification())
    assert isinstance(outcome, RetryableError) and "cannot reach" in str(outcome)
