"""Runs as the front ends see them: plan one from a lead table and a prompt, reopen one, build its results table.

This is the seam between what the user chose (a table, a prompt, model settings) and the engine,
which only knows request bodies and row ids. Both the Streamlit pages and the command line call it.

One piece past 600 lines on purpose: planning a run and reading it back (resume_plan, results_frame, the
review overlay) must agree on the same names (output columns, the prompt kept in the meta, its quality
checks), so the rules that write a run and those that read it stay side by side.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import astuple, dataclass, replace
from typing import Literal

import pandas as pd

from lib import models
from lib.cost import tokens
from lib.cost.pricing import REQUEST_TIERS, Price, Usage, price_for, tier_prices
from lib.cost.quote import UNCAPPED_OUTPUT_GUESS
from lib.engine import RunPlan, WorkItem, request_hash, transports
from lib.engine.judge import QualityCheck
from lib.engine.research import (  # what web research and one answer per company add to a run's table
    research_column_names,
    shared_answers,
    sources_text,
)
from lib.engine.transports import responses as responses_api
from lib.engine.unit import PackItem
from lib.leads.company import company_key
from lib.prompts import checks, identity, library, packing, research, templates
from lib.prompts.templates import PromptSpec
from lib.store import RowRecord, Store

# Columns added after the input and output columns, in this order (documented in docs/cli.md).
STATUS_COLUMNS = (
    "enrich_status",
    "enrich_error",
    "enrich_flags",
    "enrich_prompt_tokens",
    "enrich_completion_tokens",
    "enrich_reasoning_tokens",
    "enrich_cost_usd",
    "enrich_row_id",
)
EmptyPolicy = Literal["send", "skip"]


class PlanError(ValueError):
    """The run cannot be planned (unknown placeholders, no rows): the message says what to fix."""


@dataclass(frozen=True)
class RunOptions:
    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    # The reasoning effort wished for (lib.models): None takes the prompt's, else the model's cheapest.
    reasoning_effort: str | None = None
    empty: EmptyPolicy = "send"  # rows with an empty placeholder cell: send them anyway, or skip them
    limit: int | None = None  # only the first N rows (a sample)
    row_ids: Sequence[int] | None = None  # only these rows (a random sample, a retry)
    price: Price | None = None  # the user's price for this model (else the table's, or unpriced)
    service_tier: str = (
        "default"  # default | flex | priority | auto (RunSettings sends it; kept with the run)
    )
    prompt_cache_key: bool = True  # send prompt_cache_key (one per prompt version) so rows share a cache
    rows_per_request: int | None = None  # pack rows N to a request (None: the prompt's own setting, else 1)
    # The API rows go through: responses | chat (None: the endpoint's, lib.engine.transports.choose).
    api: str | None = None
    # Web research (lib.prompts.research): None takes the prompt's `tools`; the most billed calls a row may
    # make (None: the prompt's, else 3) and the search context size (None: the prompt's, else the API's).
    web_search: bool | None = None
    max_tool_calls: int | None = None
    search_context_size: str | None = None
    # One answer per company: the placeholder keying it (None: the prompt's one_answer_per; "": none).
    one_answer_per: str | None = None


# RunOptions fields added with web research: left out of a command line's run id while unset, so a run
# started before them resumes under the same id.
NEWER_OPTIONS = ("api", "web_search", "max_tool_calls", "search_context_size", "one_answer_per")


def new_run_id() -> str:
    """An unguessable run id: it goes into the page URL, so it must not be enumerable."""
    return secrets.token_urlsafe(12)


def stable_run_id(*parts: str) -> str:
    """A run id derived from what the run is, so the same command run again resumes the same run."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def unique_names(wanted: Sequence[str], taken: Sequence[str]) -> dict[str, str]:
    """Each wanted column name, or 'name (2)', 'name (3)'... where the table already has it."""
    used = set(taken)
    names: dict[str, str] = {}
    for column in wanted:
        name, n = column, 2
        while name in used:
            name, n = f"{column} ({n})", n + 1
        used.add(name)
        names[column] = name
    return names


def output_column_names(spec: PromptSpec, input_columns: Sequence[str]) -> dict[str, str]:
    """The prompt's output fields -> result column names that do not collide with the input's."""
    return unique_names(spec.output_columns, [*input_columns, *STATUS_COLUMNS])


