"""A small HTTP/1.1 server on asyncio.Protocol for the simulator: keep-alive, Content-Length bodies, no framework.

Requests on one connection are handled one after another. A handler returns a `Reply` at once; latency is a
`loop.call_later` timer (a heap entry, not a task), so thousands of delayed answers cost almost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    peer: str  # client IP address


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before the reply is due (simulated latency)
    action: str = "send"  # "send", "drop" (close without answering) or "hang" (never answer)
    hang_seconds: float = 0.0
    on_due: Callable[[], None] | None = None  # runs when the reply is due, even if the client has gone
    gate: asyncio.Event | None = None  # held until this is set (a test's gate), then the delay runs


Handler = Callable[[Request], Reply]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse a request, ask the handler, answer (maybe later), repeat."""

    def __init__(self, handler: Handler, registry: set[HttpProtocol]) -> None:
        self._handler = handler
        self._registry = registry
        self._buf = bytearray()
        self._busy = False
        self._keep_alive = True
        self._timer: asyncio.TimerHandle | None = None
        self._hang_timer: asyncio.TimerHandle | None = None
        self._gate_task: asyncio.Task | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.closed = False
        self.hanging = False
        self.held = False  # a reply waits for its gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.hanging = False
        self._registry.discard(self)
        if self._hang_timer is not None:
            self._hang_timer.cancel()
        # A pending latency timer is left to fire: the answer is still "generated" (and billed) after a disconnect.

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._next()

    def abort(self) -> None:
        """Drop the connection now and forget any pending answer (server shutdown or reset)."""
        for timer in (self._timer, self._hang_timer):
            if timer is not None:
                timer.cancel()
        if self._gate_task is not None:
            self._gate_task.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _next(self) -> None:
        while not self._busy and not self.closed:
            try:
                request = self._parse()
            except _HttpError as err:
                self._write_plain(err.status, str(err))
                self.transport.close()
                return
            if request is None:
                return
            self._busy = True
            try:
                reply = self._handler(request)
            except Exception:
                log.exception("simulator handler failed")
                reply = Reply(
                    500,
                    b'{"error":{"message":"simulator bug","type":"server_error","param":null,"code":null}}',
                )
            if reply.gate is not None and not reply.gate.is_set():
                self.held = True
                self._gate_task = asyncio.get_running_loop().create_task(self._after_gate(reply))
            elif reply.delay > 0:
                self._timer = asyncio.get_running_loop().call_later(reply.delay, self._due, reply, True)
            else:
                self._go(reply, later=False)

    def _go(self, reply: Reply, *, later: bool) -> None:
        """Answer after the reply's latency; `later`: on the loop's next turn even without one (let go by a
        gate, outside this connection's own reading)."""
        if reply.delay > 0 or later:
            self._timer = asyncio.get_running_loop().call_later(reply.delay, self._due, reply, True)
        else:
            self._due(reply, False)

    async def _after_gate(self, reply: Reply) -> None:
        await reply.gate.wait()
        self.held = False
        self._gate_task = None
        if reply.delay > 0:
            self._timer = asyncio.get_running_loop().call_later(reply.delay, self._due, reply, True)
        else:
            self._due(reply, True)

    def _due(self, reply: Reply, from_timer: bool) -> None:
        self._timer = None
        if reply.on_due is not None:
            reply.on_due()
        if self.closed:
            return
        if reply.action == "drop":
            self.transport.close()
            return
        if reply.action == "hang":
            self.hanging = True
            self._hang_timer = asyncio.get_running_loop().call_later(reply.hang_seconds, self.transport.close)
            return
        self._write(reply)
        self._busy = False
        if not self._keep_alive:
            self.transport.close()
        elif from_timer and self._buf:
            self._next()

    def _parse(self) -> Request | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise _HttpError(431, "request head too large")
            return None
        lines = bytes(buf[:end]).decode("latin-1").lstrip("\r\n").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _HttpError(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _HttpError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise _HttpError(501, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _HttpError(413, "request body too large")
        total = end + 4 + length
        if len(buf) < total:
            return None
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body, self.peer)

    def _write(self, reply: Reply) -> None:
        head = [
            f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
            f"content-type: {reply.content_type}\r\ncontent-length: {len(reply.body)}\r\n"
        ]
        head.extend(f"{name}: {value}\r\n" for name, value in reply.headers)
        if not self._keep_alive:
            head.append("connection: close\r\n")
        head.append("\r\n")
        self.transport.write("".join(head).encode("latin-1") + reply.body)

    def _write_plain(self, status: int, message: str) -> None:
        self._keep_alive = False
        self._write(Reply(status, message.encode(), content_type="text/plain; charset=utf-8"))


async def start_http_server(
    handler: Handler, host: str, port: int, registry: set[HttpProtocol]
) -> asyncio.Server:
    """Listen on host:port (0 picks a free port) and serve `handler` until the server is closed."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(handler, registry), host, port, backlog=2048)
