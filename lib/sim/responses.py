"""The simulator's Responses API (`POST /v1/responses`), with the hosted web_search tool.

A request is read into the Chat Completions terms the rest of the simulator speaks: `instructions` becomes
a leading system message, each `input` item a message with its role (system, developer, user, assistant;
content a string or text parts joined), `text.format` becomes `response_format`, `reasoning.effort`
`reasoning_effort`, `max_output_tokens` the output cap. So a row answers here exactly as it does on
/v1/chat/completions (text, structured output, packed rows), is counted the same input tokens, and goes
through the same faults, flex capacity, rate limits, latency, gate (`SimConfig.hold`) and model rules;
only the wording of the refusals is this API's (`reasoning.effort`, `max_output_tokens`, `text.format`).

What this API refuses as OpenAI does: Chat Completions parameters by name (`max_tokens` -> "In the Responses
API, this parameter has moved to 'max_output_tokens'", param null, code unsupported_parameter), unknown
parameters, `max_output_tokens` below 16, temperature / top_p other than 1 on a reasoning model, a hosted
search tool on a model without it ("Tool 'web_search' is not supported with MODEL.", param tools) or at
reasoning.effort minimal. Choices of this simulator, documented: `max_tool_calls` below 1 is refused;
`stream`, `background`, `previous_response_id` and `conversation` are not served (nothing is stored), and
tools other than function and web_search are refused; function tools are accepted and never called.

The answer: a Response object (`output`: a reasoning item when reasoning tokens were spent, one
`web_search_call` per visible search, then the assistant message with `output_text` and its
`url_citation` annotations; `status` "incomplete" with `incomplete_details.reason` "max_output_tokens"
when the cap cut it). Web search (lib.sim.websearch) adds each billed call's search content to
`input_tokens` (models.SEARCH_CONTENT_TOKENS by search_context_size) and reports the billed calls in
`tool_usage.web_search.num_requests`. The ledger entry is the chat one plus `api: "responses"`,
`web_search_calls`, `search_content_tokens` and `web_search_call_price` (USD per call, the model's rules).

One piece past 600 lines on purpose: it is this API's whole surface, its request read field by field with
OpenAI's error for each, and its answer's shape; what it shares with chat stays in lib.sim.app.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from lib.sim import replies, websearch
from lib.sim.app import SimApp, _Ctx, _dumps, _Reject, _truncate
from lib.sim.http11 import Reply
from lib.sim.models import (
    DEFAULT_SEARCH_CONTEXT,
    HOSTED_SEARCH_TOOLS,
    MOVED_IN_RESPONSES,
    SEARCH_CONTENT_TOKENS,
    TIERS,
    Refusal,
    as_responses_refusal,
    check_request,
    check_responses_sampling,
    check_tools,
    effective_effort,
    json_text,
    moved_parameter,
    openai_list,
)

ENDPOINT = "/v1/responses"
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens
KNOWN_PARAMS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "previous_response_id",
        "conversation",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "background",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "include",
    }
)
_ROLES = ("assistant", "system", "developer", "user")
_USER_PARTS = ("input_text",)
_ASSISTANT_PARTS = ("output_text", "refusal")
_FORMATS = ("text", "json_schema", "json_object")
_SOURCES_INCLUDE = "web_search_call.action.sources"


@dataclass
class ResponsesRequest:
    """A valid /v1/responses request, and its Chat Completions reading (`chat`: model, messages,
    response_format, reasoning_effort, service_tier, temperature) that the shared code takes."""

    body: dict
    chat: dict
    prompt: int
    max_out: int | None
    marks: dict[str, int | None]
    search_context: str | None = None  # set when a hosted web search tool is on
    max_tool_calls: int | None = None
    include_sources: bool = False
    tools: list[dict] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.chat["model"]

    @property
    def messages(self) -> list[dict]:
        return self.chat["messages"]


def handle(app: SimApp, ctx: _Ctx) -> Reply:
    request = validated(app, ctx)
    return app._serve(
        ctx,
        request.chat,
        request.messages,
        request.prompt,
        request.max_out,
        request.marks,
        lambda delay, malformed, dropped=False: answer(
            app, ctx, request, delay, malformed=malformed, dropped=dropped
        ),
    )


# ----- reading and checking a request ------------------------------------------------------------------------


def _refuse(app: SimApp, ctx: _Ctx, refusal: Refusal) -> _Reject:
    return _Reject(
        app._error(ctx, refusal.status, refusal.message, refusal.type, refusal.param, refusal.code)
    )


def _bad(message: str, param: str | None, code: str | None = "invalid_value") -> Refusal:
    return Refusal(400, message, param, code)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def validated(app: SimApp, ctx: _Ctx) -> ResponsesRequest:
    """Parse and check a /v1/responses request as the API does, in the order it does."""
    try:
        body = json.loads(ctx.request.body)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise _Reject(
            app._error(
                ctx,
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                "valid JSON.)",
                "invalid_request_error",
            )
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _refuse(
            app, ctx, _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        )
    ctx.model = model
    for name in body:
        if name in MOVED_IN_RESPONSES:
            raise _refuse(app, ctx, moved_parameter(name))
        if name not in KNOWN_PARAMS:
            raise _refuse(app, ctx, _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter"))
    if not app._available(model):
        raise _Reject(app._model_not_found(ctx, model))
    refusal = _unserved(body)
    if refusal is not None:
        raise _refuse(app, ctx, refusal)
    try:
        messages = input_messages(body)
        response_format = _response_format(body.get("text"))
        effort = _effort(body.get("reasoning"))
        tools, search_context = _tools(body.get("tools"))
    except _Invalid as invalid:
        raise _refuse(app, ctx, invalid.refusal) from None
    rules = app.config.rules(model)
    chat = {"model": model, "messages": messages}
    for name, value in (
        ("response_format", response_format),
        ("reasoning_effort", effort),
        ("service_tier", body.get("service_tier")),
        ("temperature", body.get("temperature")),
        ("max_completion_tokens", body.get("max_output_tokens")),
    ):
        if value is not None:
            chat[name] = value
    refusal = _check_values(body) or check_responses_sampling(body, rules)
    if refusal is None:
        checked = check_request({k: v for k, v in chat.items() if k != "temperature"}, rules)
        refusal = as_responses_refusal(checked) if checked is not None else None
    if refusal is None and search_context is not None:
        refusal = check_tools(tools, rules, model, effective_effort(chat, rules))
    if refusal is not None:
        raise _refuse(app, ctx, refusal)
    marks = replies.directives(messages)
    prompt = replies.prompt_tokens(messages, model)
    window = app.config.context_window or rules.context_window
    if "context_length" in marks or prompt > window:
        raise _refuse(
            app,
            ctx,
            _bad(
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "input",
                "context_length_exceeded",
            ),
        )
    include = body.get("include") or []
    return ResponsesRequest(
        body,
        chat,
        prompt,
        body.get("max_output_tokens"),
        marks,
        search_context,
        body.get("max_tool_calls"),
        isinstance(include, list) and _SOURCES_INCLUDE in include,
        tools,
    )


class _Invalid(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def _unserved(body: dict) -> Refusal | None:
    """What this simulator does not serve (it stores nothing), said plainly."""
    if body.get("previous_response_id") is not None:
        rid = body["previous_response_id"]
        return _bad(
            f"Previous response with id '{rid}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    for name, why in (
        ("stream", "The simulator does not stream /v1/responses: send stream false."),
        ("background", "The simulator does not run responses in the background: send background false."),
    ):
        if body.get(name):
            return _bad(why, name, "unsupported_value")
    if body.get("conversation") is not None:
        return _bad(
            "The simulator keeps no conversations: send the whole input.", "conversation", "unsupported_value"
        )
    return None


def input_messages(body: dict) -> list[dict]:
    """`instructions` and `input` as Chat Completions messages (text parts joined, roles kept)."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _Invalid(
                _bad(
                    f"Invalid type for 'instructions': expected a string, but got {_type_name(instructions)} instead.",
                    "instructions",
                    "invalid_type",
                )
            )
        if instructions:
            messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if raw is None:
        raise _Invalid(_bad("Missing required parameter: 'input'.", "input", "missing_required_parameter"))
    if isinstance(raw, str):
        return [*messages, {"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise _Invalid(
            _bad("Invalid 'input': expected a string or a non-empty array of input items.", "input")
        )
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(
                _bad(
                    f"Invalid type for '{where}': expected an object, but got {_type_name(item)} instead.",
                    where,
                    "invalid_type",
                )
            )
        kind = item.get("type", "message")
        if kind != "message":
            raise _Invalid(
                _bad(
                    f"Invalid value: {json_text(kind)}. The simulator reads only message items in 'input'.",
                    f"{where}.type",
                )
            )
        role = item.get("role")
        if role not in _ROLES:
            raise _Invalid(
                _bad(
                    f"Invalid value: {json_text(role)}. Supported values are: {openai_list(_ROLES)}.",
                    f"{where}.role",
                )
            )
        messages.append({"role": role, "content": _content_text(item.get("content"), where, role)})
    return messages


def _content_text(content: Any, where: str, role: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _Invalid(
            _bad(
                f"Invalid type for '{where}.content': expected a string or an array of content parts, but got "
                f"{_type_name(content)} instead.",
                f"{where}.content",
                "invalid_type",
            )
        )
    allowed = _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise _Invalid(
                _bad(
                    f"Invalid value: {json_text(kind)}. Supported values are: {openai_list(allowed)}."
                    + ("" if role == "assistant" else " (The simulator reads text parts only.)"),
                    f"{where}.content[{j}]",
                )
            )
        text = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(text, str):
            raise _Invalid(
                _bad(
                    f"Missing required parameter: '{where}.content[{j}].text'.",
                    f"{where}.content[{j}].text",
                    "missing_required_parameter",
                )
            )
        texts.append(text)
    return "".join(texts)


def _response_format(text: Any) -> dict | None:
    """`text.format` as Chat Completions' `response_format` (None for plain text)."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _Invalid(
            _bad(
                f"Invalid type for 'text': expected an object, but got {_type_name(text)} instead.",
                "text",
                "invalid_type",
            )
        )
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in _FORMATS:
        raise _Invalid(
            _bad(
                f"Invalid value: {json_text(kind)}. Supported values are: {openai_list(_FORMATS)}.",
                "text.format.type",
            )
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    for name in ("name", "schema"):
        if fmt.get(name) is None:
            raise _Invalid(
                _bad(
                    f"Missing required parameter: 'text.format.{name}'.",
                    f"text.format.{name}",
                    "missing_required_parameter",
                )
            )
    if not isinstance(fmt["schema"], dict):
        raise _Invalid(
            _bad(
                "Invalid type for 'text.format.schema': expected an object.",
                "text.format.schema",
                "invalid_type",
            )
        )
    spec = {"name": fmt["name"], "schema": fmt["schema"]}
    if fmt.get("strict") is not None:
        spec["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": spec}


def _effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise _Invalid(
            _bad(
                f"Invalid type for 'reasoning': expected an object, but got {_type_name(reasoning)} instead.",
                "reasoning",
                "invalid_type",
            )
        )
    return reasoning.get("effort")


def _tools(tools: Any) -> tuple[list[dict], str | None]:
    """The tools, and the search context size when a hosted web search tool is among them."""
    if tools is None:
        return [], None
    if not isinstance(tools, list):
        raise _Invalid(
            _bad(
                f"Invalid type for 'tools': expected an array, but got {_type_name(tools)} instead.",
                "tools",
                "invalid_type",
            )
        )
    context = None
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in HOSTED_SEARCH_TOOLS:
            size = tool.get("search_context_size", DEFAULT_SEARCH_CONTEXT)
            if size not in SEARCH_CONTENT_TOKENS:
                raise _Invalid(
                    _bad(
                        f"Invalid value: {json_text(size)}. Supported values are: {openai_list(list(SEARCH_CONTENT_TOKENS))}.",
                        f"tools[{i}].search_context_size",
                    )
                )
            location = tool.get("user_location")
            if location is not None and not isinstance(location, dict):
                raise _Invalid(
                    _bad(
                        "Invalid type for 'user_location': expected an object.",
                        f"tools[{i}].user_location",
                        "invalid_type",
                    )
                )
            context = context or size
        elif kind == "function":
            if not isinstance(tool.get("name"), str):
                raise _Invalid(
                    _bad(
                        f"Missing required parameter: 'tools[{i}].name'.",
                        f"tools[{i}].name",
                        "missing_required_parameter",
                    )
                )
        else:
            raise _Invalid(
                _bad(
                    f"Invalid value: {json_text(kind)}. The simulator serves only 'function' and 'web_search' tools.",
                    f"tools[{i}].type",
                )
            )
    return tools, context


def _check_values(body: dict) -> Refusal | None:
    """The general parameter rules (the model's own come after, from models.py)."""
    tier = body.get("service_tier")
    if tier is not None and tier not in TIERS:
        return _bad(f"Invalid value for 'service_tier': {tier!r}.", "service_tier")
    key = body.get("prompt_cache_key")
    if key is not None and not isinstance(key, str):
        return _bad(
            "Invalid type for 'prompt_cache_key': expected a string.", "prompt_cache_key", "invalid_type"
        )
    for name, least in (("max_output_tokens", MIN_OUTPUT_TOKENS), ("max_tool_calls", 1)):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            return _bad(
                f"Invalid '{name}': integer below minimum value. Expected a value >= {least}, but got {value!r} instead.",
                name,
                "integer_below_min_value",
            )
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        )
    ):
        return _bad(
            "Invalid 'metadata': at most 16 string pairs (keys 64, values 512 characters).", "metadata"
        )
    for name in ("store", "parallel_tool_calls"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            return _bad(f"Invalid type for '{name}': expected a boolean.", name, "invalid_type")
    return None


# ----- the answer --------------------------------------------------------------------------------------------


def answer(
    app: SimApp,
    ctx: _Ctx,
    request: ResponsesRequest,
    delay: float,
    *,
    malformed: bool,
    batch: bool = False,
    dropped: bool = False,
) -> Reply:
    """The Response object for a valid request, billed into the ledger when it is due."""
    model, messages, marks, chat = request.model, request.messages, request.marks, request.chat
    rules = app.config.rules(model)
    effort = effective_effort(chat, rules)
    reasoning = replies.reasoning_tokens(messages, model, effort) if effort is not None else 0
    plans = _plans(request)
    searches = [s for _, p in plans for s in p.searches]
    refusal = replies.REFUSAL_TEXT if "refusal" in marks else None
    text, annotations = None, []
    if refusal is not None:
        finish, visible = "stop", replies.completion_tokens(refusal, model)
    elif "content_filter" in marks:
        finish, visible = "content_filter", 0
    else:
        content = app._content(ctx, chat)
        cited = {key: p.sources for key, p in plans}
        if plans and chat.get("response_format", {}).get("type") in ("json_schema", "json_object"):
            annotations = websearch.cite_json(content, cited)
        elif plans:
            content, annotations = websearch.cite_text(content, cited.get(None, ()))
        text, finish, visible, reasoning = _truncate(
            content, model, request.max_out, reasoning, "length" in marks
        )
        annotations = [a for a in annotations if a["end_index"] <= len(text)]
    search_tokens = len(searches) * SEARCH_CONTENT_TOKENS[request.search_context or DEFAULT_SEARCH_CONTEXT]
    cached, written = app._cached_tokens(ctx.state, messages, model, request.prompt)
    tier = chat.get("service_tier")
    served = tier if tier in ("flex", "priority", "fast") else "default"
    input_tokens = request.prompt + search_tokens
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": visible + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + visible + reasoning,
    }
    if rules.cache_write:
        usage["input_tokens_details"]["cache_write_tokens"] = written
    output = []
    if reasoning > 0:
        output.append({"id": f"rs_{app._next_id()}", "type": "reasoning", "summary": []})
    for search in searches:
        if not search.hidden:
            action: dict[str, Any] = {"type": "search", "query": search.query}
            if request.include_sources and search.source is not None:
                action["sources"] = [{"type": "url", "url": search.source.url}]
            output.append(
                {
                    "id": f"ws_{app._next_id()}",
                    "type": "web_search_call",
                    "status": "completed",
                    "action": action,
                }
            )
    status = "completed" if finish == "stop" else "incomplete"
    if refusal is not None:
        parts = [{"type": "refusal", "refusal": refusal}]
    elif text:
        parts = [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}]
    else:
        parts = []
    if parts:
        output.append(
            {
                "id": f"msg_{app._next_id()}",
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": parts,
            }
        )
    payload = _dumps(
        _response_object(app, request, effort, status, finish, output, usage, served, len(searches))
    )
    record = {
        "ts": None,
        "request_id": ctx.request_id,
        "key_hash": ctx.key_hash,
        "model": model,
        "row_id": ctx.request.headers.get("x-row-id"),
        "prompt_tokens": input_tokens,  # as billed: the input plus the search content
        "completion_tokens": visible + reasoning,
        "cached_tokens": cached,
        "cache_write_tokens": usage["input_tokens_details"].get("cache_write_tokens", 0),
        "reasoning_tokens": reasoning,
        "reasoning_effort": effort,
        "service_tier": "batch" if batch else served,
        "finish_reason": finish,
        "api": "responses",
        "web_search_calls": len(searches),
        "search_content_tokens": search_tokens,
        "web_search_call_price": rules.web_search_call_price,
    }
    return app._deliver(
        ctx, payload, "application/json", record, delay, malformed=malformed, batch=batch, dropped=dropped
    )


def _plans(request: ResponsesRequest) -> list[tuple[str | None, websearch.Plan]]:
    """The rows' web search plans, or [] when no search tool is on (or tool_choice is "none")."""
    if request.search_context is None or request.body.get("tool_choice") == "none":
        return []
    return websearch.request_plans(
        request.messages, request.chat.get("response_format"), request.max_tool_calls
    )


def _response_object(
    app: SimApp,
    request: ResponsesRequest,
    effort: str | None,
    status: str,
    finish: str,
    output: list[dict],
    usage: dict,
    served: str,
    calls: int,
) -> dict:
    body = request.body
    created = time.time()
    reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish)
    text_format = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": f"resp_{app._next_id()}",
        "object": "response",
        "created_at": math.floor(created),
        "status": status,
        "completed_at": math.floor(created) if status == "completed" else None,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": request.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": effort, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": served,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text_format, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": request.tools,
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "tool_usage": {
            "image_gen": {
                "input_tokens": 0,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
                "output_tokens": 0,
                "total_tokens": 0,
            },
            "web_search": {"num_requests": calls},
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