def plan_run(
    df: pd.DataFrame,
    spec: PromptSpec,
    options: RunOptions,
    *,
    base_url: str | None,
    run_id: str | None = None,
    price: Price | None = None,
    meta: Mapping | None = None,
) -> RunPlan:
    """Render every row's request, count its tokens and key it, before anything is sent."""
    columns = [str(c) for c in df.columns]
    problems = templates.check(spec, columns)
    if problems:
        raise PlanError("; ".join(p.message for p in problems))
    frame = df
    if options.row_ids is not None:
        frame = frame.loc[[r for r in options.row_ids if r in frame.index]]
    if options.limit is not None:
        frame = frame.head(options.limit)
    if frame.empty:
        raise PlanError("There are no rows to send.")
    if options.service_tier not in REQUEST_TIERS:
        raise PlanError(
            f"Unknown service tier '{options.service_tier}': use one of {', '.join(REQUEST_TIERS)}."
        )
    cache_key = prompt_cache_key(spec) if options.prompt_cache_key else None
    items: list[WorkItem] = []
    skipped: dict[int, str] = {}
    inputs: dict[int, dict[str, str]] = {}
    web = research.of_spec(
        spec,
        enabled=options.web_search,
        max_tool_calls=options.max_tool_calls,
        context_size=options.search_context_size,
    )
    try:
        api = transports.choose(base_url, options.api, web_search=web is not None)
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    max_out = options.max_tokens or spec.max_tokens or UNCAPPED_OUTPUT_GUESS
    if api == "responses":
        max_out = max(max_out, responses_api.MIN_OUTPUT_TOKENS)  # what that API is sent at the least
    effort = options.reasoning_effort or spec.reasoning_effort
    records = frame.to_dict(orient="index")
    keyed_by = _one_answer_column(spec, options, columns)
    asked_as: dict[str, dict[str, str]] = {}  # company key -> the cells its one request is rendered from
    bodies: dict[int, dict] = {}
    for row_id, row in records.items():
        row_id = int(row_id)
        cells = {str(k): "" if v is None else str(v) for k, v in row.items()}
        inputs[row_id] = cells
        missing = templates.empty_fields(spec, cells)
        if missing and options.empty == "skip":
            skipped[row_id] = "Skipped: empty " + ", ".join(f"'{m}'" for m in missing)
            continue
        sent = cells
        if keyed_by is not None:
            key = company_key(cells.get(keyed_by, ""))
            if key:  # every row of one company sends the first one's request: one answer, paid once
                sent = asked_as.setdefault(key, cells)
        bodies[row_id] = templates.build_request(
            spec,
            sent,
            model=options.model,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            effort=effort,
            web_search=web,
        )
        if cache_key:
            bodies[row_id]["prompt_cache_key"] = cache_key
    counts = _prompt_tokens(list(bodies.values()), options.model)
    for (row_id, body), prompt_tokens in zip(bodies.items(), counts, strict=True):
        items.append(WorkItem(row_id, body, request_hash(body, base_url), prompt_tokens, max_out))
    rows_per_request = options.rows_per_request or spec.rows_per_request or 1
    packs = ()
    if rows_per_request > 1:
        try:
            packs = build_packs(spec, items, options, rows_per_request, max_out, base_url, cache_key)
        except packing.PackError as exc:
            raise PlanError(f"Rows cannot be packed {rows_per_request} to a request: {exc}") from exc
    names = output_column_names(spec, columns)
    full_meta = {
        "prompt_name": spec.name,
        "prompt_version": spec.version,
        "prompt_yaml": library.dump_spec(spec),
        "model": options.model,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        # What was wished and what the catalog sends (None for a model that does not reason); a server
        # may still correct it (lib.models.shapes), which the run's "adjusted" notes say.
        "reasoning_effort_wanted": effort,
        "reasoning_effort": models.effort_for(options.model, effort),
        "columns": columns,
        "output_columns": names,
        "rows": len(inputs),
        "started_at": time.time(),
        "base_url": base_url,
        "price": list(astuple(options.price)) if options.price else None,  # a resumed run is priced alike
        "service_tier": options.service_tier,
        "rows_per_request": rows_per_request,
        "api": api,  # the API the rows go through (lib.engine.transports): responses | chat
        "web_search": dataclasses.asdict(web) if web is not None else None,
        "one_answer_per": keyed_by,  # the column whose company key shares one answer between rows
        **(meta or {}),
        # the exact prompt sent (after any mapping); the caller's meta says whether it was edited
        "prompt_hash": identity.prompt_hash(spec),
    }
    run_price = price if price is not None else (options.price or price_for(options.model))
    return RunPlan(
        run_id=run_id or new_run_id(),
        items=tuple(items),
        inputs=inputs,
        skipped=skipped,
        meta=full_meta,
        price=run_price,
        check_output=_output_checker(spec),
        tier_prices=tier_prices(options.model, price if price is not None else options.price),
        packs=packs,
        check_quality=quality_checker(spec, inputs, researched=web is not None),
    )


