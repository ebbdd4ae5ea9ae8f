"""The simulator's own model rules (lib/sim/models.py) over real HTTP: OpenAI's exact refusals, reasoning
tokens by effort, shutdowns, /v1/models, extra_models, service tiers.

The `sim` fixture pins the simulator's date to 2026-12-05 (tests/conftest.py): gpt-4.1-nano and o4-mini are
shut down then, gpt-5-mini (11 Dec 2026) and gpt-4o-mini (14 Jan 2027) still answer.
"""

from __future__ import annotations

import dataclasses
import json

import httpx2
import openai
import pytest

from lib.sim import SimConfig, replies
from lib.sim.models import LINEUP, ModelRules, check_request, known_rules, openai_list, rules_from_spec
from lib.sim.server import build_parser, config_from_args, config_to_argv
from tests.conftest import SIM_TODAY
from tests.engine_helpers import wait_until

KEY = "sk-test-sim-models"


def msgs(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def client(sim) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.url, max_retries=0, timeout=10)


def refused(sim, model: str, **kwargs) -> tuple[int, dict]:
    """The status and whole JSON body of a chat request the server refuses."""
    with pytest.raises(openai.APIStatusError) as info:
        client(sim).chat.completions.create(model=model, messages=msgs("rules row"), **kwargs)
    return info.value.status_code, info.value.response.json()


