"""The simulator's Responses API and web_search tool, driven through the real openai SDK over loopback."""

from __future__ import annotations

import concurrent.futures
import json
import time
from fractions import Fraction

import openai
import pytest
from pydantic import BaseModel

from lib.cost import tokens
from lib.prompts import packing
from lib.sim import SimConfig, billed_calls, cited_reply, expected_reply, web_search_cost, websearch
from lib.sim.models import SEARCH_CONTENT_TOKENS, WEB_SEARCH_CALL_PRICE
from lib.sim.replies import reasoning_tokens, truncate_to_tokens
from tests.conftest import SIM_TODAY

SYSTEM = "You enrich sales leads. Answer briefly."


def row(i: int, company: str = "Acme", domain: str | None = "acme.com") -> str:
    site = f"\nWebsite: <data>https://www.{domain}/</data>" if domain else ""
    return f"Company: <data>{company} {i}</data>\nTitle: <data>VP Sales</data>{site}"


def msgs(text: str, system: str = SYSTEM) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def client_for(sim, key: str = "sk-test-simulator", **options) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=sim.url, **{"max_retries": 0, "timeout": 10, **options})


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def packed(texts: list[str], answer: dict | None = None) -> tuple[list[dict], dict]:
    """A packed request (lib.prompts.packing's shape): messages and its json_schema."""
    items = "\n".join(f'<item id="r{i}">\n{t}\n</item>' for i, t in enumerate(texts))
    item = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "answer": answer or {"type": "string"}},
        "required": ["id", "answer"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }
    return msgs(items, f"{SYSTEM}\n\n{packing.INSTRUCTION}"), schema


LEAD_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "fit": {"type": "integer", "minimum": 1, "maximum": 5},
        "industry": {"type": "string", "enum": ["software", "hardware", "services"]},
    },
    "required": ["summary", "fit", "industry"],
    "additionalProperties": False,
}


def both(client, model: str, messages: list[dict], schema: dict | None = None, name: str = "lead", **extra):
    """The same request through chat and responses: (chat completion, response)."""
    chat_kwargs, resp_kwargs = dict(extra), dict(extra)
    if schema is not None:
        chat_kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
        resp_kwargs["text"] = {
            "format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}
        }
    chat = client.chat.completions.create(model=model, messages=messages, **chat_kwargs)
    resp = client.responses.create(model=model, input=messages, **resp_kwargs)
    return chat, resp


# ----- the same answer through either API --------------------------------------------------------------------

SAME_ANSWER_CASES = {
    "plain text": (lambda: (msgs(row(1)), None, "lead")),
    "structured": (lambda: (msgs(row(2)), LEAD_SCHEMA, "lead")),
    "packed text": (lambda: (*packed([row(i) for i in range(4)]), packing.SCHEMA_NAME)),
    "packed structured": (lambda: (*packed([row(i) for i in range(3)], LEAD_SCHEMA), packing.SCHEMA_NAME)),
    "few-shot turns": (
        lambda: (
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": row(7)},
                {"role": "assistant", "content": "Acme 7 builds robots."},
                {"role": "user", "content": row(8)},
            ],
            None,
            "lead",
        )
    ),
}


@pytest.mark.parametrize("case", list(SAME_ANSWER_CASES))
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-5.4", "gpt-6-luna"])
def test_a_row_gets_the_same_answer_and_tokens_through_chat_and_responses(openai_client, model, case):
    messages, schema, name = SAME_ANSWER_CASES[case]()
    chat, resp = both(openai_client, model, messages, schema, name)

    assert resp.object == "response" and resp.status == "completed" and resp.id.startswith("resp_")
    assert resp.output_text == chat.choices[0].message.content
    assert (
        resp.usage.input_tokens == chat.usage.prompt_tokens == tokens.count_messages(messages, model).tokens
    )
    assert resp.usage.output_tokens == chat.usage.completion_tokens
    assert (
        resp.usage.output_tokens_details.reasoning_tokens
        == chat.usage.completion_tokens_details.reasoning_tokens
    )
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.service_tier == chat.service_tier == "default" and resp.model == model


