"""A local HTTP/1.1 server that answers every request after a fixed delay (case 2).

Run in its own process (``python -m bench.slowserver PORT DELAY``) so that it never
shares a GIL with what it measures. Hand-written on asyncio's protocol layer rather
than an ASGI server: a stand-in that must stay far from being the bottleneck at
thousands of requests a second. It reads a request's head and skips the body its
``Content-Length`` announces (the webhook handler's POSTs; no chunked bodies).
"""

from __future__ import annotations

import asyncio
import sys

from notifyd.channel.eventloop import loop_factory

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class DelayedReply(asyncio.Protocol):
    """Answers each complete request, in order, ``delay`` seconds after it arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.body_left = 0  # bytes of the current request's body still to skip
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._take_request():
            asyncio.get_running_loop().call_later(self.delay, self._reply)

    def _take_request(self) -> bool:
        """Consume one whole request (head, then body) from the buffer; False until one is complete."""
        if not self.body_left:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.body_left = content_length(head)
        skipped = min(self.body_left, len(self.buffer))
        self.buffer, self.body_left = self.buffer[skipped:], self.body_left - skipped
        return not self.body_left

    def _reply(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def content_length(head: bytes) -> int:
    """The ``Content-Length`` of a request head (0 when absent)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def serve(port: int, delay: float) -> None:
    """Listen on 127.0.0.1:``port`` until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DelayedReply(delay), "127.0.0.1", port, backlog=1024)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    # On the channel processes' loop (uvloop where installed): the server shares the machine's
    # cores with what it measures, so its own CPU a request is kept low.
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(int(sys.argv[1]), float(sys.argv[2])))
