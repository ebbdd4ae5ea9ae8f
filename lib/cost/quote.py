"""Token count and cost quote for a whole run, before anything is spent.

Input tokens are counted like `lib.cost.tokens.count_messages` (the cookbook's framing: 3 tokens per message,
3 to prime the reply), but every distinct message text is encoded once: the system message and few-shot
turns shared by all rows cost one encode, and only the rows' user turns are batch-encoded. A json_schema
`response_format` is counted as its JSON text, an approximation (OpenAI does not publish how it frames
the schema), so such quotes are marked inexact.

Output tokens cannot be counted ahead, so the quote is a range:
- before a sample run: from LOW_OUTPUT_FRACTION of max_tokens (a typical short answer uses well under
  its cap) up to max_tokens on every row, which is the most the run can be billed for output;
- after a sample: from the sample's mean completion length (the expected total) up to its 90th
  percentile (a cautious total), both capped by max_tokens. Reasoning models' hidden reasoning tokens
  are part of completion_tokens, so a sample on such a model includes them.
Costs are the range priced with `lib.cost.pricing`, all input uncached (prompt caching only ever lowers it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lib.cost import pricing, tokens
from lib.prompts import models

LOW_OUTPUT_FRACTION = 0.25
# With no max_tokens the API caps output only by the context window: assume this much per row, and say so.
UNCAPPED_OUTPUT_GUESS = 500
_UNSET = object()


@dataclass(frozen=True)
class Quote:
    rows: int
    input_tokens: int
    exact: bool  # False when a count is an estimate (unknown tokenizer, schema framing)
    encoding: str | None
    output_tokens_low: int
    output_tokens_high: int
    cost_low: float | None  # None when the model is unpriced (never shown as $0)
    cost_high: float | None
    basis: str  # how output was estimated, for people
    per_row_input: list[int] | None = None
    over_context: list[int] = field(default_factory=list)  # row positions whose input + output overflow


def _schema_text(body: dict, seen: dict[tuple[int, str], str]) -> str:
    """The response_format's json_schema as compact JSON; `seen` memoises schemas shared between bodies."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return ""
    spec = fmt.get("json_schema", {})
    key = (id(spec.get("schema")), str(spec.get("name")))
    if key not in seen:
        seen[key] = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    return seen[key]


def count_inputs(requests: Sequence[dict], model: str) -> tokens.TokenCounts:
    """Prompt tokens of each request, encoding each distinct text once (shared prefixes count once)."""
    # One pass collects the distinct texts; rows rendered from one spec share their system and
    # few-shot strings, so only the user turns are really encoded.
    layouts: list[tuple[list[str], int, str]] = []
    distinct: dict[str, int] = {}
    schemas: dict[tuple[int, str], str] = {}  # the bodies are alive throughout, so ids stay unique
    for body in requests:
        texts = []
        overhead = tokens.REPLY_PRIMING
        for message in body["messages"]:
            content = message.get("content")
            texts.append(content if isinstance(content, str) else tokens._text_of(message))
            texts.append(message["role"])
            overhead += tokens.TOKENS_PER_MESSAGE + (tokens.TOKENS_PER_NAME if message.get("name") else 0)
        schema = _schema_text(body, schemas)
        if schema:
            texts.append(schema)
        layouts.append((texts, overhead, schema))
        distinct.update(dict.fromkeys(texts, 0))
    counts = tokens.count_texts(list(distinct), model)
    distinct = dict(zip(distinct, counts.tokens, strict=True))
    per_row = [overhead + sum(distinct[t] for t in texts) for texts, overhead, _ in layouts]
    schema_sent = any(schema for _, _, schema in layouts)
    return tokens.TokenCounts(per_row, counts.exact and not schema_sent, counts.encoding)


def _percentile(values: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def output_range(rows: int, max_tokens: int | None, sample: Sequence[int]) -> tuple[int, int, str]:
    """(low, high, basis) for the output tokens of `rows` rows."""
    cap = max_tokens
    if sample:
        mean = sum(sample) / len(sample)
        p90 = _percentile(sample, 0.9)
        if cap is not None:
            mean, p90 = min(mean, cap), min(p90, cap)
        basis = (
            f"sample of {len(sample)} row{'s' if len(sample) != 1 else ''}: {mean:.0f} tokens a row on average (low), "
            f"{p90:.0f} at the 90th percentile (high)"
        )
        return math.ceil(mean * rows), math.ceil(p90 * rows), basis
    if cap is None:
        high = UNCAPPED_OUTPUT_GUESS
        basis = f"no max_tokens set: assumed up to {high} tokens a row; try a sample for a real figure"
    else:
        high = cap
        basis = (
            f"max_tokens: up to {cap} tokens a row; low assumes {LOW_OUTPUT_FRACTION:.0%} of it. "
            "Try a sample for a real figure"
        )
    return math.ceil(LOW_OUTPUT_FRACTION * high * rows), high * rows, basis


def quote(
    requests: Sequence[dict],
    model: str,
    *,
    max_tokens: int | None,
    sample_output_tokens: Sequence[int] = (),
    price: pricing.Price | None | object = _UNSET,
) -> Quote:
    """What running these request bodies (from `templates.build_request`) will cost, as a range."""
    if price is _UNSET:
        price = pricing.price_for(model)
    counts = count_inputs(requests, model)
    input_tokens = sum(counts.tokens)
    low, high, basis = output_range(len(requests), max_tokens, list(sample_output_tokens))
    window = models.model_info(model).context_window
    reserve = max_tokens or 0
    over = [i for i, n in enumerate(counts.tokens) if n + reserve > window]
    return Quote(
        rows=len(requests),
        input_tokens=input_tokens,
        exact=counts.exact,
        encoding=counts.encoding,
        output_tokens_low=low,
        output_tokens_high=high,
        cost_low=pricing.cost(pricing.Usage(input_tokens, low), price),  # type: ignore[arg-type]
        cost_high=pricing.cost(pricing.Usage(input_tokens, high), price),  # type: ignore[arg-type]
        basis=basis,
        per_row_input=counts.tokens,
        over_context=over,
    )