@pytest.mark.parametrize(
    "shape",
    ["instructions", "input_text parts", "string input", "prompt-sensitive server"],
)
def test_input_shapes_read_as_the_same_messages(sim, openai_client, shape):
    text = row(3)
    if shape == "prompt-sensitive server":
        sim.configure(prompt_sensitive=True)
    chat = openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs(text))
    kwargs = {
        "instructions": {"instructions": SYSTEM, "input": [{"role": "user", "content": text}]},
        "input_text parts": {
            "input": [
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": SYSTEM}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": text[:10]},
                        {"type": "input_text", "text": text[10:]},
                    ],
                },
            ]
        },
        "string input": {"instructions": SYSTEM, "input": text},
        "prompt-sensitive server": {"instructions": SYSTEM, "input": text},
    }[shape]
    resp = openai_client.responses.create(model="gpt-4o-mini", **kwargs)
    assert resp.output_text == chat.choices[0].message.content
    assert resp.usage.input_tokens == chat.usage.prompt_tokens


def test_sdk_parse_reads_structured_output(openai_client):
    class Lead(BaseModel):
        summary: str
        fit: int

    messages = msgs(row(4))
    parsed = openai_client.responses.parse(model="gpt-6-luna", input=messages, text_format=Lead)
    chat = openai_client.chat.completions.parse(model="gpt-6-luna", messages=messages, response_format=Lead)
    assert parsed.output_parsed == chat.choices[0].message.parsed and isinstance(parsed.output_parsed, Lead)


def test_the_response_object_echoes_the_request(openai_client):
    resp = openai_client.responses.create(
        model="gpt-6-luna",
        input=msgs(row(5)),
        max_output_tokens=4000,
        reasoning={"effort": "low"},
        prompt_cache_key="icebreaker-v1",
        service_tier="flex",
        store=False,
        metadata={"run": "r-1"},
    )
    assert (resp.max_output_tokens, resp.prompt_cache_key, resp.store) == (4000, "icebreaker-v1", False)
    assert resp.reasoning.effort == "low" and resp.service_tier == "flex" and resp.metadata == {"run": "r-1"}
    assert (
        resp.incomplete_details is None
        and resp.error is None
        and resp.tool_usage.web_search.num_requests == 0
    )


def test_prompt_caching_reports_cached_and_written_tokens(openai_client):
    system = "Rules for the answer. " * 300  # well past the 1,024-token minimum
    first = openai_client.responses.create(
        model="gpt-6-luna", input=msgs(row(1), system), prompt_cache_key="k"
    )
    second = openai_client.responses.create(
        model="gpt-6-luna", input=msgs(row(2), system), prompt_cache_key="k"
    )
    assert first.usage.input_tokens_details.cached_tokens == 0
    assert first.usage.input_tokens_details.cache_write_tokens >= 1024
    assert (
        second.usage.input_tokens_details.cached_tokens == first.usage.input_tokens_details.cache_write_tokens
    )


# ----- effort, reasoning item, output cap ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, effort, served",
    [
        ("gpt-6-luna", None, "medium"),
        ("gpt-6-luna", "none", "none"),
        ("gpt-6-luna", "low", "low"),
        ("gpt-6-luna", "max", "max"),
        ("gpt-5.4", None, "none"),
        ("gpt-5.4", "high", "high"),
        ("gpt-5-mini", "minimal", "minimal"),
        ("gpt-4o-mini", None, None),
    ],
)
def test_effort_sets_reasoning_tokens_and_the_reasoning_item(openai_client, model, effort, served):
    messages = msgs(row(6))
    kwargs = {"reasoning": {"effort": effort}} if effort else {}
    resp = openai_client.responses.create(model=model, input=messages, **kwargs)
    spent = reasoning_tokens(messages, model, served) if served else 0
    assert resp.usage.output_tokens_details.reasoning_tokens == spent
    assert [o.type for o in resp.output] == (["reasoning", "message"] if spent else ["message"])
    assert resp.reasoning.effort == served
    assert resp.output_text == expected_reply(messages, model)


