"""KeepAliveTransport (lib/http_transport.py) under the real openai SDK, on loopback sockets only.

The simulator serves what the SDK itself calls (chat, streaming, file uploads); a tiny scripted server plays
the misbehaving servers: it reads each request and then follows a script of writes, pauses and closes.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest

from lib.engine.client import Endpoint, http_stack, make_client
from lib.engine.http_transport import WRITE_SLICE, KeepAliveTransport
from tests.engine_helpers import wait_until

# ----- a scripted HTTP/1.1 server --------------------------------------------------------------------------

CLOSE = "close"  # script step: close the connection (FIN)
RESET = "reset"  # script step: abort the connection (RST)


@dataclass
class Seen:
    conn: int  # which connection (1, 2, ...) carried it
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Step = (
    bytes | float | str | Callable[[], object]
)  # write / sleep (cut short at shutdown) / CLOSE, RESET / call
Script = Callable[[Seen], list[Step]]


def reply(status: int = 200, body: bytes | None = None, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = json.dumps({"ok": True}).encode() if body is None else body
    head = f"HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


def echo(seen: Seen) -> list[Step]:
    return [reply(body=json.dumps({"path": seen.path, "row": seen.headers.get("x-row-id")}).encode())]


class _Handler(socketserver.StreamRequestHandler):
    server: ScriptedServer

    def setup(self) -> None:
        if self.server.tls is not None:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.open += 1
            self.conn_no = self.server.connections

    def finish(self) -> None:
        with self.server.lock:
            self.server.open -= 1
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        try:
            while (seen := self._read_request()) is not None:
                with self.server.lock:
                    self.server.seen.append(seen)
                for step in self.server.script(seen):
                    if isinstance(step, bytes):
                        self.wfile.write(step)
                        self.wfile.flush()
                    elif isinstance(step, float):
                        self.server.stopping.wait(step)
                    elif step == CLOSE:
                        self.request.shutdown(socket.SHUT_RDWR)
                        return
                    elif step == RESET:
                        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.request.close()
                        return
                    else:
                        step()
        except (OSError, ValueError):
            return

    def _read_request(self) -> Seen | None:
        line = self.rfile.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if not self.server.read_bodies:
            body = b""
        elif "content-length" in headers:
            body = self.rfile.read(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", ""):
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.server.first_body_chunk.set()
                self.rfile.readline()
            self.rfile.readline()  # the empty trailer
            body = b"".join(parts)
        else:
            body = b""
        return Seen(self.conn_no, method, path, headers, body)


class ScriptedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None, read_bodies: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.tls = tls
        self.read_bodies = (
            read_bodies  # False: answer right after the head, as a server refusing an upload does
        )
        self.lock = threading.Lock()
        self.connections = 0  # ever accepted
        self.open = 0  # open right now
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self.first_body_chunk = threading.Event()
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def handle_error(self, request, client_address) -> None:
        pass  # a refused TLS handshake is part of the test, not noise for stderr

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def serve():
    servers: list[ScriptedServer] = []

    def start(
        script: Script = echo, tls: ssl.SSLContext | None = None, read_bodies: bool = True
    ) -> ScriptedServer:
        servers.append(ScriptedServer(script, tls, read_bodies))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def sdk(url: str, transport: KeepAliveTransport | None = None, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test-transport",
        base_url=url,
        max_retries=0,
        timeout=timeout,
        http_client=openai.DefaultHttpxClient(transport=transport or KeepAliveTransport()),
    )


def post(client: openai.OpenAI, row: int = 0) -> httpx2.Response:
    """The engine's own call shape (lib/engine/job.py _send)."""
    return client.post(
        "/chat/completions",
        cast_to=httpx2.Response,
        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        options={"headers": {"X-Row-Id": str(row)}},
    )


def causes(exc: BaseException) -> list[type[BaseException]]:
    found = []
    while exc is not None:
        found.append(type(exc))
        exc = exc.__cause__ or exc.__context__
    return found


# ----- keep-alive ------------------------------------------------------------------------------------------


