"""The simulator's own model rules: what each model accepts, how it refuses, when it shuts down.

Deliberately independent of the client's tables (lib.prompts, lib.cost): a model the client does not know
must be exactly as strict here as it is at OpenAI, so the client's gaps show in the tests. The lineup is
OpenAI's as of December 2026 (/work/shared/design/field-notes.md, "Models, December 2026").

A name is resolved by dropping a snapshot suffix (gpt-4o-mini-2024-07-18, gpt-3.5-turbo-0125), then an exact
entry of LINEUP, then the longest entry the name extends with "-" (gpt-5.4-pro -> gpt-5.4), then a family
prefix (every gpt-6* name is the gpt-6 family, every gpt-5.* the gpt-5.x family). Names no rule knows (a
local llama, an Azure deployment) are served as a plain chat model unless SimConfig.extra_models says more.

Reasoning effort defaults, chosen and documented here: the gpt-6 family defaults to "medium" (OpenAI's
model page); gpt-5.1 and later default to "none" (OpenAI's documented default since gpt-5.1); gpt-5,
-mini, -nano and the o-series default to "medium"; gpt-5-pro takes only "high".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # every value any model takes
TIERS = ("auto", "default", "flex", "priority", "fast")
# Web search (Responses API): OpenAI's $10 per 1,000 calls, and the search content each call adds to the
# request's input tokens, by the tool's search_context_size (fixed per call here, so a bill can be checked).
WEB_SEARCH_CALL_PRICE = 0.01
SEARCH_CONTENT_TOKENS = {"low": 2_000, "medium": 4_000, "high": 8_000}
DEFAULT_SEARCH_CONTEXT = "medium"
NO_TOOL_EFFORTS = ("minimal",)  # OpenAI: "The following tools cannot be used with reasoning.effort 'minimal'"
_SNAPSHOT_RE = re.compile(r"^(.+?)-(\d{4}-\d{2}-\d{2}|\d{4})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: Any, what: str) -> dt.date:
    if not isinstance(text, str) or not _DATE_RE.match(text):
        raise ValueError(f"{what} must be a date as YYYY-MM-DD, not {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"{what} must be a real date as YYYY-MM-DD, not {text!r}") from err


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts. Defaults are a plain chat model (a local llama, an unknown deployment)."""

    reasoning: bool = False
    efforts: tuple[str, ...] = ()  # accepted reasoning_effort values, in OpenAI's order
    default_effort: str | None = None  # the effort a request that sends none gets
    refuses_max_tokens: bool = False  # 400 unless max_completion_tokens is used instead
    refuses_temperature: bool = False  # 400 for a non-default temperature or top_p (only 1 is taken)
    context_window: int = 128_000
    max_output_tokens: int | None = None  # None: no limit on max_tokens / max_completion_tokens
    json_schema: bool = True  # response_format json_schema (structured outputs)
    flex: bool = False  # service_tier "flex"
    fast: bool = False  # service_tier "fast" (served at 2x the price)
    cache_write: bool = False  # usage reports prompt_tokens_details.cache_write_tokens
    shutdown_date: str | None = None  # "YYYY-MM-DD": from that day on the model answers 404 model_not_found
    web_search: bool = False  # the Responses API's hosted web_search tool
    web_search_call_price: float = WEB_SEARCH_CALL_PRICE  # USD per billed search (hidden sub-searches too)
    # Function tools on Chat Completions: "always", or "effort_none" (refused at any other effort, the
    # default one included: "Function tools with reasoning_effort are not supported ... in /v1/chat/completions").
    chat_function_tools: str = "always"

    def __post_init__(self) -> None:
        object.__setattr__(self, "efforts", tuple(self.efforts))
        unknown = [e for e in self.efforts if e not in EFFORTS]
        if unknown:
            raise ValueError(f"unknown reasoning efforts {unknown}: each must be one of {EFFORTS}")
        if not self.reasoning and (self.efforts or self.default_effort is not None):
            raise ValueError("only a reasoning model takes efforts and a default_effort")
        if self.reasoning and not self.efforts:
            raise ValueError("a reasoning model needs at least one effort")
        if self.reasoning and self.default_effort not in self.efforts:
            raise ValueError(f"default_effort {self.default_effort!r} must be one of {self.efforts}")
        if self.shutdown_date is not None:
            parse_date(self.shutdown_date, "shutdown_date")
        if self.chat_function_tools not in ("always", "effort_none"):
            raise ValueError("chat_function_tools must be 'always' or 'effort_none'")
        if self.web_search_call_price < 0:
            raise ValueError("web_search_call_price must not be negative")
        if self.context_window < 1 or (self.max_output_tokens is not None and self.max_output_tokens < 1):
            raise ValueError("context_window and max_output_tokens must be positive")

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v) for f, v in _items(self)}


