"""Real error bodies of OpenAI, Azure OpenAI, LiteLLM, vLLM and Ollama, served over loopback HTTP to the
engine's own client, and what the run makes of each (tests/fixtures/error_bodies.py says where each is from).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import openai
import pytest

from lib.engine import errors
from lib.engine.client import Endpoint, make_client
from lib.engine.governor import Governor, header, retry_after_seconds
from tests.fixtures.error_bodies import BODIES, KEY

BY_NAME = {b.name: b for b in BODIES}


class _Replay(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        case = BY_NAME[self.headers["X-Case"]]
        data = case.body.encode()
        self.send_response(case.status)
        is_json = case.body.lstrip().startswith("{")
        self.send_header("Content-Type", "application/json" if is_json else "text/html")
        self.send_header("Content-Length", str(len(data)))
        for name, value in case.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def replay_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _error(url: str, name: str) -> openai.APIStatusError:
    client = make_client(Endpoint(api_key=KEY, base_url=url), timeout_s=5, connections=2)
    with pytest.raises(openai.APIStatusError) as info:
        client.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            options={"headers": {"X-Case": name}},
        )
    return info.value


@pytest.mark.parametrize("case", BODIES, ids=[b.name for b in BODIES])
def test_each_real_error_body_is_known_by_what_it_says(replay_url, case):
    exc = _error(replay_url, case.name)
    kind, message = errors.classify_status(exc, model="m", secrets=(KEY,))
    assert kind == case.kind, message
    assert case.words in message  # the server's own words reach the user...
    assert KEY not in message  # ...never the key


@pytest.mark.parametrize(
    ("name", "wait_s"),
    [
        ("azure-rate-limit", 9.0),  # Azure's retry-after-ms
        ("litellm-rate-limit", 0.02),  # the upstream's, renamed llm_provider-retry-after-ms by LiteLLM
        ("openai-rate-limit-tpm", 3.89),
        ("litellm-quota-rewritten", None),
    ],
)
def test_the_servers_wait_is_read_under_its_gateway_names(replay_url, name, wait_s):
    headers = _error(replay_url, name).response.headers
    assert retry_after_seconds(headers) == (pytest.approx(wait_s) if wait_s is not None else None)


def test_prefixed_limits_are_learned_and_the_hop_we_talk_to_wins():
    gov = Governor()
    gov.observe(
        {"llm_provider-x-ratelimit-limit-requests": "600", "llm_provider-x-ratelimit-limit-tokens": "90000"}
    )
    assert (gov.state().rpm_limit, gov.state().tpm_limit) == (600, 90000)
    assert (
        header(
            {"x-ratelimit-limit-requests": "2", "llm_provider-x-ratelimit-limit-requests": "600"},
            "x-ratelimit-limit-requests",
        )
        == "2"
    )


@pytest.mark.parametrize(
    ("headers", "cooling"),
    [
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}, 2.0),
        (
            {
                "llm_provider-x-ratelimit-remaining-tokens": "0",
                "llm_provider-x-ratelimit-reset-tokens": "1.5s",
            },
            1.5,
        ),
        (
            {"x-ratelimit-remaining-requests": "-2", "x-ratelimit-reset-requests": "1s"},
            1.0,
        ),  # LiteLLM counts on
        ({"x-ratelimit-remaining-requests": "0"}, 0.0),  # Azure: no reset given, nothing to wait for
        ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "9s"}, 0.0),
    ],
)
def test_an_exhausted_limit_cools_the_key_until_its_reset(headers, cooling):
    gov = Governor()
    gov.observe(headers)
    assert gov.state().cooling_down_s == pytest.approx(cooling, abs=0.05)


# --- connection failures: why nothing answered ------------------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _connection_error(url: str) -> openai.APIConnectionError:
    client = make_client(Endpoint(api_key=KEY, base_url=url), timeout_s=5, connections=2)
    with pytest.raises(openai.APIConnectionError) as info:
        client.post("/chat/completions", cast_to=httpx2.Response, body={"model": "m", "messages": []})
    return info.value


@pytest.mark.parametrize(
    ("url", "kind", "words"),
    [
        (lambda _: f"http://127.0.0.1:{_closed_port()}/v1", "refused", "connection refused"),
        (lambda _: "http://no-such-host.invalid/v1", "dns", "does not resolve"),
        (lambda plain: plain.replace("http://", "https://"), "tls", "TLS"),  # https to a plain-HTTP port
    ],
    ids=["closed-port", "dns", "tls"],  # a URL that is not http(s): tests/test_gateway.py
)
def test_a_missing_endpoint_says_why(replay_url, url, kind, words):
    exc = _connection_error(url(replay_url))
    assert errors.connection_kind(exc) == kind
    assert words in errors.connection_message(exc)


def test_connection_kind_reads_the_cause_chain():
    def chained(cause: BaseException) -> Exception:
        try:
            raise RuntimeError("outer") from cause
        except RuntimeError as exc:
            return exc

    assert errors.connection_kind(chained(ssl.SSLError(1, "wrong version number"))) == "tls"
    assert errors.connection_kind(chained(socket.gaierror(-2, "Name or service not known"))) == "dns"
    assert errors.connection_kind(chained(ConnectionRefusedError(111, "Connection refused"))) == "refused"
    assert errors.connection_kind(chained(ConnectionResetError(104, "reset"))) == "other"


def test_error_fields_of_every_shape():
    assert errors.error_fields({"object": "error", "message": "m", "type": "NotFoundError", "code": 404}) == (
        "404",
        "NotFoundError",
        "",
        "m",
    )
    assert errors.error_fields("plain text") == ("", "", "", "plain text")
    assert errors.error_fields({"error": "ollama says"}) == ("", "", "", "ollama says")
    assert errors.error_fields(json.loads(BY_NAME["litellm-bad-token"].body))[2] == ""  # param "None"
