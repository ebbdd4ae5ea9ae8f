"""What the Prompt and Run pages show of a prompt: column snippets, run options, the quote's lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from lib import models
from lib.cost import pricing, quote
from lib.engine import runs
from lib.leads.company import company_key
from lib.prompts import research, templates
from lib.prompts.templates import PromptSpec
from lib.views.labels import money


def column_snippets(columns: Iterable[str]) -> str:
    """One '{{ Column }}' per line, ready to copy into a template."""
    return "\n".join("{{ " + str(c) + " }}" for c in columns)


def run_options(
    spec: PromptSpec,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    empty: str = "send",
    **extra,
) -> runs.RunOptions:
    """RunOptions with temperature dropped where the model rejects it."""
    if not models.model_info(model).supports_temperature:
        temperature = None
    return runs.RunOptions(model=model, max_tokens=max_tokens, temperature=temperature, empty=empty, **extra)


def quote_table(
    df: pd.DataFrame,
    spec: PromptSpec,
    options: runs.RunOptions,
    sample_output_tokens: Sequence[int] = (),
    sample_reasoning_tokens: Sequence[int] = (),
    sample_search_calls: Sequence[int] = (),
) -> quote.Quote:
    """Tokens and cost for every row that would be sent (rows skipped for empty cells excluded). Rows that
    share one answer (one answer per company) send one request, which the quote counts once."""
    web = research.of_spec(
        spec,
        enabled=options.web_search,
        max_tool_calls=options.max_tool_calls,
        context_size=options.search_context_size,
    )
    keyed_by = options.one_answer_per if options.one_answer_per is not None else spec.one_answer_per
    column = templates.column_for(keyed_by, [str(c) for c in df.columns]) if keyed_by else None
    asked_as: dict[str, dict] = {}
    bodies = []
    for cells in df.to_dict(orient="records"):
        if options.empty == "skip" and templates.empty_fields(spec, cells):
            continue
        if column is not None and (key := company_key(templates.cell_text(cells.get(column)))):
            cells = asked_as.setdefault(key, cells)  # as plan_run renders it: identical, so counted once
        bodies.append(
            templates.build_request(
                spec,
                cells,
                model=options.model,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                effort=options.reasoning_effort or spec.reasoning_effort,
                web_search=web,
            )
        )
    max_tokens = options.max_tokens or spec.max_tokens
    return quote.quote(
        bodies,
        options.model,
        max_tokens=max_tokens,
        sample_output_tokens=sample_output_tokens,
        sample_reasoning_tokens=sample_reasoning_tokens,
        price=options.price or pricing.price_for(options.model),
        sample_search_calls=sample_search_calls,
    )


def quote_lines(q: quote.Quote) -> dict[str, str]:
    """The quote as label -> value, for metrics."""
    exact = "" if q.exact else " (estimate)"
    cost = "unpriced model" if q.cost_low is None else f"{money(q.cost_low)} – {money(q.cost_high)}"
    lines = {
        "Rows to send": f"{q.rows:,}",
        "Input tokens": f"{q.input_tokens:,}{exact}",
        "Output tokens": f"{q.output_tokens_low:,} – {q.output_tokens_high:,}",
        "Cost": cost,
    }
    if q.web_search:  # tokens and calls apart: the calls are billed per call, their content as input
        calls = f"{q.search_calls_low:,} – {q.search_calls_high:,}"
        if q.search_cost_low is not None and q.search_cost_high is not None:
            calls += f" ({money(q.search_cost_low)} – {money(q.search_cost_high)})"
        lines["Web searches"] = calls
        lines["Search content tokens"] = f"{q.search_tokens_low:,} – {q.search_tokens_high:,}"
    return lines


def quote_notes(q: quote.Quote) -> list[str]:
    """What the quote already counts that a reader may not expect: reused answers, the cached prefix."""
    notes = []
    if q.web_search:
        notes.append(f"The cost includes web research ({q.search_basis}).")
    if q.reused_rows:
        notes.append(
            f"{q.reused_rows:,} row{'s' if q.reused_rows != 1 else ''} repeat another row's request and will "
            f"reuse its answer at no cost: {q.distinct:,} requests are quoted."
        )
    if q.cached_tokens:
        notes.append(
            f"The shared start of the prompt ({q.prefix_tokens:,} tokens) is long enough for prompt caching: "
            f"the low end assumes {q.cached_tokens:,} input tokens are read from the cache."
        )
    elif q.prefix_tokens:
        notes.append(
            f"The shared start of the prompt is {q.prefix_tokens:,} tokens, under the {quote.CACHE_MIN_TOKENS:,} "
            "prompt caching needs: packing several rows per request pays it once per request instead."
        )
    return notes


def quote_paths(
    df: pd.DataFrame,
    spec: PromptSpec,
    options: runs.RunOptions,
    *,
    sample_output_tokens: Sequence[int] = (),
    workers: int = 16,
    rpm: int | None = None,
) -> list[quote.CostPath]:
    """Every way to run this table (standard, flex, batch and, with options.rows_per_request, packed)."""
    q = quote_table(df, spec, options, sample_output_tokens)
    price = options.price or pricing.price_for(options.model)
    packed = None
    n = options.rows_per_request or spec.rows_per_request or 1
    if n > 1:
        try:
            plan = runs.plan_run(df, spec, options, base_url=None)
        except runs.PlanError:
            plan = None  # this prompt cannot be packed: its paths go without
        if plan is not None and plan.packs:
            packed = quote.packed_quote(q, runs.packed_requests(plan), options.model, price=price)
    prices = pricing.tier_prices(options.model, options.price)
    return quote.paths(
        q, options.model, prices=prices, workers=workers, rpm=rpm, packed=packed, rows_per_request=n
    )


@dataclass(frozen=True)
class SampleComparison:
    """The same sample rows answered alone and packed: what packing saves and what it changes."""

    cost_alone: float | None
    cost_packed: float | None
    saving: float | None  # cost_alone - cost_packed
    same_answers: int  # rows whose answer is the same text either way
    answered_both: int
    resent: int  # packed rows that came back without their id and were sent alone


def compare_packed(alone: Sequence, packed: Sequence) -> SampleComparison:
    """From the row records of an unpacked and a packed sample run over the same rows."""

    def total(rows: Sequence) -> float | None:
        costs = [r.cost_usd for r in rows if not r.from_cache]
        return None if any(c is None for c in costs) else sum(costs)

    by_id = {r.row_id: r for r in alone}
    both = [(by_id[r.row_id], r) for r in packed if r.row_id in by_id and r.text and by_id[r.row_id].text]
    a, p = total(alone), total(packed)
    return SampleComparison(
        cost_alone=a,
        cost_packed=p,
        saving=None if a is None or p is None else a - p,
        same_answers=sum(x.text == y.text for x, y in both),
        answered_both=len(both),
        resent=sum(r.status == "succeeded" and "packed" not in r.flags for r in packed),
    )


def path_rows(paths: list[quote.CostPath]) -> list[dict[str, str]]:
    """The quote's paths (standard, flex, batch, packed) as table rows: path, cost, likely time, note."""
    rows = []
    for p in paths:
        if not p.available:
            cost = "not offered"
        elif p.cost_low is None or p.cost_high is None:
            cost = "unpriced model"
        else:
            cost = f"{money(p.cost_low)} – {money(p.cost_high)}"
        rows.append({"Path": p.name, "Cost": cost, "Likely time": p.duration, "Note": p.note})
    return rows