@pytest.mark.parametrize(
    "model, cap, text_kept",
    [
        ("gpt-6-luna", 16, False),  # medium effort thinks 64+ tokens: the cap is spent before any text
        ("gpt-4o-mini", 16, True),  # no reasoning: the answer is cut at 16 tokens
    ],
)
def test_a_small_max_output_tokens_leaves_the_response_incomplete(openai_client, model, cap, text_kept):
    messages = msgs(row(9) + " and a long question about their plans for the coming year, in detail please")
    resp = openai_client.responses.create(model=model, input=messages, max_output_tokens=cap)
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage.output_tokens == cap
    if text_kept:
        assert resp.output_text == truncate_to_tokens(expected_reply(messages, model), cap, model)
        assert resp.output[-1].type == "message" and resp.output[-1].status == "incomplete"
    else:
        assert resp.output_text == "" and [o.type for o in resp.output] == ["reasoning"]


@pytest.mark.parametrize(
    "directive, status, reason, kinds",
    [
        ("[[sim:refusal]]", "completed", None, ["message"]),
        ("[[sim:content_filter]]", "incomplete", "content_filter", []),
        ("[[sim:length]]", "incomplete", "max_output_tokens", ["message"]),
    ],
)
def test_answer_shaping_directives(openai_client, directive, status, reason, kinds):
    resp = openai_client.responses.create(model="gpt-4o-mini", input=msgs(f"{row(1)} {directive}"))
    assert resp.status == status and [o.type for o in resp.output] == kinds
    assert (resp.incomplete_details.reason if resp.incomplete_details else None) == reason
    if directive == "[[sim:refusal]]":
        assert resp.output[0].content[0].type == "refusal" and resp.output_text == ""


# ----- refusals, as OpenAI words them ---------------------------------------------------------------------------

WEB = [{"type": "web_search"}]
REFUSALS = [
    # (model, arguments, error class, code, param, words in the message)
    (
        "gpt-6-luna",
        {"extra_body": {"max_tokens": 50}},
        openai.BadRequestError,
        "unsupported_parameter",
        None,
        "has moved to 'max_output_tokens'",
    ),
    (
        "gpt-4o-mini",
        {"extra_body": {"max_completion_tokens": 50}},
        openai.BadRequestError,
        "unsupported_parameter",
        None,
        "'max_completion_tokens'. In the Responses API",
    ),
    (
        "gpt-4o-mini",
        {"extra_body": {"response_format": {"type": "json_object"}}},
        openai.BadRequestError,
        "unsupported_parameter",
        None,
        "moved to 'text.format'",
    ),
    (
        "gpt-6-luna",
        {"extra_body": {"reasoning_effort": "low"}},
        openai.BadRequestError,
        "unsupported_parameter",
        None,
        "moved to 'reasoning.effort'",
    ),
    (
        "gpt-4o-mini",
        {"extra_body": {"n": 2}},
        openai.BadRequestError,
        "unknown_parameter",
        "n",
        "Unknown parameter: 'n'.",
    ),
    (
        "gpt-6-luna",
        {"temperature": 0.2},
        openai.BadRequestError,
        "unsupported_parameter",
        "temperature",
        "'temperature' is not supported with this model",
    ),
    (
        "gpt-5.4",
        {"reasoning": {"effort": "xhigh"}},
        openai.BadRequestError,
        "unsupported_value",
        "reasoning.effort",
        "'reasoning.effort' does not support 'xhigh'",
    ),
    (
        "gpt-4o-mini",
        {"reasoning": {"effort": "low"}},
        openai.BadRequestError,
        "unsupported_parameter",
        "reasoning.effort",
        "'reasoning.effort' is not supported",
    ),
    (
        "gpt-4o-mini",
        {"max_output_tokens": 8},
        openai.BadRequestError,
        "integer_below_min_value",
        "max_output_tokens",
        "Expected a value >= 16",
    ),
    (
        "gpt-6-luna",
        {"max_output_tokens": 200_000},
        openai.BadRequestError,
        "invalid_value",
        "max_output_tokens",
        "max_output_tokens is too large",
    ),
    (
        "gpt-4o-mini",
        {"service_tier": "flex"},
        openai.BadRequestError,
        "unsupported_value",
        "service_tier",
        "Flex processing is not available",
    ),
    (
        "gpt-5-nano",
        {"tools": WEB},
        openai.BadRequestError,
        None,
        "tools",
        "Tool 'web_search' is not supported with gpt-5-nano.",
    ),
    (
        "gpt-5.4-nano",
        {"tools": WEB},
        openai.BadRequestError,
        None,
        "tools",
        "Tool 'web_search' is not supported with gpt-5.4-nano.",
    ),
    (
        "gpt-5-chat-latest",
        {"tools": [{"type": "web_search_preview"}]},
        openai.BadRequestError,
        None,
        "tools",
        "Tool 'web_search_preview' is not supported",
    ),
    (
        "gpt-5",
        {"tools": WEB, "reasoning": {"effort": "minimal"}},
        openai.BadRequestError,
        None,
        "tools",
        "cannot be used with reasoning.effort 'minimal': web_search",
    ),
    (
        "gpt-6-luna",
        {"tools": [{"type": "web_search", "search_context_size": "huge"}]},
        openai.BadRequestError,
        "invalid_value",
        "tools[0].search_context_size",
        "'low', 'medium', and 'high'",
    ),
    (
        "gpt-6-luna",
        {"tools": WEB, "max_tool_calls": 0},
        openai.BadRequestError,
        "integer_below_min_value",
        "max_tool_calls",
        "Expected a value >= 1",
    ),
    (
        "gpt-6-luna",
        {"tools": [{"type": "file_search"}]},
        openai.BadRequestError,
        "invalid_value",
        "tools[0].type",
        "only 'function' and 'web_search'",
    ),
    ("o3-mini", {}, openai.NotFoundError, "model_not_found", None, "The model `o3-mini` does not exist"),
    ("gpt-4.1-nano", {"tools": WEB}, openai.NotFoundError, "model_not_found", None, "does not exist"),
    (
        "gpt-4o-mini",
        {"previous_response_id": "resp_123"},
        openai.BadRequestError,
        "previous_response_not_found",
        "previous_response_id",
        "not found",
    ),
]


@pytest.mark.parametrize(
    "model, kwargs, error, code, param, words", REFUSALS, ids=[f"{r[0]}-{r[5][:30]}" for r in REFUSALS]
)
def test_refusals_are_openais_and_nothing_is_billed(
    sim, openai_client, model, kwargs, error, code, param, words
):
    with pytest.raises(error) as caught:
        openai_client.responses.create(model=model, input=msgs(row(1)), **kwargs)
    assert caught.value.code == code and caught.value.param == param
    assert words in caught.value.message
    assert sim.ledger() == [] and sim.stats()["web_search_calls"] == 0


@pytest.mark.parametrize(
    "item, param, words",
    [
        (
            {"role": "assistant", "content": [{"type": "input_text", "text": "x"}]},
            "input[1].content[0]",
            "'output_text' and 'refusal'",
        ),
        (
            {"role": "user", "content": [{"type": "input_image", "image_url": "x"}]},
            "input[1].content[0]",
            "'input_text'",
        ),
        ({"role": "tool", "content": "x"}, "input[1].role", "'assistant', 'system', 'developer', and 'user'"),
        (
            {"type": "function_call_output", "call_id": "c", "output": "x"},
            "input[1].type",
            "only message items",
        ),
    ],
)
def test_bad_input_items_name_where_they_are(openai_client, item, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": "hi"}, item])
    assert caught.value.param == param and words in caught.value.message


def test_a_reasoning_model_takes_temperature_1_and_a_chat_model_any(openai_client):
    assert openai_client.responses.create(model="gpt-6-luna", input="hi", temperature=1).status == "completed"
    assert (
        openai_client.responses.create(model="gpt-4o-mini", input="hi", temperature=0.2).status == "completed"
    )


FUNCTION = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize(
    "model, tool, effort, param",
    [
        ("gpt-6-luna", {"type": "web_search"}, "none", "tools[0].type"),  # hosted tools: Responses API only
        ("gpt-4o-mini", {"type": "web_search_preview"}, None, "tools[0].type"),
        ("gpt-6-luna", FUNCTION, None, "reasoning_effort"),  # the default effort (medium) is not none
        ("gpt-6-luna", FUNCTION, "low", "reasoning_effort"),
        ("gpt-5.4", FUNCTION, "high", "reasoning_effort"),
        ("gpt-6-luna", FUNCTION, "none", None),
        ("gpt-5.4", FUNCTION, None, None),  # gpt-5.4 defaults to none
        ("gpt-5.2", FUNCTION, "high", None),
        ("gpt-4o-mini", FUNCTION, None, None),
    ],
)
def test_chat_completions_takes_function_tools_only_and_some_models_only_at_effort_none(
    openai_client, model, tool, effort, param
):
    kwargs = {"reasoning_effort": effort} if effort else {}
    call = lambda: openai_client.chat.completions.create(  # noqa: E731
        model=model, messages=msgs(row(1)), tools=[tool], **kwargs
    )
    if param is None:
        assert call().choices[0].message.content
        return
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    assert caught.value.param == param
    if param == "reasoning_effort":
        assert "Please use /v1/responses instead." in caught.value.message
    else:
        assert "Supported values are: 'function' and 'custom'." in caught.value.message


# ----- web search ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["low", "medium", "high"])
def test_web_search_calls_are_counted_billed_and_their_content_is_input(sim, openai_client, size):
    rows = [msgs(row(i, f"Firm{i}", f"firm{i}.io")) for i in range(12)]
    tool = {"type": "web_search", "search_context_size": size}
    total = 0
    for messages in rows:
        resp = openai_client.responses.create(model="gpt-6-luna", input=messages, tools=[tool])
        calls = billed_calls(messages)
        plan = websearch.plan(messages)
        shown = [o for o in resp.output if o.type == "web_search_call"]
        assert len(shown) == len(plan.visible) and [s.action.query for s in shown] == [
            s.query for s in plan.visible
        ]
        assert all(s.status == "completed" and s.id.startswith("ws_") for s in shown)
        assert resp.tool_usage.web_search.num_requests == calls == plan.calls
        prompt = tokens.count_messages(messages, "gpt-6-luna").tokens
        assert resp.usage.input_tokens == prompt + calls * SEARCH_CONTENT_TOKENS[size]
        assert [o.type for o in resp.output][-1] == "message" and resp.status == "completed"
        total += calls
    ledger = sim.ledger()
    assert [e["web_search_calls"] for e in ledger] == [billed_calls(m) for m in rows]
    assert all(
        e["api"] == "responses"
        and e["search_content_tokens"] == e["web_search_calls"] * SEARCH_CONTENT_TOKENS[size]
        for e in ledger
    )
    assert sim.stats()["web_search_calls"] == total and sim.stats()["responses"] == len(rows)
    # The table's shares show up: some rows need more than one call, some run a hidden sub-search.
    plans = [websearch.plan(m) for m in rows]
    assert any(len(p.visible) > 1 for p in plans) and any(p.calls > len(p.visible) for p in plans)


@pytest.mark.parametrize(
    "cap, billed, shown, cited",
    [(None, 5, 4, 4), (5, 5, 4, 4), (3, 3, 2, 2), (2, 2, 1, 1), (1, 1, 1, 1)],
)
def test_max_tool_calls_caps_billed_searches_and_the_response_still_completes(
    sim, openai_client, cap, billed, shown, cited
):
    # 4 visible searches and a hidden sub-search after the first: v, hidden, v, v, v.
    messages = msgs(row(1) + " [[sim:searches=4]] [[sim:sub_search]]")
    kwargs = {"max_tool_calls": cap} if cap else {}
    resp = openai_client.responses.create(model="gpt-6-luna", input=messages, tools=WEB, **kwargs)
    assert resp.status == "completed" and resp.max_tool_calls == cap
    assert resp.tool_usage.web_search.num_requests == billed == billed_calls(messages, None, cap)
    assert len([o for o in resp.output if o.type == "web_search_call"]) == shown
    assert len(resp.output[-1].content[0].annotations) == cited
    assert sim.ledger()[0]["web_search_calls"] == billed


def test_citations_span_the_text_they_cite(openai_client):
    no_source = 0
    for i in range(40):
        messages = msgs(row(i, f"Globex{i}", f"globex{i}.com" if i % 3 else None))
        chat = openai_client.chat.completions.create(model="gpt-5.4", messages=messages)
        resp = openai_client.responses.create(model="gpt-5.4", input=messages, tools=WEB)
        text = resp.output_text
        part = resp.output[-1].content[0]
        assert (text, [a.model_dump() for a in part.annotations]) == cited_reply(messages, "gpt-5.4")
        assert text.startswith(chat.choices[0].message.content)  # the chat answer, then the cited sentences
        for a in part.annotations:
            assert a.type == "url_citation" and 0 <= a.start_index < a.end_index <= len(text)
            host = a.url.split("/")[2]
            assert text[a.start_index : a.end_index] == f"[{host}]({a.url})"
            assert a.url.startswith("https://") and a.title
            assert host in (f"globex{i}.com", websearch.NEWS_HOST, websearch.JOBS_HOST)
        if not part.annotations:
            no_source += 1
            assert text == chat.choices[0].message.content  # cites nothing: the chat answer alone
    assert 0 < no_source < 40


def test_a_no_source_row_is_billed_and_cites_nothing(sim, openai_client):
    messages = msgs(row(1) + " [[sim:no_source]] [[sim:searches=2]]")
    resp = openai_client.responses.create(model="gpt-6-luna", input=messages, tools=WEB)
    assert resp.output[-1].content[0].annotations == [] and resp.tool_usage.web_search.num_requests >= 2
    assert resp.output_text == expected_reply(messages, "gpt-6-luna")
    assert sim.ledger()[0]["web_search_calls"] == resp.tool_usage.web_search.num_requests


@pytest.mark.parametrize("kind", ["structured", "packed"])
def test_a_json_answer_is_unchanged_and_its_citations_span_string_values(openai_client, kind):
    if kind == "structured":
        messages, schema, name = (
            msgs(row(3, "Initech", "initech.com") + " [[sim:searches=2]]"),
            LEAD_SCHEMA,
            "lead",
        )
    else:
        texts = [
            row(i, f"Hooli{i}", f"hooli{i}.com") + " [[sim:searches=1]] [[sim:sub_search=0]]"
            for i in range(3)
        ]
        (messages, schema), name = packed(texts), packing.SCHEMA_NAME
    chat = openai_client.chat.completions.create(
        model="gpt-6-luna",
        messages=messages,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        },
    )
    resp = openai_client.responses.create(
        model="gpt-6-luna",
        input=messages,
        tools=WEB,
        max_tool_calls=10,
        text={"format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}},
    )
    text = resp.output_text
    assert text == chat.choices[0].message.content
    annotations = resp.output[-1].content[0].annotations
    assert annotations
    for a in annotations:
        assert isinstance(json.loads(text[a.start_index - 1 : a.end_index + 1]), str)  # a whole string value
    if kind == "packed":  # each item's answer cites its own company's site
        for item in json.loads(text)["items"]:
            i = int(item["id"][1:])
            mine = [a for a in annotations if text[a.start_index : a.end_index] == item["answer"]]
            assert mine and all(f"hooli{i}.com" in a.url for a in mine)


def test_tool_choice_none_searches_nothing_and_include_shows_sources(sim, openai_client):
    messages = msgs(row(2))
    quiet = openai_client.responses.create(model="gpt-6-luna", input=messages, tools=WEB, tool_choice="none")
    assert quiet.tool_usage.web_search.num_requests == 0 and quiet.output_text == expected_reply(
        messages, "gpt-6-luna"
    )
    loud = openai_client.responses.create(
        model="gpt-6-luna", input=messages, tools=WEB, include=["web_search_call.action.sources"]
    )
    searches = [o for o in loud.output if o.type == "web_search_call"]
    assert searches and all(
        s.action.sources and s.action.sources[0].url.startswith("https://") for s in searches
    )


@pytest.mark.parametrize(
    "text, company, domain",
    [
        (
            "Company: <data>Acme Inc</data>\nWebsite: <data>https://www.Acme.com/about</data>",
            "Acme Inc",
            "acme.com",
        ),
        ("Name: <data>Jo</data>\nEmail: <data>jo@globex.co.uk</data>", "Globex", "globex.co.uk"),
        ("Account name: <data>Initech</data>", "Initech", None),
        ("Tell me about hooli.io please", "Hooli", "hooli.io"),
    ],
)
def test_the_row_names_what_is_searched(text, company, domain):
    assert websearch.subject(msgs(text)) == (company, domain)
    searches = websearch.plan(msgs(text + " [[sim:searches=3]]")).visible
    hosts = [s.source.url.split("/")[2] for s in searches]
    assert hosts == (
        [domain, websearch.NEWS_HOST, domain]
        if domain
        else [websearch.NEWS_HOST, websearch.JOBS_HOST, websearch.NEWS_HOST]
    )


# ----- billing --------------------------------------------------------------------------------------------------

# gpt-6-luna per 1M tokens (field notes): input, cached input, cache write, output.
LUNA = {
    "input": Fraction(10, 100),
    "cached": Fraction(1, 100),
    "write": Fraction(125, 1000),
    "output": Fraction(50, 100),
}


def token_cost(input_tokens: int, cached: int, written: int, output: int) -> Fraction:
    fresh = input_tokens - cached - written
    return (
        fresh * LUNA["input"] + cached * LUNA["cached"] + written * LUNA["write"] + output * LUNA["output"]
    ) / 1_000_000


@pytest.mark.parametrize("price", [None, 0.025])
def test_the_clients_cost_equals_the_servers_bill(sim, price, openai_client):
    if price is not None:  # a price change in the model rules data reaches the bill
        sim.reset(SimConfig(today=SIM_TODAY, extra_models={"gpt-6-luna": {"web_search_call_price": price}}))
    per_call = Fraction(str(price if price is not None else WEB_SEARCH_CALL_PRICE))
    system = "Research rules. " * 400  # long enough to cache
    client_cost = Fraction(0)
    for i in range(8):
        resp = openai_client.responses.create(
            model="gpt-6-luna",
            input=msgs(row(i, f"Umbrella{i}", f"umbrella{i}.com"), system),
            tools=WEB,
            max_tool_calls=3,
        )
        u = resp.usage
        client_cost += token_cost(
            u.input_tokens,
            u.input_tokens_details.cached_tokens,
            u.input_tokens_details.cache_write_tokens,
            u.output_tokens,
        )
        client_cost += resp.tool_usage.web_search.num_requests * per_call
    ledger = sim.ledger()
    server_bill = sum(
        token_cost(e["prompt_tokens"], e["cached_tokens"], e["cache_write_tokens"], e["completion_tokens"])
        + e["web_search_calls"] * Fraction(str(e["web_search_call_price"]))
        for e in ledger
    )
    assert client_cost == server_bill and ledger[1]["cached_tokens"] > 0
    calls = sum(e["web_search_calls"] for e in ledger)
    assert calls > 0 and web_search_cost(ledger) == pytest.approx(float(per_call * calls))
    assert WEB_SEARCH_CALL_PRICE == 0.01  # OpenAI's $10 per 1,000 calls


# ----- the Batch API ----------------------------------------------------------------------------------------------


def test_a_batch_of_responses_lines(sim, openai_client):
    sim.configure(batch_validating_s=0.01, batch_in_progress_s=0.05, batch_finalizing_s=0.01)
    bodies = {
        "row-1": {"model": "gpt-6-luna", "input": msgs(row(1))},
        "row-2": {"model": "gpt-6-luna", "input": msgs(row(2)), "tools": WEB, "max_tool_calls": 2},
        "row-3": {"model": "gpt-6-luna", "input": msgs(row(3)), "max_tokens": 40},
    }
    data = "\n".join(
        json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/responses", "body": body})
        for cid, body in bodies.items()
    )
    upload = openai_client.files.create(file=("in.jsonl", data.encode()), purpose="batch")
    made = openai_client.batches.create(
        input_file_id=upload.id, endpoint="/v1/responses", completion_window="24h"
    )
    assert made.endpoint == "/v1/responses"
    assert wait_for(lambda: openai_client.batches.retrieve(made.id).status == "completed", timeout=20)
    done = openai_client.batches.retrieve(made.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    out = {
        line["custom_id"]: line["response"]
        for line in map(json.loads, openai_client.files.content(done.output_file_id).text.splitlines())
    }
    assert out["row-1"]["body"]["object"] == "response"
    assert out["row-1"]["body"]["output"][-1]["content"][0]["text"] == expected_reply(
        msgs(row(1)), "gpt-6-luna"
    )
    assert out["row-2"]["body"]["tool_usage"]["web_search"]["num_requests"] == billed_calls(
        msgs(row(2)), None, 2
    )
    [error] = map(json.loads, openai_client.files.content(done.error_file_id).text.splitlines())
    assert (
        error["response"]["status_code"] == 400
        and "max_output_tokens" in error["response"]["body"]["error"]["message"]
    )
    ledger = {e["row_id"]: e for e in sim.ledger()}
    assert set(ledger) == {"1", "2"} and all(e["batch"] and e["api"] == "responses" for e in ledger.values())
    assert ledger["2"]["web_search_calls"] == billed_calls(msgs(row(2)), None, 2)
    assert done.usage.input_tokens == sum(e["prompt_tokens"] for e in ledger.values())


def test_a_responses_batch_refuses_chat_lines(openai_client, sim):
    sim.configure(batch_validating_s=0.01)
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": msgs("x")},
    }
    upload = openai_client.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    made = openai_client.batches.create(
        input_file_id=upload.id, endpoint="/v1/responses", completion_window="24h"
    )
    assert wait_for(lambda: openai_client.batches.retrieve(made.id).status == "failed")
    assert openai_client.batches.retrieve(made.id).errors.data[0].code == "invalid_url"


# ----- what the chat route has: gate, faults, limits ----------------------------------------------------------------


def test_the_gate_holds_responses_unbilled_until_it_opens(sim):
    sim.configure(hold="Hold me")
    client = client_for(sim, timeout=30)
    pool = concurrent.futures.ThreadPoolExecutor(3)
    held = [
        pool.submit(client.responses.create, model="gpt-6-luna", input=msgs(f"Hold me {i}"), tools=WEB)
        for i in range(2)
    ]
    free = client.responses.create(model="gpt-6-luna", input=msgs("Go ahead"))
    assert free.status == "completed"
    assert wait_for(lambda: sim.stats()["held_now"] == 2)
    assert not any(f.done() for f in held) and len(sim.ledger()) == 1 and sim.stats()["web_search_calls"] == 0
    sim.configure(hold="")
    answers = [f.result(timeout=10) for f in held]
    pool.shutdown()
    assert all(a.status == "completed" for a in answers) and len(sim.ledger()) == 3
    assert sim.stats()["web_search_calls"] == sum(a.tool_usage.web_search.num_requests for a in answers)


def test_faults_limits_and_headers_are_the_chat_routes(sim, openai_client):
    raw = openai_client.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
    assert raw.headers["x-request-id"].startswith("req_") and raw.headers["x-ratelimit-limit-requests"]
    with pytest.raises(openai.InternalServerError):
        openai_client.responses.create(model="gpt-4o-mini", input="retry me [[sim:fail_first=1]]")
    assert openai_client.responses.create(
        model="gpt-4o-mini", input="retry me [[sim:fail_first=1]]"
    ).output_text
    sim.configure(rpm=60, burst_seconds=1.0)  # one request a second, shared by both routes of a key
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs("first"))
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.responses.create(model="gpt-4o-mini", input="second")
    assert caught.value.code == "rate_limit_exceeded"
    sim.configure(rpm=None, p_malformed=1.0)
    with pytest.raises(json.JSONDecodeError):  # cut mid-JSON and still billed, as on chat
        openai_client.responses.create(model="gpt-4o-mini", input="third")
    assert sim.ledger()[-1]["kind"] == "malformed"


def test_models_list_is_unchanged(openai_client):
    models = list(openai_client.models.list())
    assert models and all(
        set(m.model_dump()) == {"id", "object", "created", "owned_by", "shutdown_date"} for m in models
    )
