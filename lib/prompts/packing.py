"""Several rows in one request: the packed request's shape and how its answer splits back to rows.

A packed request is the prompt's own static part (system message, few-shot turns) once, then one user turn
that holds each row's rendered user message fenced in `<item id="rN">...</item>`. The answer is structured
output `{"items": [{"id": "rN", "answer": ...}]}` where `answer` is what the row alone would get (text,
or the prompt's JSON object). Splitting trusts only ids that appear exactly once and belong to the pack:
a missing, repeated or mangled id sends just that row again on its own.

The shared static part is paid once per N rows instead of once per row, which is the point: for the shipped
icebreaker it is ~680 of ~767 input tokens, below the 1,024-token minimum for prompt caching.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib import models
from lib.prompts import templates
from lib.prompts.templates import PromptSpec

SCHEMA_NAME = "packed_answers"
ITEM_RE = re.compile(r'<item id="([^"<>]{1,40})">\n(.*?)\n</item>', re.S)
PER_ITEM_OVERHEAD_TOKENS = 12  # {"id":"r123","answer":...}, per item in the answer
INSTRUCTION = (
    'The user\'s message holds several separate items, each between <item id="..."> and </item>. '
    "Treat each item as its own request, following the instructions above, and never mix items. "
    'Answer with JSON: {"items": [{"id": <the item\'s id, copied exactly>, "answer": <the answer to '
    "that item alone>}]}, one entry per item, in the same order."
)


class PackError(ValueError):
    """This prompt and model cannot be packed: the message says why."""


def item_id(row_id: int) -> str:
    return f"r{row_id}"


def can_pack(spec: PromptSpec, model: str) -> str | None:
    """Why this prompt cannot be packed on this model, or None when it can."""
    if not models.model_info(model).supports_json_schema:
        return f"{model} does not take a JSON schema, which packing needs to split the answer back to rows."
    if templates.placeholders(spec.system):
        return (
            "The system message has placeholders, so rows do not share it: packing would not save anything."
        )
    return None


def answer_schema(spec: PromptSpec) -> dict:
    """The schema of one item's answer: the prompt's strict answer object, or a string for a text prompt."""
    if templates.is_structured(spec):
        return templates._strict_for(spec)[0]
    return {"type": "string"}


def packed_schema(spec: PromptSpec) -> dict:
    item = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "answer": answer_schema(spec)},
        "required": ["id", "answer"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }


def pack_request(
    spec: PromptSpec,
    bodies: Sequence[tuple[int, dict]],
    *,
    model: str,
    max_tokens: int,
    temperature: float | None,
    extra: Mapping[str, Any] | None = None,
    effort: str | None = None,
) -> dict:
    """One request for these rows' single-row bodies (row id, body from `templates.build_request`)."""
    problem = can_pack(spec, model)
    if problem:
        raise PackError(problem)
    first = bodies[0][1]["messages"]
    system = dict(first[0])
    system["content"] = f"{system['content']}\n\n{INSTRUCTION}"
    items = "\n".join(
        f'<item id="{item_id(row_id)}">\n{_escaped(body["messages"][-1]["content"])}\n</item>'
        for row_id, body in bodies
    )
    cap = len(bodies) * (max_tokens + PER_ITEM_OVERHEAD_TOKENS) + 16
    body = models.request_params(model, max_tokens=cap, temperature=temperature, effort=effort)
    body["messages"] = [system, *first[1:-1], {"role": "user", "content": items}]
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": packed_schema(spec)},
    }
    body.update(extra or {})
    return body


def _escaped(text: str) -> str:
    """Lead text cannot open or close an item fence (it could otherwise take another row's answer)."""
    return text.replace("</item", "<\\/item").replace("<item", "<\\item")


@dataclass(frozen=True)
class Split:
    answers: dict[int, str]  # row id -> the row's answer text (JSON text for a structured prompt)
    resend: tuple[int, ...]  # rows whose id was missing, repeated or mangled: sent again on their own
    problem: str | None = None  # why nothing could be used (broken JSON), for the log


def split_answer(text: str | None, row_ids: Sequence[int]) -> Split:
    """Each row's answer from a packed answer; a row whose id is not there exactly once is resent."""
    try:
        data = json.loads(text or "")
        entries = data["items"]
        if not isinstance(entries, list):
            raise TypeError("items is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return Split({}, tuple(row_ids), f"The packed answer could not be read ({exc}).")
    wanted = {item_id(r): r for r in row_ids}
    seen = Counter(e.get("id") for e in entries if isinstance(e, dict))
    answers: dict[int, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or seen[entry.get("id")] != 1 or entry.get("id") not in wanted:
            continue
        value = entry.get("answer")
        if value is None:
            continue
        answers[wanted[entry["id"]]] = (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        )
    return Split(answers, tuple(r for r in row_ids if r not in answers))


_ITEMS_KEY = re.compile(r'"items"\s*:\s*\[')


def item_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each entry of a packed answer sits in its text: {item id: (start, end)}; {} when unreadable."""
    found = _ITEMS_KEY.search(text)
    if found is None:
        return {}
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    pos = found.end()
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            entry, end = decoder.raw_decode(text, pos)
        except ValueError:
            break
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            spans.setdefault(entry["id"], (pos, end))
        pos = end
    return spans


def cited_items(text: str, citations: Sequence[Any], row_ids: Sequence[int]) -> dict[int, tuple]:
    """Each packed row's sources: the citations (with .start, .end, .source) inside its entry, each address once."""
    spans = item_spans(text)
    out: dict[int, tuple] = {}
    for row_id in row_ids:
        span = spans.get(item_id(row_id))
        if span is None:
            continue
        seen: dict[str, Any] = {}
        for c in citations:
            if span[0] <= c.start and c.end <= span[1]:
                seen.setdefault(c.source.url, c.source)
        if seen:
            out[row_id] = tuple(seen.values())
    return out


def share(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, as integers that add up to it exactly (largest remainder)."""
    if not weights:
        return []
    whole = sum(weights)
    if whole <= 0:
        weights, whole = [1] * len(weights), len(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts
