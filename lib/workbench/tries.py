"""From a workbench variant to what is sent: its prompt fitted to the file, its run options, its plan."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pandas as pd

from lib.cost.pricing import Price
from lib.engine import RunPlan, runs
from lib.prompts import mapping as fitting
from lib.prompts.draft import Draft
from lib.prompts.templates import PromptSpec
from lib.views import prompt_draft
from lib.workbench import state
from lib.workbench.state import Variant


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What the workspace adds to every variant: the file's mapping and the run settings that shape requests."""

    mapping: Mapping[str, str]
    empty: str = "send"
    service_tier: str = "default"
    price: Price | None = None
    api: str | None = None  # the API the user chose (None: the endpoint's; web research: responses)
    max_tool_calls: int | None = None  # web research: the most billed searches a row (None: the prompt's)


def with_choices(spec: PromptSpec, mapping: Mapping[str, str]) -> PromptSpec:
    """The prompt with the fields the user chose to send empty ("" in the mapping) taken as optional."""
    empty = tuple(p for p, c in mapping.items() if c == "" and p not in spec.optional_fields)
    return dataclasses.replace(spec, optional_fields=(*spec.optional_fields, *empty)) if empty else spec


def variant_spec(draft: Draft, context: RunContext) -> PromptSpec:
    """The draft's prompt with its placeholders mapped to the file's columns; ValueError when it can't work."""
    return fitting.apply(with_choices(draft.spec(), context.mapping), context.mapping)


def variant_options(variant: Variant, spec: PromptSpec, context: RunContext, row_ids: Sequence[int]):
    return prompt_draft.run_options(
        spec,
        variant.model,
        variant.max_tokens,
        variant.temperature,
        context.empty,
        price=context.price,
        service_tier=context.service_tier,
        row_ids=list(row_ids),
        rows_per_request=variant.rows_per_request,
        reasoning_effort=variant.reasoning_effort or spec.reasoning_effort,
        api=context.api,
        max_tool_calls=context.max_tool_calls,
    )


def plan_variant(
    df: pd.DataFrame,
    variant: Variant,
    context: RunContext,
    row_ids: Sequence[int],
    *,
    base_url: str | None,
    meta: Mapping | None = None,
) -> RunPlan:
    """The sample run of one variant; raises runs.PlanError (or ValueError) with a plain message."""
    spec = variant_spec(variant.draft, context)
    options = variant_options(variant, spec, context, row_ids)
    return runs.plan_run(df, spec, options, base_url=base_url, meta=meta)


def fingerprint_of(
    df: pd.DataFrame, variant: Variant, context: RunContext, row_ids: Sequence[int]
) -> str | None:
    """The requests the variant would send for the sample rows, as one hash; None when it cannot be sent."""
    if not row_ids:
        return None
    try:
        plan = plan_variant(df, variant, context, row_ids, base_url="")
    except (ValueError, runs.PlanError):
        return None
    hashes = [(item.row_id, item.request_hash) for item in plan.items]
    hashes += [(-1 - i, pack.request_hash) for i, pack in enumerate(plan.packs)]
    return state.fingerprint(hashes)