def build_packs(
    spec: PromptSpec,
    items: Sequence[WorkItem],
    options: RunOptions,
    rows_per_request: int,
    max_out: int,
    base_url: str | None,
    cache_key: str | None,
) -> tuple[PackItem, ...]:
    """Rows N to a request, in row order. Only the first row of each distinct request is packed: its
    duplicates go alone after it and reuse its answer, as they would unpacked."""
    firsts: dict[str, WorkItem] = {}
    for item in items:
        firsts.setdefault(item.request_hash, item)
    leaders = list(firsts.values())
    packs = []
    for start in range(0, len(leaders), rows_per_request):
        members = tuple(leaders[start : start + rows_per_request])
        if len(members) < 2:
            break  # a last single row goes alone, as itself
        extra: dict = {"prompt_cache_key": cache_key} if cache_key else {}
        first = members[0].body
        if "tools" in first:  # web research: the tool, and each row's calls (max_tool_calls is per request)
            extra["tools"] = first["tools"]
            extra["max_tool_calls"] = int(first.get("max_tool_calls") or 1) * len(members)
        body = packing.pack_request(
            spec,
            [(m.row_id, m.body) for m in members],
            model=options.model,
            max_tokens=max_out,
            temperature=options.temperature,
            extra=extra or None,
            effort=members[0].body.get("reasoning_effort"),  # packed at the rows' own effort
        )
        packs.append(
            PackItem(
                members,
                body,
                request_hash(body, base_url),
                tokens.count_messages(body["messages"], options.model).tokens,
                int(body.get("max_tokens") or body.get("max_completion_tokens") or 0),
            )
        )
    return tuple(packs)


def _one_answer_column(spec: PromptSpec, options: RunOptions, columns: Sequence[str]) -> str | None:
    """The column whose company key shares one answer between rows (options first, then the prompt's)."""
    name = options.one_answer_per if options.one_answer_per is not None else spec.one_answer_per
    if not name:
        return None
    column = templates.column_for(name, columns)
    if column is None:
        raise PlanError(
            f"One answer per '{name}' was asked for, and the table has no column '{name}'. Map the field to a "
            "column, or leave one answer per company off."
        )
    return column


def packed_requests(plan: RunPlan) -> list[dict]:
    """What a packed plan sends: each pack's body, and the rows that go alone (not the duplicates, which
    reuse an answer)."""
    packed = {m.row_id for p in plan.packs for m in p.members}
    seen = {m.request_hash for p in plan.packs for m in p.members}
    alone = []
    for item in plan.items:
        if item.row_id not in packed and item.request_hash not in seen:
            seen.add(item.request_hash)
            alone.append(item.body)
    return [p.body for p in plan.packs] + alone