def test_sequential_requests_share_one_connection(serve):
    server = serve()
    client = sdk(server.url)
    for row in range(30):
        assert post(client, row).json() == {"path": "/v1/chat/completions", "row": str(row)}
    assert server.connections == 1 and len(server.seen) == 30


def test_concurrent_requests_each_get_their_own_answer_on_few_connections(serve):
    server = serve(lambda seen: [0.002, *echo(seen)])
    client = sdk(server.url, KeepAliveTransport(max_idle=8))
    errors: list[str] = []

    def worker(base: int) -> None:
        for row in range(base, base + 25):
            got = post(client, row).json()["row"]
            if got != str(row):
                errors.append(f"row {row} got {got}")

    threads = [threading.Thread(target=worker, args=(1000 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(server.seen) == 200 and server.connections <= 8


def test_sdk_calls_against_the_simulator_reuse_connections(sim):
    transport = KeepAliveTransport(max_idle=4)
    client = sdk(sim.url, transport)
    for _ in range(10):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert len(sim.ledger()) == 10
    assert transport._n_idle == 1  # every call went back to, and came from, the same pooled connection


def test_idle_connections_beyond_max_idle_are_closed_and_close_closes_the_rest(serve):
    server = serve(lambda seen: [0.3, *echo(seen)])  # slow enough that six requests overlap
    transport = KeepAliveTransport(max_idle=2)
    client = sdk(server.url, transport)
    threads = [threading.Thread(target=post, args=(client, i)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.connections == 6
    assert wait_until(lambda: server.open == 2, timeout=5)
    transport.close()
    assert wait_until(lambda: server.open == 0, timeout=5)


def test_a_connection_idle_past_keepalive_expiry_is_not_reused(serve):
    server = serve()
    client = sdk(server.url, KeepAliveTransport(keepalive_expiry=0.1))
    post(client)
    time.sleep(0.3)
    post(client)
    assert server.connections == 2 and len(server.seen) == 2


# What a server may do to a connection while it sits idle in the pool: the next request must notice before
# sending, go out once on a fresh connection, and succeed.
STALE = {
    "closed": [CLOSE],
    "reset": [RESET],
    "408 then closed": [0.1, reply(408, b"", (("connection", "close"),)), CLOSE],
    "junk, left open": [0.1, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"],
}


@pytest.mark.parametrize("after", STALE.values(), ids=STALE.keys())
def test_a_connection_the_server_spoiled_while_idle_is_dropped_without_a_double_send(serve, after):
    server = serve(lambda seen: [*echo(seen), *(after if seen.conn == 1 else [])])
    client = sdk(server.url)
    assert post(client, 1).json()["row"] == "1"
    time.sleep(0.3)  # the server's close or junk has arrived
    assert post(client, 2).json()["row"] == "2"
    assert [(s.conn, s.headers["x-row-id"]) for s in server.seen] == [(1, "1"), (2, "2")]


# ----- failures: the SDK's usual exceptions, the connection never reused, nothing sent twice --------------

FAILURES = {
    "read timeout": ([30.0], openai.APITimeoutError, httpx2.ReadTimeout),
    "closed before answering": ([CLOSE], openai.APIConnectionError, httpx2.RemoteProtocolError),
    "reset before answering": ([RESET], openai.APIConnectionError, httpx2.ReadError),
    "dropped mid-body": (
        [b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial', CLOSE],
        openai.APIConnectionError,
        httpx2.RemoteProtocolError,
    ),
    "chunked body cut": (
        [b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"a":', CLOSE],
        openai.APIConnectionError,
        httpx2.RemoteProtocolError,
    ),
    "read timeout mid-body": (
        [b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{", 30.0],
        openai.APITimeoutError,
        httpx2.ReadTimeout,
    ),
    "not HTTP": (
        [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", CLOSE],
        openai.APIConnectionError,
        httpx2.RemoteProtocolError,
    ),
}


@pytest.mark.parametrize("steps, error, cause", FAILURES.values(), ids=FAILURES.keys())
def test_failures_raise_the_sdk_exception_and_the_connection_is_not_reused(serve, steps, error, cause):
    server = serve(lambda seen: steps if seen.headers["x-row-id"] == "2" else echo(seen))
    client = sdk(server.url, timeout=0.5)
    post(client, 1)  # a pooled connection for the failure to happen on
    started = time.monotonic()
    with pytest.raises(error) as info:
        post(client, 2)
    assert time.monotonic() - started < 3
    assert cause in causes(info.value), causes(info.value)
    assert post(client, 3).json()["row"] == "3"
    assert [(s.conn, s.headers["x-row-id"]) for s in server.seen] == [(1, "1"), (1, "2"), (2, "3")]


def test_connection_refused_is_an_api_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    with pytest.raises(openai.APIConnectionError) as info:
        post(sdk(f"http://127.0.0.1:{port}/v1"))
    assert httpx2.ConnectError in causes(info.value)


def test_a_tls_handshake_that_never_completes_is_a_connect_timeout():
    with socket.socket() as silent:  # accepts TCP (the kernel's backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        client = openai.OpenAI(
            api_key="sk-test",
            base_url=f"https://127.0.0.1:{silent.getsockname()[1]}/v1",
            max_retries=0,
            timeout=httpx2.Timeout(10, connect=0.3),
            http_client=openai.DefaultHttpxClient(transport=KeepAliveTransport()),
        )
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError) as info:
            post(client)
        assert time.monotonic() - started < 3
    assert httpx2.ConnectTimeout in causes(info.value)


def test_status_errors_reach_the_sdk_with_their_headers_and_keep_the_connection(serve):
    limited = (("retry-after", "7"), ("x-ratelimit-remaining-requests", "0"), ("x-dup", "a"), ("x-dup", "b"))
    error = json.dumps({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})
    answers = {"1": reply(429, error.encode(), limited), "2": reply(500, b'{"error": {"message": "oops"}}')}
    server = serve(lambda seen: [answers.get(seen.headers["x-row-id"]) or echo(seen)[0]])
    client = sdk(server.url)
    with pytest.raises(openai.RateLimitError) as info:
        post(client, 1)
    assert info.value.status_code == 429 and info.value.message.endswith("slow down")
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.response.headers.get_list("x-dup") == ["a", "b"]
    with pytest.raises(openai.InternalServerError) as info:
        post(client, 2)
    assert info.value.status_code == 500
    post(client, 3)
    assert server.connections == 1


def test_a_header_with_a_line_break_is_refused_before_any_connection(serve):
    server = serve()
    with httpx2.Client(transport=KeepAliveTransport()) as client, pytest.raises(httpx2.LocalProtocolError):
        client.get(server.url, headers={"x-note": "a\r\nx-injected: 1"})
    assert server.connections == 0


# ----- bodies ----------------------------------------------------------------------------------------------

PAYLOAD = {"answer": "ß" * 5000, "n": list(range(500))}
RAW = json.dumps(PAYLOAD).encode()
GZ = gzip.compress(RAW)
ENCODED = {
    "gzip": b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(GZ), GZ),
    "chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    + chunked(RAW[:10], RAW[10:5000], RAW[5000:], trailer=b"x-trailer: 1\r\n"),
    "gzip and chunked": b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
    + chunked(GZ[:100], GZ[100:]),
    "no length, connection close": b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + RAW,
}


@pytest.mark.parametrize("raw", ENCODED.values(), ids=ENCODED.keys())
def test_encoded_responses_are_decoded(serve, raw):
    server = serve(lambda seen: [raw, CLOSE] if b"connection: close" in raw else [raw])
    client = sdk(server.url)
    assert post(client, 1).json() == PAYLOAD
    assert post(client, 2).json() == PAYLOAD
    assert server.connections == (2 if b"connection: close" in raw else 1)


def test_sdk_streaming_gives_the_same_answer_as_a_plain_call(sim):
    client = sdk(sim.url)
    messages = [{"role": "user", "content": "Write one line for ACME"}]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        if chunk.choices
    ]
    assert len(pieces) > 1 and "".join(pieces) == plain.choices[0].message.content


def sse(content: str | None) -> bytes:
    delta = {"content": content} if content is not None else {}
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None if content else "stop"}]
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def test_streamed_events_arrive_as_the_server_sends_them(serve):
    first_seen = threading.Event()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    first = b"%x\r\n%s\r\n" % (len(sse("hello")), sse("hello"))
    rest = chunked(sse(" world"), sse(None), b"data: [DONE]\n\n")
    # The server sends the rest only once the client has shown it the first event, or after 5 s.
    server = serve(lambda seen: [head + first, lambda: first_seen.wait(5), rest])
    client = sdk(server.url)
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    pieces = []
    for chunk in stream:
        pieces.append(chunk.choices[0].delta.content)
        first_seen.set()
    assert pieces == ["hello", " world", None]
    assert time.monotonic() - started < 3


def test_multipart_file_upload_through_the_sdk(sim):
    client = sdk(sim.url)
    data = b"".join(b'{"custom_id": "row-%d", "body": {}}\n' % i for i in range(60_000))  # ~2.2 MB
    uploaded = client.files.create(
        file=("leads.jsonl", io.BytesIO(data), "application/jsonl"), purpose="batch"
    )
    assert uploaded.bytes == len(data)
    assert client.files.content(uploaded.id).content == data


def test_a_streamed_body_goes_out_piece_by_piece(serve):
    """The second piece is only produced after the server has received the first: nothing is buffered whole."""
    server = serve(lambda seen: [reply(body=json.dumps({"n": len(seen.body)}).encode())])
    first, second = b"a" * WRITE_SLICE, b"b" * 1000

    def body() -> Iterator[bytes]:
        yield first
        assert server.first_body_chunk.wait(5), "the first piece was held back"
        yield second

    with httpx2.Client(transport=KeepAliveTransport()) as client:
        response = client.post(server.url, content=body())  # no length: chunked
    assert response.json() == {"n": len(first) + len(second)}
    assert server.seen[0].headers["transfer-encoding"] == "chunked"


def test_a_streamed_body_with_a_content_length_is_sent_as_is(serve):
    server = serve(lambda seen: [reply(body=json.dumps({"n": len(seen.body)}).encode())])
    pieces = [b"x" * 10, b"", b"y" * (WRITE_SLICE + 5), b"z"]
    with httpx2.Client(transport=KeepAliveTransport()) as client:
        length = str(sum(map(len, pieces)))
        response = client.post(server.url, content=iter(pieces), headers={"content-length": length})
    assert response.json() == {"n": int(length)}
    assert server.seen[0].body == b"".join(pieces)


def test_an_answer_sent_before_the_upload_finished_is_read_not_reported_as_a_broken_pipe(serve):
    too_large = reply(413, b'{"error": {"message": "file too large"}}', (("connection", "close"),))
    server = serve(lambda seen: [too_large, CLOSE], read_bodies=False)
    client = sdk(server.url)
    with pytest.raises(openai.APIStatusError) as info:
        client.files.create(
            file=("big.jsonl", io.BytesIO(b"x" * 20_000_000), "application/jsonl"), purpose="batch"
        )
    assert info.value.status_code == 413 and "file too large" in info.value.message
    assert len(server.seen) == 1


def test_an_upload_cut_off_without_an_answer_is_a_connection_error(serve):
    server = serve(lambda seen: [RESET], read_bodies=False)
    with pytest.raises(openai.APIConnectionError) as info:
        sdk(server.url).files.create(file=("big.jsonl", io.BytesIO(b"x" * 20_000_000)), purpose="batch")
    assert httpx2.WriteError in causes(info.value)
    assert len(server.seen) == 1


# ----- which stack make_client picks ------------------------------------------------------------------------

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy")
PROXY = "http://127.0.0.1:9"
OPENAI = "https://api.openai.com/v1"
LOCAL = "http://127.0.0.1:8000/v1"
STACKS = {
    "no proxy": ({}, OPENAI, KeepAliveTransport),
    "https proxy": ({"HTTPS_PROXY": PROXY}, OPENAI, httpx2.HTTPTransport),
    "lower-case https proxy": ({"https_proxy": PROXY}, OPENAI, httpx2.HTTPTransport),
    "all proxy": ({"ALL_PROXY": PROXY}, LOCAL, httpx2.HTTPTransport),
    "http proxy, http URL": ({"HTTP_PROXY": PROXY}, LOCAL, httpx2.HTTPTransport),
    "https proxy, http URL": ({"HTTPS_PROXY": PROXY}, LOCAL, KeepAliveTransport),
    "host in NO_PROXY": (
        {"HTTPS_PROXY": PROXY, "NO_PROXY": "localhost,api.openai.com"},
        OPENAI,
        KeepAliveTransport,
    ),
    "host:port in NO_PROXY": ({"ALL_PROXY": PROXY, "NO_PROXY": "127.0.0.1:8000"}, LOCAL, KeepAliveTransport),
    "NO_PROXY=*": ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, OPENAI, KeepAliveTransport),
    "escape hatch": ({"LEAD_STUDIO_HTTP": "httpx"}, OPENAI, httpx2.HTTPTransport),
    "escape hatch, local": ({"LEAD_STUDIO_HTTP": "HTTPX"}, LOCAL, httpx2.HTTPTransport),
}


@pytest.mark.parametrize("env, base_url, transport", STACKS.values(), ids=STACKS.keys())
def test_make_client_falls_back_to_httpx2_when_a_proxy_applies_or_ops_ask(
    monkeypatch, env, base_url, transport
):
    for name in (*PROXY_VARS, "no_proxy", "LEAD_STUDIO_HTTP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = make_client(Endpoint(api_key=f"sk-test-stack-{sorted(env.items())}", base_url=base_url))
    assert type(client._client._transport) is transport
    assert http_stack(base_url) == ("keepalive" if transport is KeepAliveTransport else "httpx")
    assert make_client(Endpoint(api_key=f"sk-test-stack-{sorted(env.items())}", base_url=base_url)) is client


def test_the_client_cache_follows_a_change_of_stack(monkeypatch):
    monkeypatch.delenv("LEAD_STUDIO_HTTP", raising=False)
    endpoint = Endpoint(api_key="sk-test-cache-stack", base_url=LOCAL)
    fast = make_client(endpoint)
    monkeypatch.setenv("LEAD_STUDIO_HTTP", "httpx")
    slow = make_client(endpoint)
    assert slow is not fast and type(slow._client._transport) is httpx2.HTTPTransport


# ----- TLS -------------------------------------------------------------------------------------------------


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Two self-signed certificates for "localhost" only (not 127.0.0.1): the server's and a stranger's."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    folder = tmp_path_factory.mktemp("tls")
    return {name: self_signed(folder, name) for name in ("server", "stranger")}


@pytest.fixture
def tls_server(serve, certificates) -> ScriptedServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificates["server"])
    return serve(echo, tls=context)


TLS = {
    "trusted, right name": ("localhost", True, None),
    "trusted, wrong name": ("127.0.0.1", True, "IP address mismatch"),
    "not trusted": ("localhost", False, "self-signed certificate"),  # only the stranger's is trusted
}


@pytest.mark.parametrize("host, trusted, failure", TLS.values(), ids=TLS.keys())
def test_https_verifies_the_certificate_and_the_host_name(
    monkeypatch, certificates, tls_server, host, trusted, failure
):
    # httpx2.create_ssl_context() reads SSL_CERT_FILE, as the SDK's default client does.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["server" if trusted else "stranger"][0]))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    client = make_client(
        Endpoint(api_key=f"sk-test-tls-{host}-{trusted}", base_url=f"https://{host}:{tls_server.port}/v1")
    )
    assert type(client._client._transport) is KeepAliveTransport
    if failure is None:
        for row in range(3):
            assert post(client, row).json() == {"path": "/v1/chat/completions", "row": str(row)}
        assert tls_server.connections == 1  # kept alive (TLS 1.3 session tickets do not make it look stale)
        return
    with pytest.raises(openai.APIConnectionError) as info:
        post(client, 7)
    assert ssl.SSLCertVerificationError in causes(info.value)
    assert failure in str(info.value.__cause__)
    assert tls_server.seen == []
