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
Costs are the range priced with `lib.cost.pricing`. Identical requests (duplicate leads) are counted once:
the engine sends one and reuses its answer, and `reused_rows` says how many rows will. When the static
prefix (system message and few-shot turns, everything before the row's own turn) reaches the 1,024 tokens
prompt caching needs, every request after the first is assumed to read it from the cache (in 128-token
steps, as OpenAI caches), which `cached_tokens` carries; the high end of the range assumes no cache hits.
`paths` sets the standard, flex, batch and packed ways to run side by side, each with a likely duration.

Web research (bodies carrying the web_search tool, lib.prompts.research) adds billed calls and the search
content they bring (input tokens), shown apart from the prompt's own tokens: from 0 calls a request (a row
that needs no search) up to its max_tool_calls, each bringing the catalog's content per call; after a
sample, from the sample's mean calls a row to its 90th percentile. Every cost figure includes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from lib import models
from lib.cost import pricing, tokens
from lib.prompts import research

LOW_OUTPUT_FRACTION = 0.25
CACHE_MIN_TOKENS = 1024  # OpenAI caches a prompt prefix from this length, in steps of CACHE_STEP
CACHE_STEP = 128
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
    distinct: int = 0  # distinct requests: what is really sent (duplicates reuse an answer)
    reused_rows: int = 0  # rows that will reuse another row's answer, at no cost
    prefix_tokens: int = 0  # the static prefix every request shares (system, few-shot turns)
    cached_tokens: int = 0  # prompt tokens expected to be read from the cache (0 under CACHE_MIN_TOKENS)
    cost_no_cache_low: float | None = None  # the low end without any cache hit: what caching saves
    # Of the output, hidden reasoning (billed as output): from the sample's real usage; 0 without a sample
    # or for a model that does not reason.
    reasoning_tokens_low: int = 0
    reasoning_tokens_high: int = 0
    # Web research: billed search calls and the search content (input tokens) they bring, low to high, and
    # what the calls alone cost (the content is in the cost at the input price). 0 without web research.
    search_calls_low: int = 0
    search_calls_high: int = 0
    search_tokens_low: int = 0
    search_tokens_high: int = 0
    search_cost_low: float | None = 0.0
    search_cost_high: float | None = 0.0
    search_basis: str = ""

    @property
    def web_search(self) -> bool:
        return self.search_calls_high > 0


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


def search_range(
    requests: Sequence[dict], sample_calls: Sequence[int] = ()
) -> tuple[int, int, int, int, str]:
    """(calls low, calls high, content tokens low, content tokens high, basis) of these requests' web
    research: 0 to max_tool_calls a request, or the sample's mean to its 90th percentile."""
    caps = [research.allowance(body) for body in requests]
    caps = [c for c in caps if c[0]]
    if not caps:
        return 0, 0, 0, 0, ""
    per_call = max(p for _, p in caps)
    most = sum(c for c, _ in caps)
    if sample_calls:
        mean = sum(sample_calls) / len(sample_calls)
        p90 = _percentile(sample_calls, 0.9)
        low = min(most, math.ceil(mean * len(caps)))
        high = min(most, math.ceil(p90 * len(caps)))
        basis = (
            f"web search: {mean:.1f} billed calls a row on the sample's average (low), {p90} at its 90th "
            f"percentile (high), each bringing up to {per_call:,} tokens of search content"
        )
    else:
        low, high = 0, most
        cap = max(c for c, _ in caps)
        basis = (
            f"web search: 0 to {cap} billed calls a row (max_tool_calls), each bringing up to {per_call:,} "
            "tokens of search content; try a sample for a real figure"
        )
    return low, high, low * per_call, high * per_call, basis