def prompt_cache_key(spec: PromptSpec) -> str:
    """One cache key per prompt version: OpenAI routes requests with one key together, so rows hit the
    cache of the static prefix the rows before them wrote."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec.name)[:48]
    return f"lead-studio:{name}:v{spec.version}"


def _prompt_tokens(bodies: list[dict], model: str) -> list[int]:
    """Prompt tokens of each request (the shared prefix counted once), for pacing and the budget."""
    if not bodies:
        return []
    prefix = bodies[0]["messages"][:-1]
    prefix_tokens = tokens.count_messages(prefix, model).tokens - tokens.REPLY_PRIMING if prefix else 0
    lasts = [b["messages"][-1] for b in bodies]
    texts = tokens.count_texts([m["content"] for m in lasts], model).tokens
    same_prefix = all(b["messages"][:-1] == prefix for b in bodies)
    if not same_prefix:  # the system text has placeholders: count each request whole
        return [tokens.count_messages(b["messages"], model).tokens for b in bodies]
    return [prefix_tokens + t + tokens.TOKENS_PER_MESSAGE + 1 + tokens.REPLY_PRIMING for t in texts]


def _output_checker(spec: PromptSpec):
    if not templates.is_structured(spec):
        return None
    return lambda text: templates.parse_output(spec, text).error


def quality_checker(
    spec: PromptSpec, inputs: Mapping[int, Mapping[str, str]], *, researched: bool = True
) -> QualityCheck:
    """The prompt's per-answer checks for the engine: each output column's text against its row's cells,
    and (when the run searches the web: `researched`) whether the answer cites a source."""
    if not researched and spec.checks.require_sources:
        spec = replace(spec, checks=replace(spec.checks, require_sources=False))

    def check(row_id: int, text: str, sources: Sequence = ()) -> list[tuple[str, str]]:
        row = inputs.get(row_id, {})
        cited = checks.check_sources(spec.checks, sources)
        if not templates.is_structured(spec):
            return [(f.flag, f.message) for f in [*checks.check_answer(spec.checks, text, row), *cited]]
        parsed = templates.parse_output(spec, text)
        if parsed.error:  # flagged invalid_output already: its fields are not the answer's
            return []
        found = []
        for column in spec.output_columns:
            found += checks.check_answer(spec.checks, parsed.values.get(column, ""), row, where=column)
        return [(f.flag, f.message) for f in [*found, *cited]]

    return check


def quality_text(spec: PromptSpec, text: str | None) -> str | None:
    """The answer's text the list-level checks read: a plain answer, or a structured one's first column."""
    if text is None or not templates.is_structured(spec):
        return text
    parsed = templates.parse_output(spec, text)
    return None if parsed.error else parsed.values.get(spec.output_columns[0], "")


def spec_of(meta: Mapping) -> PromptSpec:
    return _parsed_spec(meta["prompt_yaml"], f"run of {meta.get('prompt_name', 'a prompt')}")


@functools.lru_cache(maxsize=64)  # the live panel asks twice a second; a PromptSpec is frozen
def _parsed_spec(text: str, source: str) -> PromptSpec:
    return library.parse_spec(text, source=source)


def move_run(store: Store, run_id: str, base_url: str | None) -> None:
    """Send the rest of a run to another endpoint (the user fixed it): its meta says where it goes, so a
    plan rebuilt from it hashes (and caches) new answers under that endpoint."""
    if base_url != store.run(run_id).meta.get("base_url"):
        store.update_run_meta(run_id, base_url=base_url)  # the status as it is, whoever set it last


def resume_plan(store: Store, run_id: str, *, price: Price | None = None) -> RunPlan:
    """Rebuild a run's plan from the store alone (after a restart), to resume it."""
    record = store.run(run_id)
    spec = spec_of(record.meta)
    model = record.meta["model"]
    max_out = record.meta.get("max_tokens") or spec.max_tokens or UNCAPPED_OUTPUT_GUESS
    if record.meta.get("api") == "responses":
        max_out = max(max_out, responses_api.MIN_OUTPUT_TOKENS)
    bodies = store.requests(run_id)
    counts = _prompt_tokens(list(bodies.values()), model)
    items = tuple(
        WorkItem(row_id, body, request_hash(body, record.meta.get("base_url")), n, max_out)
        for (row_id, body), n in zip(bodies.items(), counts, strict=True)
    )
    base = price if price is not None else _stored_price(record.meta)
    packs: tuple[PackItem, ...] = ()
    n = int(record.meta.get("rows_per_request") or 1)
    if n > 1 and items:  # the same packs again: only those none of whose rows were answered are sent whole
        options = RunOptions(model=model, temperature=record.meta.get("temperature"))
        key = items[0].body.get("prompt_cache_key")
        try:
            packs = build_packs(spec, items, options, n, max_out, record.meta.get("base_url"), key)
        except packing.PackError:
            packs = ()  # the rows go alone
    plan_inputs = dict(store.inputs(run_id))
    return RunPlan(
        run_id=run_id,
        items=items,
        inputs=plan_inputs,
        meta=record.meta,
        price=base or price_for(model),
        check_output=_output_checker(spec),
        tier_prices=tier_prices(model, base),
        packs=packs,
        check_quality=quality_checker(spec, plan_inputs, researched=bool(record.meta.get("web_search"))),
    )


