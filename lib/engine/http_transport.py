"""The byte-moving layer under the openai SDK: an httpx2 transport on a keep-alive pool of `http.client` sockets.

Why it exists: at latency 0 with 16 workers, ~75% of the run engine's client CPU per row was the SDK plus
httpx2's default transport (httpcore2 and h11). With this transport under the same SDK the engine measured
0.92-1.02 ms (mostly ~0.93) instead of 1.23-1.34 ms of client CPU per row against the local simulator;
urllib3 as the transport only reached ~1.09 ms. The SDK still builds, authenticates, validates and error-maps every request: it is given
`httpx2.Client(transport=KeepAliveTransport(...))` through its documented `http_client=` option, and only the
sockets change. Failures are raised as httpx2's own exception classes, so the SDK raises its usual
APITimeoutError / APIConnectionError / APIStatusError.

Deliberately small: HTTP/1.1 only, no proxies (lib.engine.client falls back to the default stack when one applies),
one request at a time per connection, no automatic re-sends.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx2

__all__ = ["KeepAliveTransport"]

_Key = tuple[str, str, int]  # (scheme, host, port)

READ_CHUNK = 64 * 1024
# Bodies up to this size go out with the request head in one sendall (one syscall, no Nagle/delayed-ACK
# stall); larger ones in slices of this size, so the write timeout bounds each slice as httpcore's does.
WRITE_SLICE = 256 * 1024

# RFC 9110 token characters for header names; values may not carry CR, LF or NUL (request smuggling).
_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")


def _is_readable(sock: socket.socket) -> bool:
    """True if a read would not block: on an idle keep-alive socket that means EOF, a reset or stray bytes."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True  # decrypted bytes already buffered: the server sent something we never asked for
    fd = sock.fileno()
    if fd < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):  # pragma: no cover - not our platforms
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Connection:
    __slots__ = ("sock", "key", "idle_since")

    def __init__(self, sock: socket.socket, key: _Key) -> None:
        self.sock = sock
        self.key = key
        self.idle_since = 0.0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class KeepAliveTransport(httpx2.BaseTransport):
    """HTTP/1.1 over `http.client` with a thread-safe LIFO pool of idle keep-alive connections.

    `max_idle` caps idle connections kept across all hosts (in-flight ones are not capped: the caller's worker
    count bounds those). `keepalive_expiry` drops connections idle longer than that, as httpx2's default
    does, because servers close idle connections and a request racing that close fails. `ssl_context`
    defaults to `httpx2.create_ssl_context()`, the trust store the SDK's default client uses.
    """

    def __init__(
        self,
        *,
        max_idle: int = 64,
        keepalive_expiry: float | None = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[_Connection]] = {}
        self._n_idle = 0
        self._closed = False

    # ----- the BaseTransport interface ---------------------------------------------------------------------

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
        host = url.raw_host.decode("ascii")  # IDNA-encoded already: what DNS and SNI need
        key = (scheme, host, url.port or (443 if scheme == "https" else 80))
        timeouts = request.extensions.get("timeout") or {}
        body = _buffered_body(request)
        # Encoded before a connection is taken, so a bad header costs no socket.
        head = _encode_head(request, streamed=body is None)

        conn = self._checkout(key) or self._connect(key, timeouts.get("connect"))
        write_error: httpx2.WriteError | None = None
        try:
            try:
                _send(conn.sock, request, head, body, timeouts.get("write"))
            except httpx2.WriteError as exc:
                # A server may answer early and stop reading (413 on an oversized upload); read that answer
                # rather than report a bare broken pipe. Nothing is ever re-sent.
                write_error = exc
            response = _receive(conn.sock, request, timeouts.get("read"))
        except httpx2.TransportError as exc:
            conn.close()
            if write_error is not None and not isinstance(exc, httpx2.TimeoutException):
                raise write_error from write_error.__cause__  # no answer after all: the broken pipe is the story
            raise
        except BaseException:
            conn.close()
            raise
        stream = _ResponseStream(self, conn, response, reusable=write_error is None)
        return httpx2.Response(
            response.status,
            headers=[
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.msg.items()
            ],
            stream=stream,
            extensions={
                "http_version": b"HTTP/1.0" if response.version == 10 else b"HTTP/1.1",
                "reason_phrase": response.reason.encode("latin-1", "replace"),
            },
            request=request,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
            self._n_idle = 0
        for conn in idle:
            conn.close()

    # ----- the pool ------------------------------------------------------------------------------------------

    def _checkout(self, key: _Key) -> _Connection | None:
        """The most recently used idle connection to `key` that is still fit to carry a request, if any."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
                self._n_idle -= 1
            # A readable idle socket means the server closed it (or sent junk): a request written now would
            # be lost or misread, so it is dropped before anything is sent.
            if not self._expired(conn, time.monotonic()) and not _is_readable(conn.sock):
                return conn
            conn.close()

    def _checkin(self, conn: _Connection) -> None:
        now = time.monotonic()
        conn.idle_since = now
        stale: list[_Connection] = []
        with self._lock:
            if self._closed or self._n_idle >= self._max_idle:
                stale.append(conn)
            else:
                idle = self._idle.setdefault(conn.key, [])
                idle.append(conn)
                self._n_idle += 1
                # LIFO leaves the oldest at the bottom, where nothing would ever look at them again.
                while idle and self._expired(idle[0], now):
                    stale.append(idle.pop(0))
                    self._n_idle -= 1
        for old in stale:
            old.close()

    def _expired(self, conn: _Connection, now: float) -> bool:
        return self._keepalive_expiry is not None and now - conn.idle_since > self._keepalive_expiry

    def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, host, port = key
        try:
            sock = socket.create_connection((host, port), timeout)
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(f"Timed out connecting to {host}:{port}.") from exc
        except OSError as exc:
            raise httpx2.ConnectError(f"Could not connect to {host}:{port}: {exc}") from exc
        try:
            # Small requests must not wait for the previous segment's ACK (Nagle), as http.client also sets.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                # The handshake runs under the connect timeout still set on the socket.
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx2.ConnectTimeout(f"Timed out in the TLS handshake with {host}:{port}.") from exc
        except (OSError, ValueError) as exc:  # ssl.SSLError (bad certificate, wrong name) is an OSError
            sock.close()
            raise httpx2.ConnectError(f"TLS with {host}:{port} failed: {exc}") from exc
        return _Connection(sock, key)

    def _tls_context(self) -> ssl.SSLContext:
        # Built on first use: loading the trust store costs milliseconds, and http-only clients never need it.
        with self._lock:
            if self._ssl_context is None:
                context = httpx2.create_ssl_context()
                context.set_alpn_protocols(["http/1.1"])
                self._ssl_context = context
            return self._ssl_context


class _ResponseStream(httpx2.SyncByteStream):
    """The body, read in chunks as they arrive; the connection goes back to the pool only once fully read."""

    def __init__(
        self,
        transport: KeepAliveTransport,
        conn: _Connection,
        response: http.client.HTTPResponse,
        *,
        reusable: bool,
    ) -> None:
        self._transport = transport
        self._conn = conn
        self._response = response
        self._reusable = reusable
        self._complete = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        try:
            while True:
                # read1 returns what has arrived (server-sent events must not wait for a full buffer); it also
                # strips chunked framing, leaving content-encoding to httpx2.Response.
                chunk = response.read1(READ_CHUNK)
                if not chunk:
                    break
                yield chunk
        except TimeoutError as exc:
            self._discard()
            raise httpx2.ReadTimeout("Timed out reading the response body.") from exc
        except http.client.HTTPException as exc:  # IncompleteRead: a chunked body cut short
            self._discard()
            raise httpx2.RemoteProtocolError(f"Malformed or incomplete response body: {exc!r}") from exc
        except (OSError, ValueError) as exc:  # ValueError: the response was closed under us
            self._discard()
            raise httpx2.ReadError(f"Reading the response body failed: {exc}") from exc
        if response.length:
            # http.client's read1 reports EOF before Content-Length was reached as a quiet end of body.
            self._discard()
            raise httpx2.RemoteProtocolError(
                f"Peer closed the connection without sending the complete body ({response.length} bytes short)."
            )
        self._complete = True

    def close(self) -> None:
        if self._closed:
            return
        response = self._response
        # A consumer may stop at the last byte it needed (the SDK's stream stops at "[DONE]"); if http.client
        # has already seen the end of the body (Content-Length used up, or the last chunk), it is still clean.
        complete = self._complete or response.length == 0 or (response.chunked and response.isclosed())
        if complete and self._reusable and not response.will_close:
            self._closed = True
            response.close()  # releases its file object; the socket stays open
            self._transport._checkin(self._conn)
        else:
            # Unread bytes (or a server that said Connection: close) make the socket useless for another request.
            self._discard()

    def _discard(self) -> None:
        self._closed = True
        self._response.close()
        self._conn.close()


# ----- the wire ------------------------------------------------------------------------------------------------


def _buffered_body(request: httpx2.Request) -> bytes | None:
    """The body if httpx2 already holds it in memory (JSON, form data), else None: stream it."""
    try:
        return request.content
    except httpx2.RequestNotRead:
        return None


def _encode_head(request: httpx2.Request, *, streamed: bool) -> bytes:
    method = request.method.encode("ascii")
    target = request.url.raw_path
    if not _HEADER_NAME.fullmatch(method) or not target or _BAD_TARGET.search(target):
        raise httpx2.LocalProtocolError(f"Illegal request line {method!r} {target!r}.")
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    has_host = has_framing = False
    for name, value in request.headers.raw:
        if not _HEADER_NAME.fullmatch(name) or _BAD_VALUE.search(value):
            raise httpx2.LocalProtocolError(f"Illegal header {name!r}.")
        lower = name.lower()
        if lower == b"host":
            has_host = True
        elif lower in (b"content-length", b"transfer-encoding"):
            has_framing = True
        parts += (name, b": ", value, b"\r\n")
    if not has_host:
        parts += (b"Host: ", request.url.netloc, b"\r\n")
    if streamed and not has_framing:
        # A stream of unknown length (httpx2 only omits both headers for `Request(stream=...)`).
        parts.append(b"Transfer-Encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _send(
    sock: socket.socket, request: httpx2.Request, head: bytes, body: bytes | None, timeout: float | None
) -> None:
    _write(sock.settimeout, timeout)
    if body is None:
        _send_stream(sock, head, request.stream, _is_chunked(request))
    elif len(body) <= WRITE_SLICE:
        _write(sock.sendall, head + body)
    else:
        _write(sock.sendall, head)
        _send_slices(sock, body)


def _write(call: Callable[[Any], None], data: Any) -> None:
    """One socket call on the sending side, its failure as httpx2's. Only socket calls: an error raised by a
    streamed body's own iterator (a file that cannot be read) propagates as itself."""
    try:
        call(data)
    except TimeoutError as exc:
        raise httpx2.WriteTimeout("Timed out sending the request.") from exc
    except OSError as exc:
        raise httpx2.WriteError(f"Sending the request failed: {exc}") from exc


def _send_slices(sock: socket.socket, data: bytes | bytearray) -> None:
    view = memoryview(data)
    for start in range(0, len(view), WRITE_SLICE):
        _write(sock.sendall, view[start : start + WRITE_SLICE])


def _is_chunked(request: httpx2.Request) -> bool:
    if "Content-Length" in request.headers:
        return False
    return "Transfer-Encoding" not in request.headers or "chunked" in request.headers["Transfer-Encoding"]


def _send_stream(sock: socket.socket, head: bytes, stream: Iterable[bytes], chunked: bool) -> None:
    """Send a streamed body (a multipart upload) piece by piece, never holding more than a slice of it."""
    # Multipart streams yield many tiny pieces (boundaries, part headers): coalesced, so each send is full.
    buffer = bytearray(head)
    for piece in stream:
        if not piece:
            continue
        if chunked:
            buffer += b"%X\r\n" % len(piece)
        if len(piece) >= WRITE_SLICE:
            _write(sock.sendall, buffer)
            buffer.clear()
            _send_slices(sock, piece)
        else:
            buffer += piece
        if chunked:
            buffer += b"\r\n"
        if len(buffer) >= WRITE_SLICE:
            _write(sock.sendall, buffer)
            buffer.clear()
    if chunked:
        buffer += b"0\r\n\r\n"
    if buffer:
        _write(sock.sendall, buffer)


def _receive(sock: socket.socket, request: httpx2.Request, timeout: float | None) -> http.client.HTTPResponse:
    """Read the status line and headers; http.client skips any 100 Continue and sets up de-chunking."""
    response = http.client.HTTPResponse(sock, method=request.method)
    try:
        sock.settimeout(timeout)
        response.begin()
    except TimeoutError as exc:
        response.close()
        raise httpx2.ReadTimeout("Timed out waiting for the response.") from exc
    except http.client.RemoteDisconnected as exc:
        response.close()
        raise httpx2.RemoteProtocolError("Server disconnected without sending a response.") from exc
    except http.client.HTTPException as exc:  # BadStatusLine, LineTooLong, too many headers
        response.close()
        raise httpx2.RemoteProtocolError(f"Malformed response: {exc!r}") from exc
    except OSError as exc:
        response.close()
        raise httpx2.ReadError(f"Reading the response failed: {exc}") from exc
    return response