BATCH_SUGGEST_ROWS = 5_000  # from this many rows, or this quote, the run page suggests the Batch API


BATCH_SUGGEST_USD = 5.0


def batch_quote_text(q: quote.Quote) -> str:
    """The quote's cost range as a batch: 'As a batch: $1.20 – $3.40 (half price, results within 24 h)'."""
    if q.cost_low is None or q.cost_high is None:
        return "As a batch: half the price of the live run (unpriced model)."
    low, high = _batch_cost(q.cost_low, q.search_cost_low), _batch_cost(q.cost_high, q.search_cost_high)
    return f"As a batch: {money(low)} – {money(high)} (half price, results within 24 h)."


def _batch_cost(live: float, searches: float | None) -> float:
    """A live cost as a batch: tokens at half price, web search calls at theirs (no discount)."""
    calls = searches or 0.0
    return (live - calls) * pricing.BATCH_DISCOUNT + calls


def suggest_batch(q: quote.Quote) -> str | None:
    """A nudge towards batch mode when the list is large or the quote high, with the expected saving."""
    if q.rows < BATCH_SUGGEST_ROWS and (q.cost_high is None or q.cost_high < BATCH_SUGGEST_USD):
        return None
    if q.cost_low is None or q.cost_high is None:
        return f"{q.rows:,} rows: sending them as a batch halves the cost if you can wait up to 24 hours."
    saving_low = q.cost_low - _batch_cost(q.cost_low, q.search_cost_low)
    saving_high = q.cost_high - _batch_cost(q.cost_high, q.search_cost_high)
    return (
        f"{q.rows:,} rows: sent as a batch this would save about {money(saving_low)} – {money(saving_high)} "
        "(half price), with results within 24 hours instead of now."
    )