def _stored_price(meta: Mapping) -> Price | None:
    stored = meta.get("price")
    return Price(*stored) if stored else None


def status_column_names(taken: Sequence[str]) -> dict[str, str]:
    """The status columns' names in a table that already has `taken` columns (a re-enriched export)."""
    return unique_names(STATUS_COLUMNS, taken)


def results_frame(
    inputs: Mapping[int, Mapping[str, str]],
    rows: Sequence[RowRecord],
    meta: Mapping,
    edits: Mapping[int, Mapping[str, str]] | None = None,
    accepted: Collection[int] = (),
) -> pd.DataFrame:
    """Input columns in their original order and text, the output column(s), then the status columns.

    A status column whose name the input already uses (an exported file enriched again) gets a
    " (2)" suffix instead of overwriting the input. User edits ({row_id: {column: value}}) are applied
    last, so an export carries them, and an edited answer is checked again (`reviewed`); a row a reviewer
    accepted carries `accepted:<check>` instead of its `quality:<check>` flags. A row that reused another row's answer (a duplicate lead, or an answer
    an earlier run paid for) carries 0 tokens and $0 and the flag `reused`: the cost column sums to the run's
    total, and the first row of a duplicate group carries what was paid.
    """
    spec = spec_of(meta)
    names: dict[str, str] = meta.get("output_columns") or {c: c for c in spec.output_columns}
    columns: list[str] = list(meta.get("columns") or [])
    extra = research_column_names(meta, [*columns, *names.values(), *STATUS_COLUMNS])
    status = status_column_names([*columns, *names.values(), *extra.values()])
    by_id = reviewed({r.row_id: r for r in rows}, meta, inputs, edits, accepted)
    paid = _paid_by_first_row(rows)
    shared = shared_answers(inputs, meta)
    records = []
    for row_id, cells in inputs.items():
        row = by_id.get(row_id, RowRecord(row_id))
        record = {c: cells.get(c, "") for c in columns}
        record.update(_outputs(spec, row, names))
        carried = paid.get(row_id)
        reused = carried is None and (row.from_cache or row.row_id in paid["moved"])
        prompt_tokens, completion_tokens, row_cost, reasoning_tokens, searches = carried or (
            (0, 0, 0.0, 0, 0)
            if reused
            else (
                row.usage.prompt_tokens,
                row.usage.completion_tokens,
                row.cost_usd,
                row.usage.reasoning_tokens,
                row.usage.web_search_calls,
            )
        )
        if "sources" in extra:
            record[extra["sources"]] = sources_text(row.sources)
            record[extra["web_search_calls"]] = searches
        if "shared" in extra:
            record[extra["shared"]] = shared.get(row_id, "")
        values = {
            "enrich_status": row.status,
            "enrich_error": row.error or "",
            "enrich_flags": ",".join((*row.flags, "reused") if reused else row.flags),
            "enrich_prompt_tokens": prompt_tokens,
            "enrich_completion_tokens": completion_tokens,
            "enrich_reasoning_tokens": reasoning_tokens,
            "enrich_cost_usd": row_cost if row_cost is not None else float("nan"),
            "enrich_row_id": row_id,
        }
        record.update({status[k]: v for k, v in values.items()})
        for column, value in (edits or {}).get(row_id, {}).items():
            if column in record:
                record[column] = value
        records.append(record)
    frame = pd.DataFrame.from_records(
        records, columns=[*columns, *names.values(), *extra.values(), *status.values()]
    )
    frame.index = pd.Index(list(inputs), name="row_id")
    return frame