def body(message: str, param: str | None, code: str | None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


MAX_TOKENS = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."


def temperature_text(name: str, value: str) -> str:
    return (
        f"Unsupported value: '{name}' does not support {value} with this model. "
        "Only the default (1) value is supported."
    )


def effort_text(value: str, supported: str) -> str:
    return (
        f"Unsupported value: 'reasoning_effort' does not support '{value}' with this model. "
        f"Supported values are: {supported}."
    )


EFFORT_PARAM = "Unsupported parameter: 'reasoning_effort' is not supported with this model."


def not_found(model: str) -> dict:
    return body(
        f"The model `{model}` does not exist or you do not have access to it.", None, "model_not_found"
    )


# ----- refusals, exact bodies -------------------------------------------------------------------------------

REFUSALS = {
    "max_tokens on gpt-6": ("gpt-6-luna", {"max_tokens": 50}, 400, body(MAX_TOKENS, "max_tokens", "unsupported_parameter")),
    "max_tokens on o3": ("o3", {"max_tokens": 50}, 400, body(MAX_TOKENS, "max_tokens", "unsupported_parameter")),
    "max_tokens on gpt-5.x": ("gpt-5.4-mini", {"max_tokens": 9}, 400, body(MAX_TOKENS, "max_tokens", "unsupported_parameter")),
    "max_tokens before temperature": (
        "gpt-6-luna", {"max_tokens": 50, "temperature": 0.7}, 400,
        body(MAX_TOKENS, "max_tokens", "unsupported_parameter"),
    ),
    "temperature 0.7": (
        "gpt-6-luna", {"temperature": 0.7}, 400,
        body(temperature_text("temperature", "0.7"), "temperature", "unsupported_value"),
    ),
    "temperature 0": (
        "gpt-5-mini", {"temperature": 0}, 400,
        body(temperature_text("temperature", "0"), "temperature", "unsupported_value"),
    ),
    "top_p": ("o3", {"top_p": 0.5}, 400, body(temperature_text("top_p", "0.5"), "top_p", "unsupported_value")),
    "effort none on o-series": (
        "o3", {"reasoning_effort": "none"}, 400,
        body(effort_text("none", "'low', 'medium', and 'high'"), "reasoning_effort", "unsupported_value"),
    ),
    "effort none on gpt-5": (
        "gpt-5-mini", {"reasoning_effort": "none"}, 400,
        body(effort_text("none", "'minimal', 'low', 'medium', and 'high'"), "reasoning_effort", "unsupported_value"),
    ),
    "effort minimal on gpt-6": (
        "gpt-6.1-sol", {"reasoning_effort": "minimal"}, 400,
        body(
            effort_text("minimal", "'none', 'low', 'medium', 'high', 'xhigh', and 'max'"),
            "reasoning_effort", "unsupported_value",
        ),
    ),
    "effort xhigh on gpt-5.x": (
        "gpt-5.4", {"reasoning_effort": "xhigh"}, 400,
        body(effort_text("xhigh", "'none', 'low', 'medium', and 'high'"), "reasoning_effort", "unsupported_value"),
    ),
    "effort low on gpt-5-pro": (
        "gpt-5-pro", {"reasoning_effort": "low"}, 400,
        body(effort_text("low", "'high'"), "reasoning_effort", "unsupported_value"),
    ),
    "effort on gpt-4o-mini": (
        "gpt-4o-mini", {"reasoning_effort": "low"}, 400, body(EFFORT_PARAM, "reasoning_effort", "unsupported_parameter"),
    ),
    "effort on gpt-5-chat-latest": (
        "gpt-5-chat-latest", {"reasoning_effort": "none"}, 400,
        body(EFFORT_PARAM, "reasoning_effort", "unsupported_parameter"),
    ),
    "output cap above the model's": (
        "gpt-4o-mini", {"max_tokens": 20_000}, 400,
        body(
            "max_tokens is too large: 20000. This model supports at most 16384 completion tokens, whereas you "
            "provided 20000.", "max_tokens", "invalid_value",
        ),
    ),
    "shut down": ("gpt-4.1-nano", {}, 404, not_found("gpt-4.1-nano")),
    "shut down before any parameter": (
        "o4-mini", {"max_tokens": 5, "temperature": 0.2, "reasoning_effort": "max"}, 404, not_found("o4-mini"),
    ),
    "a shut-down model's snapshot": ("gpt-4.1-nano-2025-04-14", {}, 404, not_found("gpt-4.1-nano-2025-04-14")),
    "never served": ("gpt-9-mini", {}, 404, not_found("gpt-9-mini")),
    "fast on a model without it": (
        "gpt-4o-mini", {"service_tier": "fast"}, 400,
        body("Fast processing is not available for the model gpt-4o-mini.", "service_tier", "unsupported_value"),
    ),
    "fast on gpt-5.x": (
        "gpt-5.5", {"service_tier": "fast"}, 400,
        body("Fast processing is not available for the model gpt-5.5.", "service_tier", "unsupported_value"),
    ),
    "flex on a model without it": (
        "gpt-4.1", {"service_tier": "flex"}, 400,
        body("Flex processing is not available for the model gpt-4.1.", "service_tier", "unsupported_value"),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("model", "kwargs", "status", "expected"), REFUSALS.values(), ids=REFUSALS)
def test_refusals_are_openais_exact_bodies(sim, model, kwargs, status, expected):
    assert refused(sim, model, **kwargs) == (status, expected)
    assert sim.ledger() == []  # nothing refused is billed


ACCEPTED = {
    "gpt-6 at the defaults": ("gpt-6-luna", {}),
    "gpt-6 with its own shape": (
        "gpt-6-luna",
        {"max_completion_tokens": 4000, "temperature": 1, "top_p": 1, "reasoning_effort": "none"},
    ),
    "gpt-6 at max": ("gpt-6-astra", {"reasoning_effort": "max", "max_completion_tokens": 9000}),
    "gpt-5 at minimal": ("gpt-5-nano", {"reasoning_effort": "minimal"}),
    "gpt-5.x at none": ("gpt-5.6-terra", {"reasoning_effort": "none", "max_completion_tokens": 300}),
    "a classic model's shape": ("gpt-4o-mini", {"max_tokens": 300, "temperature": 0.7, "top_p": 0.9}),
    "max_completion_tokens on a classic model": ("gpt-4.1-mini", {"max_completion_tokens": 300}),
    "gpt-5-chat-latest takes a temperature": ("gpt-5-chat-latest", {"temperature": 0.2}),
    "a dated snapshot": ("gpt-4o-mini-2024-07-18", {"max_tokens": 300}),
    "gpt-5-mini before its shutdown": ("gpt-5-mini", {"max_completion_tokens": 2000}),
    "flex on gpt-6": ("gpt-6-sol", {"service_tier": "flex"}),
    "flex on gpt-5.x": ("gpt-5.4-mini", {"service_tier": "flex"}),
    "fast on gpt-6": ("gpt-6.2-luna", {"service_tier": "fast"}),
    "a gpt-6 name the lineup lacks, once served": ("gpt-6.3-nova", {"reasoning_effort": "xhigh"}),
}


@pytest.mark.parametrize(("model", "kwargs"), ACCEPTED.values(), ids=ACCEPTED)
def test_requests_in_the_models_shape_are_answered(sim, model, kwargs):
    if model not in sim.config.models and "-20" not in model:
        sim.configure(models=[*sim.config.models, model])
    reply = client(sim).chat.completions.create(model=model, messages=msgs("fine row"), **kwargs)
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content
    assert reply.service_tier == {"flex": "flex", "fast": "fast"}.get(kwargs.get("service_tier"), "default")
    assert [e["service_tier"] for e in sim.ledger()] == [reply.service_tier]


# ----- reasoning tokens by effort ---------------------------------------------------------------------------

EFFORTS = {
    # model, effort sent (None: none sent), effort served, multiple of the medium draw
    "gpt-6 default is medium": ("gpt-6-luna", None, "medium", 1.0),
    "gpt-6 none": ("gpt-6-luna", "none", "none", 0.0),
    "gpt-6 low": ("gpt-6-luna", "low", "low", 0.25),
    "gpt-6 high": ("gpt-6-luna", "high", "high", 2.5),
    "gpt-6 xhigh": ("gpt-6-luna", "xhigh", "xhigh", 5.0),
    "gpt-6 max": ("gpt-6-luna", "max", "max", 10.0),
    "gpt-5.x default is none": ("gpt-5.4-mini", None, "none", 0.0),
    "gpt-5 minimal": ("gpt-5-mini", "minimal", "minimal", 1 / 16),
    "gpt-5 default is medium": ("gpt-5-mini", None, "medium", 1.0),
    "o-series default is medium": ("o3", None, "medium", 1.0),
    "a classic model never reasons": ("gpt-4o-mini", None, None, 0.0),
}


@pytest.mark.parametrize(("model", "sent", "served", "scale"), EFFORTS.values(), ids=EFFORTS)
def test_reasoning_tokens_follow_the_effort_and_are_billed_as_output(sim, model, sent, served, scale):
    messages = msgs("Company: Initech; Name: Peter Gibbons; Title: VP Sales")
    extra = {"reasoning_effort": sent} if sent else {}
    reply = client(sim).chat.completions.create(model=model, messages=messages, **extra)
    medium = replies.reasoning_tokens(messages, model, "medium")
    assert 64 <= medium <= 512 and medium % 64 == 0
    reasoning = reply.usage.completion_tokens_details.reasoning_tokens
    assert reasoning == int(medium * scale)
    visible = replies.completion_tokens(reply.choices[0].message.content, model)
    assert reply.usage.completion_tokens == visible + reasoning  # hidden reasoning is billed as output
    [entry] = sim.ledger()
    assert (entry["reasoning_tokens"], entry["reasoning_effort"]) == (reasoning, served)
    assert entry["completion_tokens"] == reply.usage.completion_tokens


def test_a_short_cap_at_medium_is_mostly_spent_on_reasoning(sim):
    """max_completion_tokens 80 at gpt-6-luna's default effort: empty answers cut at "length", or partial ones;
    the same rows at effort none are answered whole."""
    sdk = client(sim)
    rows = [msgs(f"Company: Acme {i}; Name: Lead {i}") for i in range(24)]
    empty = partial = 0
    for messages in rows:
        reply = sdk.chat.completions.create(model="gpt-6-luna", messages=messages, max_completion_tokens=80)
        choice, usage = reply.choices[0], reply.usage
        assert choice.finish_reason == "length" and usage.completion_tokens == 80  # the whole cap is paid
        thought = replies.reasoning_tokens(messages, "gpt-6-luna", "medium")
        assert usage.completion_tokens_details.reasoning_tokens == min(thought, 80)
        if choice.message.content == "":
            empty += 1
        else:
            partial += 1
            assert replies.expected_reply(messages, "gpt-6-luna").startswith(choice.message.content)
    assert empty > partial > 0
    for messages in rows:
        reply = sdk.chat.completions.create(
            model="gpt-6-luna", messages=messages, max_completion_tokens=80, reasoning_effort="none"
        )
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage.completion_tokens_details.reasoning_tokens == 0
        assert reply.choices[0].message.content == replies.expected_reply(messages, "gpt-6-luna")


def test_streamed_answers_report_the_tier_and_reasoning(sim):
    stream = client(sim).chat.completions.create(
        model="gpt-6-luna",
        messages=msgs("streamed"),
        service_tier="fast",
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {c.service_tier for c in chunks} == {"fast"}
    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == replies.reasoning_tokens(
        msgs("streamed"), "gpt-6-luna", "low"
    )


# ----- shutdown dates ---------------------------------------------------------------------------------------

SHUTDOWNS = [
    # today, model, answers, its shutdown_date
    ("2026-10-22", "o4-mini", True, "2026-10-23"),
    ("2026-10-23", "o4-mini", False, "2026-10-23"),
    ("2026-12-05", "gpt-3.5-turbo", False, "2026-10-23"),
    ("2026-12-10", "gpt-5-mini", True, "2026-12-11"),
    ("2026-12-11", "gpt-5-mini", False, "2026-12-11"),
    ("2026-12-11", "o3-pro", False, "2026-12-11"),
    ("2027-01-13", "gpt-4o-mini", True, "2027-01-14"),
    ("2027-01-14", "gpt-4o-mini", False, "2027-01-14"),
    ("2027-01-14", "gpt-4o-mini-2024-07-18", False, "2027-01-14"),
    ("2030-01-01", "gpt-6-luna", True, None),
]


@pytest.mark.parametrize(("today", "model", "answers", "date"), SHUTDOWNS)
def test_a_model_answers_until_its_shutdown_date_then_404s_everywhere(sim, today, model, answers, date):
    sim.configure(today=today)
    sdk = client(sim)
    listed = {m.id: m for m in sdk.models.list()}
    if answers:
        assert sdk.chat.completions.create(model=model, messages=msgs("x")).choices[0].message.content
        assert sdk.models.retrieve(model).shutdown_date == date  # the warning a client can show
        if model in sim.config.models:
            assert listed[model].shutdown_date == date
        return
    assert refused(sim, model) == (404, not_found(model))
    with pytest.raises(openai.NotFoundError) as info:
        sdk.models.retrieve(model)
    assert info.value.response.json() == not_found(model)
    assert model not in listed


def test_the_models_list_at_the_tests_date(sim):
    listed = {m.id: m.model_dump() for m in client(sim).models.list()}
    current = {name for name, rules in LINEUP.items() if (rules.shutdown_date or "9999") > SIM_TODAY}
    assert set(listed) == current
    assert {"gpt-6-luna", "gpt-6.1-terra", "gpt-5.6-sol", "gpt-5-mini", "gpt-4o-mini", "o3"} <= current
    assert not {"gpt-4.1-nano", "o4-mini", "gpt-3.5-turbo", "gpt-4", "o1", "o3-mini"} & current
    assert listed["gpt-6-luna"] == {
        "id": "gpt-6-luna",
        "object": "model",
        "created": listed["gpt-6-luna"]["created"],
        "owned_by": "system",
        "shutdown_date": None,
    }
    dates = {name: entry["shutdown_date"] for name, entry in listed.items()}
    assert dates["gpt-4o-mini"] == dates["gpt-4.1"] == "2027-01-14"
    assert dates["gpt-5"] == dates["gpt-5-pro"] == dates["o3"] == "2026-12-11"


def test_list_models_false_answers_404_and_chat_goes_on(sim):
    sim.configure(list_models=False)
    sdk = client(sim)
    for call in (lambda: list(sdk.models.list()), lambda: sdk.models.retrieve("gpt-6-luna")):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.response.json()["error"]["message"].startswith("Invalid URL (GET /v1/models")
    assert sdk.chat.completions.create(model="gpt-6-luna", messages=msgs("still here")).choices


def test_a_batch_line_on_a_shut_down_model_fails_with_the_404(sim):
    sim.configure(batch_validating_s=0.01, batch_in_progress_s=0.05, batch_finalizing_s=0.01)
    sdk = client(sim)
    lines = [
        {"custom_id": "row-1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4.1-nano", "messages": msgs("retired")}},
        {"custom_id": "row-2", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-6-luna", "messages": msgs("current"), "max_tokens": 50}},
        {"custom_id": "row-3", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-6-luna", "messages": msgs("current"), "reasoning_effort": "none"}},
    ]  # fmt: skip
    data = "\n".join(json.dumps(line) for line in lines).encode()
    upload = sdk.files.create(file=("in.jsonl", data), purpose="batch")
    made = sdk.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert wait_until(lambda: sdk.batches.retrieve(made.id).status == "completed", timeout=20)
    done = sdk.batches.retrieve(made.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    errors = {
        e["custom_id"]: e["response"]
        for e in map(json.loads, sdk.files.content(done.error_file_id).text.splitlines())
    }
    assert errors["row-1"]["status_code"] == 404 and errors["row-1"]["body"] == not_found("gpt-4.1-nano")
    assert errors["row-2"]["body"] == body(MAX_TOKENS, "max_tokens", "unsupported_parameter")
    [entry] = sim.ledger()
    assert entry["batch"] and entry["reasoning_effort"] == "none" and entry["reasoning_tokens"] == 0


# ----- extra_models: rules for names no table knows ---------------------------------------------------------


def test_an_unknown_reasoning_model_refuses_like_openai_and_is_listed(sim):
    sim.configure(extra_models={"acme-reasoner-2": {"reasoning": True, "efforts": ["low", "medium", "high"]}})
    assert refused(sim, "acme-reasoner-2", max_tokens=50) == (
        400,
        body(MAX_TOKENS, "max_tokens", "unsupported_parameter"),
    )
    assert refused(sim, "acme-reasoner-2", temperature=0.7)[1] == body(
        temperature_text("temperature", "0.7"), "temperature", "unsupported_value"
    )
    assert refused(sim, "acme-reasoner-2", reasoning_effort="none")[1] == body(
        effort_text("none", "'low', 'medium', and 'high'"), "reasoning_effort", "unsupported_value"
    )
    reply = client(sim).chat.completions.create(
        model="acme-reasoner-2", messages=msgs("learned"), max_completion_tokens=4000, reasoning_effort="low"
    )
    assert reply.usage.completion_tokens_details.reasoning_tokens == replies.reasoning_tokens(
        msgs("learned"), "acme-reasoner-2", "low"
    )
    listed = {m.id: m.shutdown_date for m in client(sim).models.list()}
    assert "acme-reasoner-2" in listed and listed["acme-reasoner-2"] is None


EXTRA = {
    # spec, model, request, status (200: answered)
    "a plain alias takes the classic shape": ({}, "team/fast", {"max_tokens": 50, "temperature": 0.3}, 200),
    "a plain alias takes no effort": ({}, "team/fast", {"reasoning_effort": "low"}, 400),
    "a model with a shutdown date past": ({"shutdown_date": "2026-11-30"}, "acme-old", {}, 404),
    "a model with a shutdown date to come": ({"shutdown_date": "2027-03-01"}, "acme-old", {}, 200),
    "a known model given fast": ({"fast": True}, "gpt-4o-mini", {"service_tier": "fast"}, 200),
    "a known model's shutdown moved": ({"shutdown_date": "2026-12-01"}, "gpt-6-luna", {}, 404),
    "refuses max_tokens without reasoning": (
        {"refuses_max_tokens": True},
        "az-deploy",
        {"max_tokens": 9},
        400,
    ),
    "a small output limit": ({"max_output_tokens": 100}, "az-deploy", {"max_completion_tokens": 101}, 400),
}


@pytest.mark.parametrize(("spec", "model", "kwargs", "status"), EXTRA.values(), ids=EXTRA)
def test_extra_models_rules(sim, spec, model, kwargs, status):
    sim.configure(extra_models={model: spec})
    if status != 200:
        assert refused(sim, model, **kwargs)[0] == status
        return
    assert client(sim).chat.completions.create(model=model, messages=msgs("extra"), **kwargs).choices


def test_extra_models_round_trip_through_the_admin_endpoint(sim):
    spec = {"acme-reasoner-2": {"reasoning": True, "efforts": ["low", "high"], "shutdown_date": "2027-06-30"}}
    admin = sim.url.removesuffix("/v1")
    answer = httpx2.post(f"{admin}/_sim/config", json={"extra_models": spec, "today": "2026-12-05"})
    assert answer.status_code == 200 and answer.json()["extra_models"] == spec
    config = httpx2.get(f"{admin}/_sim/config").json()
    assert SimConfig.from_dict(config).extra_models == spec and config["list_models"] is True
    assert client(sim).models.retrieve("acme-reasoner-2").shutdown_date == "2027-06-30"
    assert refused(sim, "acme-reasoner-2", reasoning_effort="medium")[1] == body(
        effort_text("medium", "'low' and 'high'"), "reasoning_effort", "unsupported_value"
    )
    bad = httpx2.post(
        f"{admin}/_sim/config", json={"extra_models": {"x": {"reasoning": True, "effort": "low"}}}
    )
    assert bad.status_code == 400 and "unknown rule fields ['effort']" in bad.json()["error"]["message"]


BAD_CONFIGS = {
    "today not a date": ({"today": "5 Dec 2026"}, "today must be a date as YYYY-MM-DD"),
    "today impossible": ({"today": "2026-02-30"}, "today must be a real date"),
    "an unknown rule field": ({"extra_models": {"m": {"reasons": True}}}, "unknown rule fields ['reasons']"),
    "an unknown effort": (
        {"extra_models": {"m": {"reasoning": True, "efforts": ["huge"]}}},
        "unknown reasoning",
    ),
    "a default effort not taken": (
        {"extra_models": {"m": {"reasoning": True, "default_effort": "max"}}},
        "default_effort 'max' must be one of",
    ),
    "efforts on a plain model": ({"extra_models": {"m": {"efforts": ["low"]}}}, "only a reasoning model"),
    "a bad shutdown date": (
        {"extra_models": {"m": {"shutdown_date": "soon"}}},
        "shutdown_date must be a date",
    ),
    "rules not an object": ({"extra_models": {"m": ["reasoning"]}}, "must be an object of rule fields"),
}


@pytest.mark.parametrize(("changes", "words"), BAD_CONFIGS.values(), ids=BAD_CONFIGS)
def test_bad_model_config_is_refused_with_a_clear_message(changes, words):
    with pytest.raises(ValueError) as info:
        SimConfig(**changes)
    assert words in str(info.value)


def test_new_config_fields_survive_the_command_line():
    config = SimConfig(
        today="2026-12-05",
        list_models=False,
        extra_models={"acme-reasoner-2": {"reasoning": True, "efforts": ["low", "high"]}},
        flex_models=(),
        cache_write_models=("gpt-6-luna",),
    )
    again = config_from_args(build_parser().parse_args(config_to_argv(config)))
    assert again == config and again.flex_models == () and again.list_models is False
    assert SimConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# ----- service tiers and cache writes -----------------------------------------------------------------------


def prompt_details(sdk: openai.OpenAI, model: str) -> dict:
    """usage.prompt_tokens_details exactly as the server sent it."""
    raw = sdk.chat.completions.with_raw_response.create(model=model, messages=msgs("cache"))
    return json.loads(raw.text)["usage"]["prompt_tokens_details"]


@pytest.mark.parametrize(
    ("model", "flex", "fast", "cache_write"),
    [
        ("gpt-6-luna", True, True, True),
        ("gpt-6.1-terra", True, True, True),
        ("gpt-5.4-nano", True, False, False),
        ("gpt-5-mini", True, False, False),
        ("o3", True, False, False),
        ("gpt-5-pro", False, False, False),
        ("gpt-4o-mini", False, False, False),
    ],
)
def test_tiers_and_cache_writes_by_model(sim, model, flex, fast, cache_write):
    sdk = client(sim)
    for tier, takes in (("flex", flex), ("fast", fast)):
        try:
            reply = sdk.chat.completions.create(model=model, messages=msgs(tier), service_tier=tier)
        except openai.BadRequestError as err:
            assert not takes and err.param == "service_tier" and err.code == "unsupported_value"
        else:
            assert takes and reply.service_tier == tier
    assert ("cache_write_tokens" in prompt_details(sdk, model)) == cache_write


def test_flex_and_cache_write_lists_override_the_rules(sim):
    sim.configure(flex_models=["gpt-4o-mini"], cache_write_models=[])
    sdk = client(sim)
    assert sdk.chat.completions.create(model="gpt-4o-mini", messages=msgs("f"), service_tier="flex").choices
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="gpt-6-luna", messages=msgs("f"), service_tier="flex")
    assert "cache_write_tokens" not in prompt_details(sdk, "gpt-6-luna")


# ----- other servers' wording of the same refusals ----------------------------------------------------------

STYLED = {
    # style, model, request, the whole body
    "azure passes a parameter refusal through": (
        "azure", "gpt-6-luna", {"max_tokens": 5}, body(MAX_TOKENS, "max_tokens", "unsupported_parameter"),
    ),
    "azure's 404": (
        "azure", "gpt-4.1-nano", {},
        {"error": {"code": "404", "message": not_found("gpt-4.1-nano")["error"]["message"]}},
    ),
    "litellm wraps a 400 and keeps the param": (
        "litellm", "gpt-6-luna", {"temperature": 0.5},
        {"error": {
            "message": "litellm.BadRequestError: OpenAIException - " + temperature_text("temperature", "0.5")
            + "\n\nLiteLLM: model group 'gpt-6-luna' failed with the error above. No fallback was attempted.",
            "type": "invalid_request_error", "param": "temperature", "code": "400",
        }},
    ),
    "litellm wraps a 404": (
        "litellm", "gpt-4.1-nano", {},
        {"error": {
            "message": "litellm.NotFoundError: OpenAIException - " + not_found("gpt-4.1-nano")["error"]["message"]
            + "\n\nLiteLLM: model group 'gpt-4.1-nano' failed with the error above. No fallback was attempted.",
            "type": "invalid_request_error", "param": None, "code": "404",
        }},
    ),
    "vllm's top-level error": (
        "vllm", "o3", {"reasoning_effort": "none"},
        {"object": "error", "message": effort_text("none", "'low', 'medium', and 'high'"),
         "type": "BadRequestError", "param": "reasoning_effort", "code": 400},
    ),
    "ollama keeps only the words": (
        "ollama", "gpt-4o-mini", {"reasoning_effort": "low"},
        {"error": {"message": EFFORT_PARAM, "type": "invalid_request_error", "param": None, "code": None}},
    ),
}  # fmt: skip


@pytest.mark.parametrize(("style", "model", "kwargs", "expected"), STYLED.values(), ids=STYLED)
def test_other_servers_word_the_refusals_their_way(sim, style, model, kwargs, expected):
    sim.configure(error_style=style)
    assert refused(sim, model, **kwargs)[1] == expected


# ----- the rules as a table (no server) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "text"),
    [(["high"], "'high'"), (["low", "high"], "'low' and 'high'"), (["a", "b", "c"], "'a', 'b', and 'c'")],
)
def test_lists_are_worded_as_openai_words_them(values, text):
    assert openai_list(values) == text


@pytest.mark.parametrize(
    ("name", "rules_of"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-5.4-pro", "gpt-5.4"),
        ("gpt-6-luna-preview", "gpt-6-luna"),
        ("o1-pro", "o1"),
    ],
)
def test_snapshots_and_variants_follow_their_base_model(name, rules_of):
    assert known_rules(name) == LINEUP[rules_of]


def test_every_gpt6_name_is_the_gpt6_family_and_unknown_names_are_plain():
    assert known_rules("gpt-6.9-zeta") == dataclasses.replace(LINEUP["gpt-6-luna"], shutdown_date=None)
    assert known_rules("llama-3.1-8b-local") is None
    assert check_request({"max_tokens": 10, "temperature": 2}, ModelRules()) is None


def test_a_spec_of_reasoning_alone_gets_the_o_series_shape():
    rules = rules_from_spec("acme-reasoner-2", {"reasoning": True})
    assert (rules.efforts, rules.default_effort, rules.refuses_max_tokens, rules.refuses_temperature) == (
        ("low", "medium", "high"),
        "medium",
        True,
        True,
    )
    assert rules_from_spec("gpt-6-luna", {"reasoning": False}).efforts == ()