def _items(rules: ModelRules) -> list[tuple[dataclasses.Field, Any]]:
    return [(f, getattr(rules, f.name)) for f in dataclasses.fields(rules)]


PLAIN = ModelRules()
_REASONING_SHAPE = {  # what "reasoning": true means for a name no table knows, unless the spec says more
    "reasoning": True,
    "efforts": ("low", "medium", "high"),
    "default_effort": "medium",
    "refuses_max_tokens": True,
    "refuses_temperature": True,
}
_PLAIN_SHAPE = {
    "reasoning": False,
    "efforts": (),
    "default_effort": None,
    "refuses_max_tokens": False,
    "refuses_temperature": False,
}


def _reasoner(efforts: Sequence[str], default: str, **rest: Any) -> ModelRules:
    return ModelRules(
        reasoning=True,
        efforts=tuple(efforts),
        default_effort=default,
        refuses_max_tokens=True,
        refuses_temperature=True,
        **rest,
    )


GPT6 = _reasoner(
    ("none", "low", "medium", "high", "xhigh", "max"),
    "medium",
    context_window=1_050_000,
    max_output_tokens=128_000,
    flex=True,
    fast=True,
    cache_write=True,
    web_search=True,
    chat_function_tools="effort_none",
)
GPT5X = _reasoner(
    ("none", "low", "medium", "high"),
    "none",
    context_window=400_000,
    max_output_tokens=128_000,
    flex=True,
    web_search=True,
)
_GPT5 = ("minimal", "low", "medium", "high")
_O_SERIES = ("low", "medium", "high")
_OCT, _DEC, _JAN = "2026-10-23", "2026-12-11", "2027-01-14"
_4O = ModelRules(context_window=128_000, max_output_tokens=16_384, web_search=True)
_41 = ModelRules(context_window=1_047_576, max_output_tokens=32_768, web_search=True)
_O = {"context_window": 200_000, "max_output_tokens": 100_000}

_GPT54 = dataclasses.replace(GPT5X, chat_function_tools="effort_none")
_GPT5_RULES = _reasoner(
    _GPT5, "medium", context_window=400_000, max_output_tokens=128_000, flex=True, web_search=True
)
# Web search is not offered on the nano models nor on gpt-5-chat-latest ("Tool 'web_search' is not
# supported with ..."), nor on o1 and o3-mini.
_NO_SEARCH = {"web_search": False}