def quote(
    requests: Sequence[dict],
    model: str,
    *,
    max_tokens: int | None,
    sample_output_tokens: Sequence[int] = (),
    sample_reasoning_tokens: Sequence[int] = (),
    price: pricing.Price | None | object = _UNSET,
    sample_search_calls: Sequence[int] = (),
) -> Quote:
    """What running these request bodies (from `templates.build_request`) will cost, as a range."""
    if price is _UNSET:
        price = pricing.price_for(model)
    counts = count_inputs(requests, model)
    first_of: dict[str, int] = {}
    for i, body in enumerate(requests):
        first_of.setdefault(json.dumps(body, sort_keys=True, ensure_ascii=False), i)
    distinct = sorted(first_of.values())
    input_tokens = sum(counts.tokens[i] for i in distinct)
    low, high, basis = output_range(len(distinct), max_tokens, list(sample_output_tokens))
    share = sum(sample_reasoning_tokens) / sum(sample_output_tokens) if sum(sample_output_tokens) else 0.0
    if share:
        basis += f"; {share:.0%} of the sample's output was hidden reasoning, billed as output"
    window = models.model_info(model).context_window
    reserve = max_tokens or 0
    over = [i for i, n in enumerate(counts.tokens) if n + reserve > window]
    prefix = static_prefix_tokens(requests, model)
    step = prefix // CACHE_STEP * CACHE_STEP
    cached = step * max(len(distinct) - 1, 0) if step >= CACHE_MIN_TOKENS else 0
    usage = pricing.Usage
    calls_low, calls_high, search_low, search_high, search_basis = search_range(
        [requests[i] for i in distinct], list(sample_search_calls)
    )
    return Quote(
        rows=len(requests),
        input_tokens=input_tokens,
        exact=counts.exact,
        encoding=counts.encoding,
        output_tokens_low=low,
        output_tokens_high=high,
        cost_low=pricing.cost(
            usage(input_tokens + search_low, low, cached_tokens=cached, web_search_calls=calls_low),
            price,  # type: ignore[arg-type]
        ),
        cost_high=pricing.cost(
            usage(input_tokens + search_high, high, web_search_calls=calls_high),
            price,  # type: ignore[arg-type]
        ),
        basis=basis,
        per_row_input=counts.tokens,
        over_context=over,
        distinct=len(distinct),
        reused_rows=len(requests) - len(distinct),
        prefix_tokens=prefix,
        cached_tokens=cached,
        cost_no_cache_low=pricing.cost(
            usage(input_tokens + search_low, low, web_search_calls=calls_low),
            price,  # type: ignore[arg-type]
        ),
        reasoning_tokens_low=math.ceil(share * low),
        reasoning_tokens_high=math.ceil(share * high),
        search_calls_low=calls_low,
        search_calls_high=calls_high,
        search_tokens_low=search_low,
        search_tokens_high=search_high,
        search_cost_low=pricing.search_cost(calls_low, price),  # type: ignore[arg-type]
        search_cost_high=pricing.search_cost(calls_high, price),  # type: ignore[arg-type]
        search_basis=search_basis,
    )


def packed_quote(
    unpacked: Quote,
    packed_requests: Sequence[dict],
    model: str,
    *,
    price: pricing.Price | None,
    per_item_overhead: int = 12,
) -> Quote:
    """The same run with rows packed: input counted from the packed bodies, output as unpacked plus each
    item's id wrapping. `packed_requests` are the packs plus the rows that still go alone."""
    counts = count_inputs(packed_requests, model)
    input_tokens = sum(counts.tokens)
    extra = per_item_overhead * unpacked.distinct
    low, high = unpacked.output_tokens_low + extra, unpacked.output_tokens_high + extra
    q = unpacked  # the same rows search alike, packed or not
    usage_low = pricing.Usage(input_tokens + q.search_tokens_low, low, web_search_calls=q.search_calls_low)
    usage_high = pricing.Usage(
        input_tokens + q.search_tokens_high, high, web_search_calls=q.search_calls_high
    )
    return replace(
        unpacked,
        rows=len(packed_requests),
        distinct=len(packed_requests),
        input_tokens=input_tokens,
        output_tokens_low=low,
        output_tokens_high=high,
        cost_low=pricing.cost(usage_low, price),
        cost_high=pricing.cost(usage_high, price),
        cost_no_cache_low=pricing.cost(usage_low, price),
        per_row_input=counts.tokens,
        cached_tokens=0,
        prefix_tokens=static_prefix_tokens(packed_requests, model),
    )


