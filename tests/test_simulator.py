"""The simulator, driven through the real openai SDK over real HTTP (and raw sockets where the SDK cannot go)."""

from __future__ import annotations

import concurrent.futures
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from lib.cost import tokens
from lib.sim import ROOT, SimConfig, SimProcess, expected_json, expected_reply, reply_tag
from lib.sim.app import lognormal_seconds
from lib.sim.limits import format_duration
from lib.sim.replies import prompt_tokens
from tests.conftest import SIM_TODAY

RATELIMIT_HEADERS = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
]


def msgs(text: str, system: str = "You enrich sales leads. Answer briefly.") -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def client_for(sim, key: str = "sk-test-simulator", **options) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=sim.url, **{"max_retries": 0, "timeout": 10, **options})


def raw_http(
    sim, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 exchange on a plain socket: what a client that is not the SDK sees."""
    head = {"Host": "sim", "Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(request.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    parsed = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), parsed, payload


# ----- SDK round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini", "gpt-6-luna", "gpt-4o-mini-2024-07-18"]
)
def test_round_trip_parses_every_usage_field(openai_client, sim, model):
    messages = msgs(f"Company: Acme {model}; Name: Jane Doe; Title: VP Sales")
    raw = openai_client.chat.completions.with_raw_response.create(model=model, messages=messages)
    completion = raw.parse()

    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == model
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.refusal is None
    assert choice.message.content == expected_reply(messages, model)
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens == tokens.count_messages(messages, model).tokens
    reasoning = usage.completion_tokens_details.reasoning_tokens
    visible = tokens.count_text(choice.message.content, model).tokens
    assert usage.completion_tokens == visible + reasoning
    assert (reasoning > 0) == model.startswith(("gpt-5", "gpt-6"))  # reasoning models, at medium by default
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    for name in RATELIMIT_HEADERS + ["x-request-id"]:
        assert raw.headers.get(name), name
    assert raw.headers["x-request-id"].startswith("req_")


def test_each_row_gets_its_own_deterministic_reply(openai_client):
    replies = {}
    for i in range(20):
        messages = msgs(f"Row {i}: Company {i * 7} Ltd")
        reply = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        replies[i] = reply.choices[0].message.content
        assert replies[i].startswith(f"SIM[{reply_tag(messages)}] ")
    assert len(set(replies.values())) == 20
    lengths = [tokens.count_text(r, "gpt-4o-mini").tokens for r in replies.values()]
    assert min(lengths) >= 8 and max(lengths) <= 80 and max(lengths) - min(lengths) > 10


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-5-nano"])
def test_streaming(openai_client, model, include_usage):
    messages = msgs("Stream this lead: Globex, Hank Scorpio")
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        openai_client.chat.completions.create(model=model, messages=messages, stream=True, **options)
    )

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(messages, model)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == (1 if include_usage else 0)
    if include_usage:
        assert (
            chunks[-1].choices == []
            and usage[0].prompt_tokens == tokens.count_messages(messages, model).tokens
        )


def test_models_list_and_retrieve(openai_client):
    ids = {m.id for m in openai_client.models.list()}
    assert {
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-6-luna",
    } <= ids
    assert not {"gpt-4.1-nano", "o4-mini"} & ids  # shut down before the tests' date
    assert openai_client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("gpt-9")


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}],
        msgs("Company: Initech; Name: Peter Gibbons"),
        [
            {"role": "system", "content": "x " * 500, "name": "ops"},
            {"role": "user", "content": "Ünïcode — 東京 🚀"},
        ],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "parts"}, {"type": "text", "text": " joined"}],
            }
        ],
    ],
)
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-3.5-turbo", "my-local-llama"])
def test_prompt_token_fast_path_equals_count_messages(messages, model):
    assert prompt_tokens(messages, model) == tokens.count_messages(messages, model).tokens


# ----- structured output -------------------------------------------------------------------------------------

NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "employees": {"type": "integer", "minimum": 1, "maximum": 5000},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "is_b2b": {"type": "boolean"},
        "segment": {"type": "string", "enum": ["smb", "mid-market", "enterprise"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
        "contact": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "phone": {"type": ["string", "null"]},
            },
            "required": ["email", "phone"],
            "additionalProperties": False,
        },
    },
    "required": ["company", "employees", "score", "is_b2b", "segment", "tags", "contact"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"opener": {"type": "string"}}, "required": ["opener"]},
        NESTED_SCHEMA,
        {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": NESTED_SCHEMA}},
            "required": ["rows"],
        },
    ],
    ids=["flat", "nested", "array-of-objects"],
)
def test_json_schema_output_validates(openai_client, schema):
    for i in range(3):
        messages = msgs(f"Lead {i}: Umbrella Corp, Alice Wong, alice@umbrella.example")
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "lead", "schema": schema, "strict": True},
        }
        reply = openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, response_format=response_format
        )
        value = json.loads(reply.choices[0].message.content)
        jsonschema.validate(value, schema)
        assert value == expected_json(messages, "gpt-4o-mini", schema)


class Contact(BaseModel):
    email: str
    linkedin: str | None


class Lead(BaseModel):
    company: str
    headcount: int
    fit: float
    contacts: list[Contact]


def test_sdk_parse_with_pydantic_model_refs(openai_client):
    completion = openai_client.chat.completions.parse(
        model="gpt-4o-mini", messages=msgs("Hooli, Gavin Belson"), response_format=Lead
    )
    lead = completion.choices[0].message.parsed
    assert isinstance(lead, Lead) and lead.contacts and isinstance(lead.contacts[0], Contact)


def test_json_object_mode(openai_client):
    reply = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=msgs("JSON please"), response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


# ----- parameters and model rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "param", "limit"),
    [
        ("gpt-4o-mini", "max_tokens", 5),
        ("gpt-4o-mini", "max_completion_tokens", 3),
        ("gpt-4.1-mini", "max_tokens", 1),
    ],
)
def test_max_tokens_truncates_with_length(openai_client, model, param, limit):
    messages = msgs("A long enough lead row to produce a long reply: Massive Dynamic, Nina Sharp, Boston")
    full = expected_reply(messages, model)
    reply = openai_client.chat.completions.create(model=model, messages=messages, **{param: limit})
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == limit
    assert full.startswith(reply.choices[0].message.content)


def test_reasoning_budget_spends_reasoning_first(openai_client):
    messages = msgs("Reasoning budget row")
    reply = openai_client.chat.completions.create(
        model="gpt-5-nano", messages=messages, max_completion_tokens=8
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 8
    assert (
        reply.usage.completion_tokens_details.reasoning_tokens == 8 and reply.choices[0].message.content == ""
    )


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "code", "param"),
    [
        ("gpt-5", {"temperature": 0.2}, openai.BadRequestError, "unsupported_value", "temperature"),
        ("gpt-5-mini", {"max_tokens": 50}, openai.BadRequestError, "unsupported_parameter", "max_tokens"),
        ("o3", {"temperature": 0}, openai.BadRequestError, "unsupported_value", "temperature"),
        ("gpt-4o-mini", {"max_tokens": 0}, openai.BadRequestError, "integer_below_min_value", "max_tokens"),
        ("gpt-9-turbo", {}, openai.NotFoundError, "model_not_found", None),
        ("gpt-5", {"temperature": 1}, None, None, None),
        ("gpt-5-chat-latest", {"temperature": 0.2}, None, None, None),
        ("gpt-5-mini", {"max_completion_tokens": 500}, None, None, None),
        ("gpt-4o", {"temperature": 0.2, "max_tokens": 500}, None, None, None),
    ],
)
def test_model_parameter_rules(openai_client, model, kwargs, error, code, param):
    call = lambda: openai_client.chat.completions.create(model=model, messages=msgs("rules"), **kwargs)  # noqa: E731
    if error is None:
        assert call().choices[0].finish_reason == "stop"
        return
    with pytest.raises(error) as info:
        call()
    assert info.value.code == code and info.value.param == param


def test_context_window_override(openai_client, sim):
    sim.configure(context_window=40)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("short"))
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("word " * 60))
    assert info.value.code == "context_length_exceeded"


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}', 401, "invalid_api_key"),
        ({"Authorization": "Bearer sk-invalid-123"}, b"{}", 401, "invalid_api_key"),
        ({"Authorization": "Bearer sk-ok"}, b"not json", 400, None),
        ({"Authorization": "Bearer sk-ok"}, b"", 400, None),
        ({"Authorization": "Bearer sk-ok"}, b'{"model":"gpt-4o-mini"}', 400, "invalid_value"),
        (
            {"Authorization": "Bearer sk-ok"},
            b'{"model":"gpt-4o-mini","messages":[{"content":"x"}]}',
            400,
            "missing_required_parameter",
        ),
    ],
)
def test_bad_requests_get_openai_error_envelopes(sim, headers, body, status, code):
    got, response_headers, payload = raw_http(sim, "POST", "/v1/chat/completions", body, headers)
    error = json.loads(payload)["error"]
    assert (
        got == status
        and error["code"] == code
        and error["type"] == "invalid_request_error"
        and error["message"]
    )
    assert "sk-invalid-123" not in payload.decode()
    assert (
        response_headers["x-request-id"].startswith("req_")
        and "x-ratelimit-limit-requests" in response_headers
    )


def test_keep_alive_serves_sequential_requests_on_one_connection(sim):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "keep"}]}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer sk-k\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(head.encode() + body)
            assert stream.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := stream.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(stream.read(length))["object"] == "chat.completion"
    assert sim.stats()["by_status"] == {"200": 3}


# ----- directives and faults ---------------------------------------------------------------------------------

ERROR_CASES = [
    # (directive / config probability, exception class, error code, stats kind)
    ("500", openai.InternalServerError, None, "fault_500"),
    ("503", openai.InternalServerError, None, "fault_503"),
    ("429", openai.RateLimitError, "rate_limit_exceeded", "spurious_429"),
    ("quota", openai.RateLimitError, "insufficient_quota", "quota"),
    ("401", openai.AuthenticationError, "invalid_api_key", "auth"),
    ("drop", openai.APIConnectionError, None, "drop"),
]


@pytest.mark.parametrize(("kind", "error", "code", "stat"), ERROR_CASES)
@pytest.mark.parametrize("via", ["directive", "probability"])
def test_faults_raise_the_sdk_exception(sim, openai_client, via, kind, error, code, stat):
    if via == "probability":
        sim.configure(**{f"p_{kind}": 1.0})
    text = f"Row 7 [[sim:{kind}]]" if via == "directive" else "Row 7"
    with pytest.raises(error) as info:
        raw = openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=msgs(text)
        )
        raw.parse()
    assert getattr(info.value, "code", None) == code
    if kind == "429":
        assert int(info.value.response.headers["retry-after-ms"]) > 0
    if kind == "quota":
        assert "retry-after-ms" not in info.value.response.headers
    assert sim.stats()["by_kind"] == {stat: 1}
    assert sim.ledger() == []


@pytest.mark.parametrize("via", ["directive", "probability"])
def test_hang_times_out_the_client(sim, via):
    if via == "probability":
        sim.configure(p_hang=1.0)
    client = client_for(sim, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs("[[sim:hang]]" if via == "directive" else "x")
        )
    assert sim.stats()["hangs"] == 1


@pytest.mark.parametrize("via", ["directive", "probability"])
def test_malformed_body_is_a_json_error_and_still_billed(sim, openai_client, via):
    if via == "probability":
        sim.configure(p_malformed=1.0)
    with pytest.raises(json.JSONDecodeError):
        openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=msgs("[[sim:malformed]]" if via == "directive" else "x"),
            extra_headers={"X-Row-Id": "r9"},
        )
    [record] = sim.ledger()
    assert record["row_id"] == "r9" and record["kind"] == "malformed" and record["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("directive", "finish", "content_is_none", "refusal"),
    [
        ("length", "length", False, False),
        ("content_filter", "content_filter", True, False),
        ("refusal", "stop", True, True),
    ],
)
def test_answer_shaping_directives(openai_client, sim, directive, finish, content_is_none, refusal):
    messages = msgs(f"Row with a fairly long text to cut in half, Wayne Enterprises [[sim:{directive}]]")
    reply = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == finish
    assert (message.content is None) == content_is_none
    assert bool(message.refusal) == refusal
    if directive == "length":
        assert expected_reply(messages, "gpt-4o-mini").startswith(message.content)
    assert len(sim.ledger()) == 1


def test_context_length_directive(openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("[[sim:context_length]]"))
    assert info.value.code == "context_length_exceeded" and info.value.param == "messages"


def test_fail_first_then_succeed_and_sdk_retries_through(sim):
    messages = msgs("Row 3 [[sim:fail_first=2]]")
    client = client_for(sim)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert (
        client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].finish_reason
        == "stop"
    )
    retrying = client_for(sim, max_retries=2)
    other = msgs("Row 4 [[sim:fail_first=2]]")
    assert retrying.chat.completions.create(model="gpt-4o-mini", messages=other).choices[0].message.content
    assert sim.stats()["by_kind"] == {"fault_500": 4, "ok": 2}


def test_latency_directive_and_config(sim, openai_client):
    started = time.monotonic()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("[[sim:latency=250]]"))
    assert 0.24 <= time.monotonic() - started < 2
    sim.configure(latency_ms=150)
    started = time.monotonic()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("fixed"))
    assert 0.14 <= time.monotonic() - started < 2


def test_lognormal_latency_has_the_configured_median_and_p99():
    rng = random.Random(1)
    samples = sorted(lognormal_seconds(rng, 200, 1000) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(0.2, rel=0.05)
    assert samples[19_800] == pytest.approx(1.0, rel=0.1)


def test_seeded_faults_are_reproducible_in_any_order(sim):
    requests = [msgs(f"Seeded row {i}") for i in range(40)]

    def failing(config: SimConfig, order: list[int]) -> set[int]:
        sim.reset(config)
        client = client_for(sim)

        def one(i: int) -> int | None:
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=requests[i])
            except openai.InternalServerError:
                return i
            return None

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return {i for i in pool.map(one, order) if i is not None}

    order = list(range(40))
    first = failing(SimConfig(today=SIM_TODAY, p_500=0.4, seed=7), order)
    random.Random(3).shuffle(order)
    assert failing(SimConfig(today=SIM_TODAY, p_500=0.4, seed=7), order) == first
    assert 5 < len(first) < 30
    assert failing(SimConfig(today=SIM_TODAY, p_500=0.4, seed=8), order) != first


# ----- rate limits, keys, quota ------------------------------------------------------------------------------


def test_rpm_burst_gets_429_with_retry_after(sim):
    sim.configure(rpm=600)  # 10 per second, one-second bucket: capacity 10
    client = client_for(sim)
    outcomes = []
    for i in range(15):
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=msgs(f"b{i}")
            )
            outcomes.append(("ok", raw.headers))
        except openai.RateLimitError as err:
            outcomes.append(("429", err))
    assert [o[0] for o in outcomes].count("ok") in (10, 11)  # one may refill while the others run
    err = next(o[1] for o in outcomes if o[0] == "429")
    assert err.code == "rate_limit_exceeded" and err.type == "requests"
    assert "requests per min (RPM): Limit 600" in err.message
    wait_ms = int(err.response.headers["retry-after-ms"])
    assert 0 < wait_ms <= 100 and err.response.headers["retry-after"] == "1"
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    first_ok = outcomes[0][1]
    assert first_ok["x-ratelimit-limit-requests"] == "600" and int(
        first_ok["x-ratelimit-remaining-requests"]
    ) in (540, 599)
    time.sleep(wait_ms / 1000 + 0.01)
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs("after the wait"))


def test_tpm_charges_prompt_plus_max_tokens(sim):
    sim.configure(tpm=60_000)  # 1,000 tokens per second
    client = client_for(sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs("t1"), max_tokens=900)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs("t2"), max_tokens=900)
    assert info.value.type == "tokens" and "tokens per min (TPM)" in info.value.message
    with pytest.raises(openai.RateLimitError) as too_large:
        client.chat.completions.create(model="gpt-6-luna", messages=msgs("t3"), max_completion_tokens=70_000)
    assert "Request too large" in too_large.value.message
    assert "retry-after-ms" not in too_large.value.response.headers


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("normal", {"x-ratelimit-limit-requests": "6000", "x-ratelimit-reset-tokens": "0s"}),
        ("missing", dict.fromkeys(RATELIMIT_HEADERS)),
        ("zero", {"x-ratelimit-limit-requests": "-1", "x-ratelimit-remaining-requests": "0"}),
    ],
)
def test_ratelimit_header_modes(sim, openai_client, mode, expected):
    sim.configure(rpm=6000, ratelimit_headers=mode)
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs("h"))
    for name, value in expected.items():
        assert raw.headers.get(name) == value
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("[[sim:429]]"))
    assert ("x-ratelimit-limit-tokens" in info.value.response.headers) == (mode != "missing")


def test_limits_are_per_key_and_shared_by_clients_on_one_key(sim):
    sim.configure(rpm=60)  # capacity one request
    a1, a2, b = client_for(sim, "sk-key-a"), client_for(sim, "sk-key-a"), client_for(sim, "sk-key-b")
    a1.chat.completions.create(model="gpt-4o-mini", messages=msgs("a1"))
    with pytest.raises(openai.RateLimitError):
        a2.chat.completions.create(model="gpt-4o-mini", messages=msgs("a2"))
    b.chat.completions.create(model="gpt-4o-mini", messages=msgs("b"))
    hashes = {r["key_hash"] for r in sim.ledger()}
    assert len(hashes) == 2 and all(len(h) == 12 and "sk-" not in h for h in hashes)


@pytest.mark.parametrize(
    ("setting", "error", "code"),
    [
        ("quota_after", openai.RateLimitError, "insufficient_quota"),
        ("fail_401_after", openai.AuthenticationError, "invalid_api_key"),
    ],
)
def test_after_n_answers_a_key_is_cut_off(sim, setting, error, code):
    sim.configure(**{setting: 2})
    client = client_for(sim, "sk-cut")
    for i in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs(f"q{i}"))
    for i in range(2):
        with pytest.raises(error) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs(f"after {i}"))
        assert info.value.code == code
    client_for(sim, "sk-other").chat.completions.create(model="gpt-4o-mini", messages=msgs("fresh key"))
    assert len(sim.ledger()) == 3


# ----- ledger, caching, admin --------------------------------------------------------------------------------


def test_ledger_totals_equal_what_the_sdk_reported(sim, openai_client):
    def one(i: int):
        model = ("gpt-4o-mini", "gpt-5-nano")[i % 2]
        return openai_client.chat.completions.create(
            model=model, messages=msgs(f"Lead {i}"), extra_headers={"X-Row-Id": f"row-{i}"}
        )

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(one, range(30)))
    ledger = sim.ledger()
    assert sorted(r["row_id"] for r in ledger) == sorted(f"row-{i}" for i in range(30))
    for field in ("prompt_tokens", "completion_tokens"):
        assert sum(r[field] for r in ledger) == sum(getattr(c.usage, field) for c in replies)
    assert sum(r["reasoning_tokens"] for r in ledger) == sum(
        c.usage.completion_tokens_details.reasoning_tokens for c in replies
    )
    assert set(ledger[0]) >= {
        "ts",
        "request_id",
        "key_hash",
        "model",
        "row_id",
        "cached_tokens",
        "finish_reason",
        "status",
    }


def test_prompt_caching_of_a_repeated_prefix(openai_client):
    system = "You are a sales researcher. " + " ".join(
        f"Rule {i}: be accurate about fact {i}." for i in range(200)
    )
    first = openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("Row A", system))
    second = openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("Row B", system))
    prefix = tokens.count_messages([{"role": "system", "content": system}], "gpt-4o-mini").tokens - 3
    assert first.usage.prompt_tokens >= 1024 and first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached == prefix // 128 * 128 and cached >= 1024 and cached <= second.usage.prompt_tokens


def test_admin_endpoints(sim, openai_client):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("admin"))
    assert json.loads(raw_http(sim, "GET", "/_sim/health")[2]) == {"status": "ok"}
    assert len(json.loads(raw_http(sim, "GET", "/_sim/ledger")[2])) == 1
    assert json.loads(raw_http(sim, "GET", "/_sim/stats")[2])["by_status"] == {"200": 1}
    status, _, body = raw_http(sim, "POST", "/_sim/config", b'{"rpm": 120}')
    assert status == 200 and json.loads(body)["rpm"] == 120 and sim.config.rpm == 120
    assert raw_http(sim, "POST", "/_sim/config", b'{"nope": 1}')[0] == 400
    status, _, body = raw_http(sim, "POST", "/_sim/reset", b'{"latency_ms": 5}')
    assert status == 200 and sim.config.rpm is None and sim.config.latency_ms == 5 and sim.ledger() == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0004, "1ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.6, "59.6s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_reset_duration_format(seconds, text):
    assert format_duration(seconds) == text


# ----- the subprocess ----------------------------------------------------------------------------------------


def test_cli_prints_one_url_line_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lib.sim",
            "--port",
            "0",
            "--rpm",
            "3000",
            "--p-500",
            "0.05",
            "--seed",
            "7",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(r"SIMULATOR_URL=http://127\.0\.0\.1:\d+/v1\n", line)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout.read() == ""
    finally:
        proc.kill()


def test_sim_process_round_trip_and_ledger_file(tmp_path):
    ledger_path = tmp_path / "ledger.jsonl"
    config = SimConfig(today=SIM_TODAY, rpm=3000, invalid_keys=("sk-bad", "sk-worse"), latency_ms=1)
    with SimProcess(config, ledger_path=ledger_path) as server:
        client = openai.OpenAI(api_key="sk-proc", base_url=server.url, max_retries=0, timeout=10)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs("proc"), extra_headers={"X-Row-Id": "7"}
        )
        assert reply.choices[0].message.content == expected_reply(msgs("proc"), "gpt-4o-mini")
        assert server.ledger()[0]["row_id"] == "7" and server.stats()["billed"] == 1
        server.configure(p_500=1.0)
        assert server.config.p_500 == 1.0 and server.config.invalid_keys == ("sk-bad", "sk-worse")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs("proc"))
        server.reset()
        assert server.ledger() == [] and server.config.p_500 == 1.0
        pid = server.pid
    assert server.proc.returncode == 0 and pid
    [line] = ledger_path.read_text().splitlines()
    assert json.loads(line)["prompt_tokens"] == reply.usage.prompt_tokens and "sk-proc" not in line


# ----- the gate: a test that needs requests in flight holds the server -----------------------------------------


def _ask_in_threads(sim, n: int, key: str = "sk-test-gate") -> list[concurrent.futures.Future]:
    client = client_for(sim, key=key, timeout=30)
    pool = concurrent.futures.ThreadPoolExecutor(n)
    futures = [
        pool.submit(client.chat.completions.create, model="gpt-4o-mini", messages=msgs(f"Lead {i}"))
        for i in range(n)
    ]
    pool.shutdown(wait=False)
    return futures


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("server", ["in-process", "subprocess"])
def test_held_answers_wait_unbilled_until_the_gate_opens(sim, server):
    target = sim if server == "in-process" else SimProcess(SimConfig()).start()
    try:
        target.configure(hold=True)
        futures = _ask_in_threads(target, 3)
        assert wait_for(lambda: target.stats()["held_now"] == 3)
        assert not any(f.done() for f in futures) and target.ledger() == []
        target.configure(hold=False)
        answers = [f.result(timeout=10) for f in futures]
        assert all(a.choices[0].message.content for a in answers)
        assert len(target.ledger()) == 3 and target.stats()["held_now"] == 0
    finally:
        if target is not sim:
            target.stop()


def test_a_reset_drops_held_answers_unbilled(sim):
    sim.configure(hold=True)
    futures = _ask_in_threads(sim, 2)
    assert wait_for(lambda: sim.stats()["held_now"] == 2)
    sim.reset()
    for f in futures:
        with pytest.raises(openai.APIConnectionError):
            f.result(timeout=10)
    assert sim.ledger() == [] and sim.stats()["held_now"] == 0