LINEUP: dict[str, ModelRules] = {
    # Shut down 23 Oct 2026.
    "gpt-3.5-turbo": ModelRules(
        context_window=16_385, max_output_tokens=4_096, json_schema=False, shutdown_date=_OCT
    ),
    "gpt-4": ModelRules(context_window=8_192, max_output_tokens=8_192, json_schema=False, shutdown_date=_OCT),
    "gpt-4-turbo": ModelRules(
        context_window=128_000, max_output_tokens=4_096, json_schema=False, shutdown_date=_OCT
    ),
    "gpt-4.1-nano": dataclasses.replace(_41, shutdown_date=_OCT, **_NO_SEARCH),
    "o1": _reasoner(_O_SERIES, "medium", **_O, shutdown_date=_OCT),
    "o3-mini": _reasoner(_O_SERIES, "medium", **_O, shutdown_date=_OCT),
    "o4-mini": _reasoner(_O_SERIES, "medium", **_O, flex=True, shutdown_date=_OCT, web_search=True),
    # Shut down 11 Dec 2026.
    "gpt-5": dataclasses.replace(_GPT5_RULES, shutdown_date=_DEC),
    "gpt-5-mini": dataclasses.replace(_GPT5_RULES, shutdown_date=_DEC),
    "gpt-5-nano": dataclasses.replace(_GPT5_RULES, shutdown_date=_DEC, **_NO_SEARCH),
    "gpt-5-pro": _reasoner(
        ("high",),
        "high",
        context_window=400_000,
        max_output_tokens=272_000,
        shutdown_date=_DEC,
        web_search=True,
    ),
    "o3": _reasoner(_O_SERIES, "medium", **_O, flex=True, shutdown_date=_DEC, web_search=True),
    "o3-pro": _reasoner(_O_SERIES, "medium", **_O, shutdown_date=_DEC, web_search=True),
    # Shut down 14 Jan 2027.
    "gpt-4o": dataclasses.replace(_4O, shutdown_date=_JAN),
    "gpt-4o-mini": dataclasses.replace(_4O, shutdown_date=_JAN),
    "gpt-4.1": dataclasses.replace(_41, shutdown_date=_JAN),
    "gpt-4.1-mini": dataclasses.replace(_41, shutdown_date=_JAN),
    # Current.
    "gpt-5-chat-latest": dataclasses.replace(_4O, **_NO_SEARCH),
    **dict.fromkeys(
        (
            "gpt-5.1",
            "gpt-5.1-mini",
            "gpt-5.2",
            "gpt-5.3",
        ),
        GPT5X,
    ),
    # gpt-5.4 and later take function tools on Chat Completions at effort none only (seen on gpt-5.4,
    # openai-openapi#541, pipecat#4043; assumed for the later ones).
    **dict.fromkeys(
        ("gpt-5.4", "gpt-5.4-mini", "gpt-5.5", "gpt-5.6-luna", "gpt-5.6-terra", "gpt-5.6-sol"), _GPT54
    ),
    "gpt-5.4-nano": dataclasses.replace(_GPT54, **_NO_SEARCH),
    **dict.fromkeys(
        ("gpt-6-luna", "gpt-6-sol", "gpt-6-astra", "gpt-6.1-terra", "gpt-6.1-sol", "gpt-6.2-luna"), GPT6
    ),
}

# Names that extend no LINEUP entry: the family's rules, with no shutdown date of their own.
_O_FAMILY = _reasoner(_O_SERIES, "medium", **_O, flex=True, web_search=True)
FAMILIES: dict[str, ModelRules] = {
    "gpt-6": GPT6,
    "gpt-5.": GPT5X,
    "o1": _O_FAMILY,
    "o3": _O_FAMILY,
    "o4": _O_FAMILY,
}

DEFAULT_MODELS: tuple[str, ...] = tuple(LINEUP)  # served by default: the shut-down ones answer 404


def base_name(model: str) -> str:
    """A snapshot's base name (gpt-4o-mini-2024-07-18 -> gpt-4o-mini, gpt-3.5-turbo-0125 -> gpt-3.5-turbo)."""
    match = _SNAPSHOT_RE.match(model)
    return match.group(1) if match else model


@lru_cache(maxsize=4096)
def known_rules(model: str) -> ModelRules | None:
    """LINEUP's or a family's rules for this name, or None when no table here knows it."""
    name = base_name(model)
    if name in LINEUP:
        return LINEUP[name]
    extended = [k for k in LINEUP if name.startswith(k + "-")]
    if extended:
        return LINEUP[max(extended, key=len)]
    prefixes = [p for p in FAMILIES if name.startswith(p)]
    return FAMILIES[max(prefixes, key=len)] if prefixes else None


