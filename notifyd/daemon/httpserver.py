"""The supervisor's one HTTP listener: ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notifyd.daemon.metricsdir import MetricsDirectory

# Returns the names of channels that are not ready (empty means ready) and each channel's state.
ReadinessProbe = Callable[[], tuple[list[str], dict[str, object]]]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class StatusServer:
    """Serves the endpoints from a daemon thread until ``stop``."""

    def __init__(self, listen: str, *, metrics: MetricsDirectory, readiness: ReadinessProbe) -> None:
        host, port = parse_listen(listen)
        handler = _make_handler(metrics, readiness)
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="notifyd-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _make_handler(metrics: MetricsDirectory, readiness: ReadinessProbe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.scrape(), PROMETHEUS_CONTENT_TYPE)
            elif path == "/healthz":
                self._reply(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                failing, channels = readiness()
                body = json.dumps({"ready": not failing, "failing_channels": failing, "channels": channels}).encode()
                self._reply(503 if failing else 200, body, "application/json")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the daemon's own log

    return Handler