def _paid_by_first_row(rows: Sequence[RowRecord]) -> dict:
    """Within each group of rows that sent the same request, what was paid, put on the group's first row.

    Which duplicate reached the API first is a race between workers; an export should not depend on it.
    Returns {row id: (prompt tokens, completion tokens, cost, reasoning tokens, web search calls)} for each
    group's first row, and
    under "moved"
    the ids of the paid rows whose figures went to another row (they are reused rows now).
    """
    groups: dict[str, list[RowRecord]] = {}
    for row in rows:
        if row.request_hash and row.status != "pending":
            groups.setdefault(row.request_hash, []).append(row)
    out: dict = {"moved": set()}
    for group in groups.values():
        if len(group) < 2:
            continue
        first = min(group, key=lambda r: r.row_id)
        payers = [r for r in group if not r.from_cache]
        if not payers or payers == [first]:
            continue
        costs = [r.cost_usd for r in payers]
        out[first.row_id] = (
            sum(r.usage.prompt_tokens for r in payers),
            sum(r.usage.completion_tokens for r in payers),
            None if any(c is None for c in costs) else sum(costs),
            sum(r.usage.reasoning_tokens for r in payers),
            sum(r.usage.web_search_calls for r in payers),
        )
        out["moved"].update(r.row_id for r in payers if r is not first)
    return out


def research_columns(meta: Mapping) -> list[str]:
    """The research columns of a run's results table, as named there (for grids: next to the answers)."""
    spec_columns = meta.get("output_columns") or {}
    names = list(spec_columns.values()) if spec_columns else list(spec_of(meta).output_columns)
    taken = [*(meta.get("columns") or []), *names, *STATUS_COLUMNS]
    return list(research_column_names(meta, taken).values())


def with_list_checks(rows: Sequence[RowRecord], meta: Mapping) -> list[RowRecord]:
    """The rows with the checks over the whole list applied (repeated openers): what the results show."""
    return list(reviewed({r.row_id: r for r in rows}, meta).values())


def quality_counts(rows: Sequence[RowRecord]) -> dict[str, int]:
    """{check: succeeded rows it flags}, e.g. {"too_long": 3}."""
    return checks.count_flags([r.flags for r in rows if r.status == "succeeded"])


def reviewed(
    rows: Mapping[int, RowRecord],
    meta: Mapping,
    inputs: Mapping[int, Mapping[str, str]] | None = None,
    edits: Mapping[int, Mapping[str, str]] | None = None,
    accepted: Collection[int] = (),
) -> dict[int, RowRecord]:
    """The rows as a reviewer sees them: edited answers checked again, the list-level checks applied (over
    the answers as edited), and accepted rows' `quality:<check>` flags turned into `accepted:<check>`.

    An edit is checked again rather than counted as reviewed: what is exported is the edited text, and a
    quick fix can still leave "[Company Name]" in; an answer kept on purpose is what Accept is for.
    """
    spec = spec_of(meta)
    names: Mapping[str, str] = meta.get("output_columns") or {c: c for c in spec.output_columns}
    first = spec.output_columns[0]
    structured = templates.is_structured(spec)
    edits = edits or {}
    out = dict(rows)
    answers = {}
    for row_id, row in rows.items():  # the live panel runs this twice a second: kept lean
        if row.status != "succeeded":
            continue
        cells = edits.get(row_id)
        edited = {column: cells[shown] for column, shown in names.items() if shown in cells} if cells else {}
        if edited:
            out[row_id] = row = _rechecked(spec, row, (inputs or {}).get(row_id, {}), edited)
        if first in edited:
            answers[row_id] = edited[first]
        elif row.text is not None:
            text = quality_text(spec, row.text) if structured else row.text
            if text is not None:
                answers[row_id] = text
    out.update(_with_repeated_openers(spec, out, answers))
    for row_id in accepted:
        row = out.get(row_id)
        if row is not None and any(f.startswith(checks.QUALITY) for f in row.flags):
            out[row_id] = replace(row, flags=tuple(checks.accepted_flag(f) for f in row.flags))
    return out


def _answer_findings(
    spec: PromptSpec, values: Mapping[str, str], row: Mapping[str, str]
) -> list[checks.Finding]:
    """Each output column's checks, as the engine ran them (a plain answer's messages name no column)."""
    if not templates.is_structured(spec):
        return checks.check_answer(spec.checks, next(iter(values.values()), ""), row)
    found: list[checks.Finding] = []
    for column in spec.output_columns:
        if column in values:
            found += checks.check_answer(spec.checks, values[column], row, where=column)
    return found