def rules_from_spec(name: str, spec: Mapping[str, Any]) -> ModelRules:
    """SimConfig.extra_models[name] made into rules: the fields given, over what the tables know of the name.

    `{"reasoning": true}` alone gives a reasoning model with OpenAI's o-series shape (efforts low, medium,
    high; default medium; refuses max_tokens and a non-default temperature); any field can be set besides.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"extra_models[{name!r}] must be an object of rule fields")
    fields = {f.name for f in dataclasses.fields(ModelRules)}
    unknown = set(spec) - fields
    if unknown:
        raise ValueError(
            f"extra_models[{name!r}]: unknown rule fields {sorted(unknown)}; known: {sorted(fields)}"
        )
    base = known_rules(name) or PLAIN
    if "reasoning" in spec and bool(spec["reasoning"]) != base.reasoning:
        base = dataclasses.replace(base, **(_REASONING_SHAPE if spec["reasoning"] else _PLAIN_SHAPE))
    changes = dict(spec)
    if (
        "efforts" in changes
        and "default_effort" not in changes
        and base.default_effort not in changes["efforts"]
    ):
        efforts = list(changes["efforts"])
        changes["default_effort"] = "medium" if "medium" in efforts else (efforts[0] if efforts else None)
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as err:
        raise ValueError(f"extra_models[{name!r}]: {err}") from err


def is_shut_down(rules: ModelRules, today: dt.date) -> bool:
    """From its shutdown date on, a model answers 404 model_not_found."""
    return rules.shutdown_date is not None and rules.shutdown_date <= today.isoformat()  # ISO dates sort


# ----- OpenAI's refusals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An error the API answers with: status, OpenAI's message, param and code."""

    status: int
    message: str
    param: str | None
    code: str | None
    type: str = "invalid_request_error"


def model_not_found(model: str) -> Refusal:
    return Refusal(
        404, f"The model `{model}` does not exist or you do not have access to it.", None, "model_not_found"
    )


def openai_list(values: Sequence[str]) -> str:
    """Values quoted and joined the way OpenAI's messages list them: 'a', 'b', and 'c'."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def json_text(value: Any) -> str:
    """A request value as OpenAI echoes it in a message: numbers as sent, strings quoted."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unsupported_parameter(param: str, hint: str = "") -> Refusal:
    message = f"Unsupported parameter: '{param}' is not supported with this model.{hint}"
    return Refusal(400, message, param, "unsupported_parameter")


def check_request(body: Mapping[str, Any], rules: ModelRules) -> Refusal | None:
    """The first rule of this model the request breaks, in the order OpenAI checks them; None if it is fine.

    Order: max_tokens refused, an output cap above the model's limit, temperature, top_p, reasoning_effort,
    tools (Chat Completions takes function tools only; some models only at effort none), response_format
    json_schema, service_tier flex / fast.
    """
    if rules.refuses_max_tokens and body.get("max_tokens") is not None:
        return unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
    for name in ("max_tokens", "max_completion_tokens"):
        cap = body.get(name)
        if rules.max_output_tokens is not None and isinstance(cap, int) and cap > rules.max_output_tokens:
            return Refusal(
                400,
                f"{name} is too large: {cap}. This model supports at most {rules.max_output_tokens} completion "
                f"tokens, whereas you provided {cap}.",
                name,
                "invalid_value",
            )
    if rules.refuses_temperature:
        for name in ("temperature", "top_p"):
            value = body.get(name)
            if value is not None and value != 1:
                return Refusal(
                    400,
                    f"Unsupported value: '{name}' does not support {json_text(value)} with this model. "
                    "Only the default (1) value is supported.",
                    name,
                    "unsupported_value",
                )
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not rules.reasoning:
            return unsupported_parameter("reasoning_effort")
        if effort not in rules.efforts:
            return Refusal(
                400,
                f"Unsupported value: 'reasoning_effort' does not support {json_text(effort)} with this model. "
                f"Supported values are: {openai_list(rules.efforts)}.",
                "reasoning_effort",
                "unsupported_value",
            )
    refusal = _check_chat_tools(body, rules)
    if refusal is not None:
        return refusal
    response_format = body.get("response_format")
    if (
        not rules.json_schema
        and isinstance(response_format, Mapping)
        and response_format.get("type") == "json_schema"
    ):
        return Refusal(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model. Learn "
            "more about supported models at the Structured Outputs guide: "
            "https://platform.openai.com/docs/guides/structured-outputs",
            None,
            None,
        )
    tier = body.get("service_tier")
    if (tier == "flex" and not rules.flex) or (tier == "fast" and not rules.fast):
        return Refusal(
            400,
            f"{tier.capitalize()} processing is not available for the model {body.get('model')}.",
            "service_tier",
            "unsupported_value",
        )
    return None