def static_prefix_tokens(requests: Sequence[dict], model: str) -> int:
    """Tokens of the messages before the last that every request shares: what prompt caching can reuse."""
    if not requests:
        return 0
    prefix = requests[0]["messages"][:-1]
    if not prefix or any(b["messages"][:-1] != prefix for b in requests[1:64]):
        return 0
    return tokens.count_messages(prefix, model).tokens - tokens.REPLY_PRIMING


# --- the ways to run it, side by side ----------------------------------------------------------------

TYPICAL_LATENCY_S = 1.5  # a short answer from a small model, live
FLEX_SLOWDOWN = 2.0  # flex answers come slower, and wait when capacity is short
BATCH_TYPICAL = "usually within an hour or two; up to 24 h"


@dataclass(frozen=True)
class CostPath:
    name: str  # standard | flex | batch | packed ×N
    cost_low: float | None
    cost_high: float | None
    duration: str  # likely time, for people
    seconds: float | None  # the same as a number (None for batch: OpenAI gives no promise but 24 h)
    available: bool = True
    note: str = ""


def likely_seconds(
    requests: int, *, workers: int = 16, rpm: int | None = None, latency_s: float = TYPICAL_LATENCY_S
) -> float:
    """Requests / the rate the slower of the workers (each waiting `latency_s`) and the RPM ceiling allows."""
    rate = workers / latency_s
    if rpm:
        rate = min(rate, rpm / 60)
    return requests / rate if rate > 0 else math.inf


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _at(q: Quote, price: pricing.Price | None) -> tuple[float | None, float | None]:
    low = pricing.cost(
        pricing.Usage(
            q.input_tokens + q.search_tokens_low,
            q.output_tokens_low,
            cached_tokens=q.cached_tokens,
            web_search_calls=q.search_calls_low,
        ),
        price,
    )
    high = pricing.cost(
        pricing.Usage(
            q.input_tokens + q.search_tokens_high, q.output_tokens_high, web_search_calls=q.search_calls_high
        ),
        price,
    )
    return low, high


def paths(
    q: Quote,
    model: str,
    *,
    prices: Mapping[str, pricing.Price | None] | None = None,
    workers: int = 16,
    rpm: int | None = None,
    packed: Quote | None = None,
    rows_per_request: int | None = None,
) -> list[CostPath]:
    """Standard, flex (where the model has it), batch and, given a quote of packed requests, packed."""
    prices = prices if prices is not None else pricing.tier_prices(model)
    standard_s = likely_seconds(q.distinct or q.rows, workers=workers, rpm=rpm)
    out = [CostPath("standard", *_at(q, prices.get("default")), _duration(standard_s), standard_s)]
    flex_price = prices.get("flex")
    flex_s = standard_s * FLEX_SLOWDOWN
    out.append(
        CostPath(
            "flex",
            *_at(q, flex_price),
            f"{_duration(flex_s)}, longer when flex capacity is short",
            flex_s,
            available=flex_price is not None and pricing.supports_flex(model),
            note="" if flex_price is not None else f"{model} has no flex processing",
        )
    )
    batch_price = prices.get("batch")
    if batch_price is None and prices.get("default") is not None:
        batch_price = prices["default"].scaled(pricing.BATCH_DISCOUNT)
    out.append(CostPath("batch", *_at(q, batch_price), BATCH_TYPICAL, None))
    if packed is not None and rows_per_request:
        packed_s = likely_seconds(packed.distinct or packed.rows, workers=workers, rpm=rpm) * 2
        out.append(
            CostPath(
                f"packed ×{rows_per_request}",
                *_at(packed, prices.get("default")),
                _duration(packed_s),
                packed_s,
                note=f"{packed.rows:,} requests of up to {rows_per_request} rows",
            )
        )
    return out