def _rechecked(
    spec: PromptSpec, row: RowRecord, cells: Mapping[str, str], edited: Mapping[str, str]
) -> RowRecord:
    """A succeeded row whose answer the user edited, with the per-answer checks run on the edited text."""
    parsed = templates.parse_output(spec, row.text) if row.text is not None else None
    before: dict[str, str] = {}
    if parsed is not None and "invalid_output" not in row.flags:
        before = dict(parsed.values) if templates.is_structured(spec) else {spec.output_columns[0]: row.text}
    error = row.error or ""
    for finding in _answer_findings(spec, before, cells) if before else []:
        error = error.replace(finding.message, "")  # the sentences about the text the answer no longer has
    now = _answer_findings(spec, {**before, **edited}, cells)
    # An edit changes the text, not the pages it cites: the no_source flag stays.
    kept = [f for f in row.flags if not f.startswith(checks.QUALITY) or f == checks.NO_SOURCE]
    error = " ".join([*error.split(), *(f.message for f in now)])
    return replace(row, flags=tuple(dict.fromkeys([*kept, *(f.flag for f in now)])), error=error or None)


def _with_repeated_openers(
    spec: PromptSpec, rows: Mapping[int, RowRecord], answers: Mapping[int, str] | None = None
) -> dict[int, RowRecord]:
    """Succeeded rows whose answer opens like too many others, flagged (a check of the whole list)."""
    if answers is None:
        answers = {
            row_id: text
            for row_id, row in rows.items()
            if row.status == "succeeded" and (text := quality_text(spec, row.text)) is not None
        }
    found = checks.repeated_openers(answers, spec.checks.max_opener_share)
    out = {}
    for row_id, finding in found.items():
        row = rows[row_id]
        if finding.flag in row.flags or checks.accepted_flag(finding.flag) in row.flags:
            continue
        error = finding.message if not row.error else f"{row.error} {finding.message}"
        out[row_id] = replace(row, flags=(*row.flags, finding.flag), error=error)
    return out


def laid_over(rows: Sequence[RowRecord], attempts: Sequence[Sequence[RowRecord]]) -> list[RowRecord]:
    """Each row's latest answer, a regenerated one where an attempt succeeded, carrying what every attempt
    of it was billed (so the cost column still sums to what the server billed); earlier answers stay in
    their own runs in the store, for review."""
    if not any(attempts):
        return list(rows)
    by_id = {r.row_id: r for r in rows}
    for attempt in attempts:
        for new in attempt:
            old = by_id.get(new.row_id)
            if old is None or new.status == "pending":
                continue
            paid = [r for r in (old, new) if not r.from_cache]
            usage = sum((r.usage for r in paid), Usage())
            costs = [r.cost_usd for r in paid if r.cost_usd is not None]
            billed = {
                "usage": usage,
                "cost_usd": sum(costs) if costs else (None if paid else old.cost_usd),
                "attempts": old.attempts + new.attempts,
                "from_cache": not paid,
            }
            by_id[new.row_id] = replace(new if new.status == "succeeded" else old, **billed)
    return list(by_id.values())


def reviewed_results(
    store: Store,
    run_id: str,
    inputs: Mapping[int, Mapping[str, str]],
    rows: Sequence[RowRecord],
    meta: Mapping,
    edits: Mapping[int, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """A run's results with its regenerated answers laid over and its reviewer's acceptances applied."""
    attempts = [store.rows(r) for r in store.regenerations(run_id)]
    return results_frame(inputs, laid_over(rows, attempts), meta, edits, store.accepted(run_id))


def _outputs(spec: PromptSpec, row: RowRecord, names: Mapping[str, str]) -> dict[str, str]:
    if row.text is None:
        return {names[c]: "" for c in spec.output_columns}
    parsed = templates.parse_output(spec, row.text)
    return {names[c]: parsed.values.get(c, "") for c in spec.output_columns}


def stored_results(store: Store, run_id: str) -> pd.DataFrame:
    """A run's results table straight from the store, with the user's edits."""
    record = store.run(run_id)
    inputs = dict(store.inputs(run_id))
    return reviewed_results(store, run_id, inputs, store.rows(run_id), record.meta, store.edits(run_id))
