"""The Responses API: POST /responses through the openai SDK, from the same chat-shaped body, parsed into an Outcome.

Rows are planned, hashed and cached as Chat Completions bodies (lib.prompts.templates, lib.models.shapes);
`to_responses` spells one for this API as it is sent: the messages as `input` items (system, few-shot
turns, the row's fenced data, roles kept), `max_tokens` / `max_completion_tokens` as `max_output_tokens`,
`reasoning_effort` as `reasoning.effort`, a `response_format` as `text.format`, and `store: false` (nothing
is kept at OpenAI). `prompt_cache_key`, `service_tier`, `temperature`, the web_search tool and
`max_tool_calls` go as they are. So a row gets the same answer either way, and the paid-answer cache
(keyed by the chat-shaped body and the endpoint) serves an answer bought through either API.

`parse` reads an answer: the assistant message's `output_text` (its `url_citation` annotations become
Citations), a refusal part, `status` / `incomplete_details` as the finish reason ("length" when
max_output_tokens cut it), usage from `input_tokens`, `input_tokens_details.cached_tokens`,
`output_tokens_details.reasoning_tokens` and the billed web search calls from
`tool_usage.web_search.num_requests` (hidden sub-searches are billed and have no output item). The Batch
API's result lines go through the same function (lib.batch.files).

A refusal naming a parameter is given back in Chat Completions' names (`reasoning.effort` ->
`reasoning_effort`, `max_output_tokens` -> the body's token parameter, `text.format` -> `response_format`),
so lib.models.shapes learns a model's shape through this API exactly as through chat.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import openai

from lib.cost.pricing import Usage
from lib.engine import errors
from lib.engine.outcome import Citation, Outcome, OutcomeKind
from lib.engine.transports.chat import reached_server, seconds
from lib.store.records import Source

PATH = "/responses"
ENDPOINT = "/v1/responses"  # a batch line's url and a batch's endpoint
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens
TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")
HOSTED_SEARCH_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26"})
# Parameters of this API whose refusal is the same for every row: the run stops with one message.
SETTING_PARAMS = frozenset(
    {"tools", "max_tool_calls", "reasoning", "reasoning.effort", "text", "text.format", "max_output_tokens"}
)
_TRACKING = re.compile(r"([?&])utm_source=openai(&|$)")


def to_responses(body: Mapping[str, Any]) -> dict:
    """A Chat Completions body as the Responses API takes it (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "messages":
            out["input"] = [{"role": m["role"], "content": m.get("content") or ""} for m in value]
        elif key in TOKEN_PARAMS:
            if value is not None:
                out["max_output_tokens"] = max(int(value), MIN_OUTPUT_TOKENS)
        elif key == "reasoning_effort":
            if value is not None:
                out["reasoning"] = {"effort": value}
        elif key == "response_format":
            fmt = _text_format(value)
            if fmt is not None:
                out["text"] = {"format": fmt}
        else:
            out[key] = value
    out["store"] = False
    return out


def _text_format(response_format: Any) -> dict | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        fmt = {"type": "json_schema", "name": spec.get("name", "answer"), "schema": spec.get("schema", {})}
        if spec.get("strict") is not None:
            fmt["strict"] = spec["strict"]
        return fmt
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def uses_hosted_search(body: Mapping[str, Any]) -> bool:
    """Whether a body asks for the web_search tool (which only the Responses API serves)."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, Mapping) and t.get("type") in HOSTED_SEARCH_TOOLS for t in tools
    )


# --- reading an answer ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one Response says, in the terms the rest of the engine uses."""

    text: str | None
    refusal: str | None
    finish: str | None  # stop | length | content_filter
    usage: Usage
    citations: tuple[Citation, ...]
    response_id: str | None
    tier: str | None
    effort: str | None = None  # the reasoning effort it says it ran at (None: not a reasoning model)


def clean_url(url: str) -> str:
    """The address without the `utm_source=openai` OpenAI adds to cited links (nothing else is changed)."""
    cleaned = _TRACKING.sub(lambda m: m.group(1) if m.group(2) else "", url)
    return cleaned[:-1] if cleaned.endswith(("?", "&")) else cleaned


def parse(data: Mapping[str, Any], asked_tier: str = "default") -> Answer:
    """A Response object (JSON) read into an Answer; raises KeyError / TypeError / ValueError when it is not one."""
    if not isinstance(data, Mapping) or not isinstance(data.get("output"), list):
        raise ValueError("not a Response object")
    texts: list[str] = []
    refusals: list[str] = []
    citations: list[Citation] = []
    at = 0
    for item in data["output"]:
        if not isinstance(item, Mapping) or item.get("type") != "message":
            continue  # reasoning, web_search_call...: billed through usage, not part of the answer
        for part in item.get("content") or ():
            kind = part.get("type")
            if kind == "output_text":
                text = str(part.get("text") or "")
                for note in part.get("annotations") or ():
                    citation = _citation(note, text, at)
                    if citation is not None:
                        citations.append(citation)
                texts.append(text)
                at += len(text)
            elif kind == "refusal":
                refusals.append(str(part.get("refusal") or ""))
    status = data.get("status")
    reason = (data.get("incomplete_details") or {}).get("reason") if status == "incomplete" else None
    finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(reason or "", "stop")
    if status == "incomplete" and reason is None:
        finish = "length"
    tool_usage = data.get("tool_usage")
    usage = Usage.from_responses(data.get("usage"), tool_usage)
    if tool_usage is None:  # a server that does not report billed calls: the visible ones at least
        shown = sum(
            1 for o in data["output"] if isinstance(o, Mapping) and o.get("type") == "web_search_call"
        )
        if shown:
            usage = replace(usage, web_search_calls=shown)
    asked = asked_tier or "default"
    served = data.get("service_tier") or ("default" if asked == "auto" else asked)
    return Answer(
        text="".join(texts) if texts else None,
        refusal=" ".join(r for r in refusals if r) or None,
        finish=finish,
        usage=usage,
        citations=tuple(citations),
        response_id=data.get("id"),
        tier=str(served),
        effort=(data.get("reasoning") or {}).get("effort")
        if isinstance(data.get("reasoning"), Mapping)
        else None,
    )


def _citation(note: Any, text: str, offset: int) -> Citation | None:
    if not isinstance(note, Mapping) or note.get("type") != "url_citation" or not note.get("url"):
        return None
    start, end = int(note.get("start_index") or 0), int(note.get("end_index") or 0)
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    source = Source(clean_url(str(note["url"])), str(note.get("title") or ""), text[start:end])
    return Citation(offset + start, offset + end, source)


# --- refusals in Chat Completions' names -------------------------------------------------------------------


def chat_names(error: tuple[str, str, str, str], body: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """An error's (code, type, param, message) with this API's parameter names put back as the chat body
    spells them, so lib.models.shapes reads a refusal through either API alike."""
    code, etype, param, message = error
    token = next((p for p in TOKEN_PARAMS if p in body), "max_completion_tokens")
    names = {
        "reasoning.effort": "reasoning_effort",
        "text.format": "response_format",
        "max_output_tokens": token,
    }
    if "has moved to" in message:  # a Chat Completions name sent to this API: ours to fix, not the model's
        return code, etype, "", ""  # nothing for shape learning to take (the words stay in the message shown)
    for new, old in names.items():
        message = message.replace(f"'{new}'", f"'{old}'")
    return code, etype, names.get(param, param), message


class Responses:
    def __init__(self, client: openai.OpenAI, *, secrets: tuple[str, ...] = ()) -> None:
        self.client = client
        self.secrets = secrets

    def send(self, body: Mapping, *, row_id: int, timeout: float) -> Outcome:
        sent_at = time.monotonic()
        try:
            # As chat does: the SDK's raw call for a body we built (its auth, base URL, HTTP stack, errors).
            raw = self.client.post(
                PATH,
                cast_to=httpx2.Response,
                body=to_responses(body),
                options={"headers": {"X-Row-Id": str(row_id)}, "timeout": timeout},
            )
        except openai.APIStatusError as exc:
            return self._refused(exc, body)
        except openai.APITimeoutError as exc:
            return Outcome(
                OutcomeKind.TRANSIENT,
                message=f"No answer within {seconds(timeout)} (timed out).",
                maybe_billed=reached_server(exc),
                timed_out=True,
            )
        except openai.APIConnectionError as exc:
            why = errors.connection_kind(exc)
            there = why not in ("refused", "dns", "tls", "url")
            return Outcome(
                OutcomeKind.TRANSIENT,
                message=errors.connection_message(exc),
                unreachable=None if there else why,
                maybe_billed=there and reached_server(exc),
            )
        try:
            answer = parse(json.loads(raw.content), str(body.get("service_tier") or "default"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return Outcome(
                OutcomeKind.TRANSIENT,
                message="The API sent an unreadable answer (broken JSON).",
                headers=raw.headers,
                maybe_billed=True,  # an answer was made, and billed; its usage is unreadable
            )
        return Outcome(
            OutcomeKind.OK,
            text=answer.text,
            refusal=answer.refusal,
            finish=answer.finish,
            usage=answer.usage,
            headers=raw.headers,
            response_id=answer.response_id,
            tier=answer.tier,
            latency_s=time.monotonic() - sent_at,
            citations=answer.citations,
            served_effort=answer.effort,
        )

    def _refused(self, exc: openai.APIStatusError, body: Mapping) -> Outcome:
        headers = exc.response.headers if exc.response is not None else None
        fields = chat_names(errors.error_fields(exc.body, getattr(exc, "message", "") or ""), body)
        model = str(body.get("model", ""))
        kind, message = errors.classify_status(exc, model=model, secrets=self.secrets)
        _, _, param, _ = errors.error_fields(exc.body, "")
        if (
            exc.status_code == 404
            and kind is OutcomeKind.FATAL
            and errors.text_kind(*fields[:2], fields[3]) != "model"
        ):
            message = (
                f"{message} This endpoint may not serve the Responses API (POST {PATH}): send through Chat "
                "Completions instead (--api chat, or the sidebar's API choice); web search needs the Responses API."
            )
        elif kind is OutcomeKind.ROW and exc.status_code in (400, 422) and param in SETTING_PARAMS:
            kind = OutcomeKind.FATAL  # the same for every row: one message, not a list of failed rows
            if param == "tools" and uses_hosted_search(body):
                message = (
                    f"{model} cannot search the web here: the server refused the web_search tool. Pick a model "
                    f"that can (gpt-6-luna, say) or switch web research off; the rows stay pending. {message}"
                )
            else:
                message = f"The model rejected a setting ({param}). {message}"
        return Outcome(kind, message=message, headers=headers, status=exc.status_code, error=fields)


def make(client: openai.OpenAI, *, secrets: tuple[str, ...] = ()) -> Responses:
    return Responses(client, secrets=secrets)