def _check_chat_tools(body: Mapping[str, Any], rules: ModelRules) -> Refusal | None:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind not in ("function", "custom"):  # hosted tools (web_search...) live on the Responses API only
            return Refusal(
                400,
                f"Invalid value: {json_text(kind)}. Supported values are: 'function' and 'custom'.",
                f"tools[{i}].type",
                "invalid_value",
            )
    effort = body.get("reasoning_effort") or rules.default_effort
    if rules.chat_function_tools == "effort_none" and effort != "none":
        return Refusal(
            400,
            f"Function tools with reasoning_effort are not supported for {body.get('model')} in "
            "/v1/chat/completions. Please use /v1/responses instead.",
            "reasoning_effort",
            None,
        )
    return None


# ----- the Responses API's own wording ---------------------------------------------------------------------

# Chat Completions parameters the Responses API refuses by name, with where each one moved.
MOVED_IN_RESPONSES = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
}
_RESPONSES_NAMES = {
    "max_completion_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "response_format": "text.format",
}
HOSTED_SEARCH_TOOLS = ("web_search", "web_search_preview", "web_search_2025_08_26")


def moved_parameter(name: str) -> Refusal:
    """OpenAI's answer to a Chat Completions parameter sent to /v1/responses (param is null there)."""
    return Refusal(
        400,
        f"Unsupported parameter: '{name}'. In the Responses API, this parameter has moved to "
        f"'{MOVED_IN_RESPONSES[name]}'. Try again with the new parameter.",
        None,
        "unsupported_parameter",
    )


def as_responses_refusal(refusal: Refusal) -> Refusal:
    """A check_request refusal in the Responses API's names (reasoning.effort, max_output_tokens, text.format)."""
    message, param = refusal.message, refusal.param
    for old, new in _RESPONSES_NAMES.items():
        message = message.replace(old, new)
        if param == old:
            param = new
    return dataclasses.replace(refusal, message=message, param=param)


def check_responses_sampling(body: Mapping[str, Any], rules: ModelRules) -> Refusal | None:
    """A reasoning model refuses temperature / top_p other than 1 on /v1/responses, in that API's words."""
    if rules.refuses_temperature:
        for name in ("temperature", "top_p"):
            value = body.get(name)
            if value is not None and value != 1:
                return unsupported_parameter(name)
    return None


def check_tools(
    tools: Sequence[Mapping[str, Any]], rules: ModelRules, model: str, effort: str | None
) -> Refusal | None:
    """A hosted search tool the model does not take, or takes not at this effort; None when the tools are fine."""
    searches = [t.get("type") for t in tools if t.get("type") in HOSTED_SEARCH_TOOLS]
    if not searches:
        return None
    if not rules.web_search:
        return Refusal(400, f"Tool '{searches[0]}' is not supported with {model}.", "tools", None)
    if effort in NO_TOOL_EFFORTS:
        return Refusal(
            400,
            f"The following tools cannot be used with reasoning.effort '{effort}': {', '.join(searches)}.",
            "tools",
            None,
        )
    return None


def effective_effort(body: Mapping[str, Any], rules: ModelRules) -> str | None:
    """The effort a (valid) request is served at: the one it sent, else the model's default; None if not reasoning."""
    if not rules.reasoning:
        return None
    effort = body.get("reasoning_effort")
    return effort if isinstance(effort, str) else rules.default_effort


def model_object(model: str, rules: ModelRules, created: int) -> dict:
    """A /v1/models entry, with the shutdown_date OpenAI lists (null when none is announced)."""
    return {
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "system",
        "shutdown_date": rules.shutdown_date,
    }
