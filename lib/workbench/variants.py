"""Running variants: each one a sample run of the engine over exactly the same rows, one after another.

Variants go one at a time, so a request an earlier variant (or any earlier run on this endpoint) already
paid for is answered from the store's answer cache (keyed by the exact request and the endpoint): nothing
is paid twice. A variant whose requests are exactly an earlier variant's is not run at all: it shares that
variant's answers (`same_as`). Every variant is planned before anything is sent, so a variant that cannot
be planned (a placeholder the file lacks) stops the compare before it costs anything; once sending, a failing
row is a cell with an error, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from lib import engine
from lib.engine import RunPlan, RunSettings, Snapshot
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import PlanError, RunOptions, plan_run
from lib.prompts.templates import PromptSpec
from lib.store import RowRecord, Store

DEFAULT_TIMEOUT_S = 90.0  # per variant: the command line's compare waits (the app polls its tries instead)
MAX_APP_VARIANTS = 4  # the workbench page shows at most this many side by side


class CompareError(ValueError):
    """The compare cannot start (a variant cannot be planned, no rows): the message names the variant."""


@dataclass(frozen=True)
class Variant:
    name: str
    spec: PromptSpec
    options: RunOptions  # its row_ids and limit are replaced by the compare's rows


@dataclass(frozen=True)
class VariantRun:
    variant: Variant
    run_id: str  # the sample run holding its answers (the earlier variant's when same_as)
    rows: tuple[RowRecord, ...]
    requests_sent: int
    same_as: str | None  # the earlier variant whose requests were identical: nothing was sent for this one
    status: str = "finished"  # the run's final status: finished, or failed/paused/cancelled when it stopped
    message: str | None = None  # why it stopped early, in the engine's words
    plan: RunPlan | None = None  # what was sent (inputs, meta: the prompt and the output column names)


ProgressFn = Callable[[str, Snapshot], None]


def signature(plan: RunPlan) -> tuple:
    """What a plan would send: each row's request hash, the skipped rows and the packs' requests."""
    return (
        tuple(sorted((i.row_id, i.request_hash) for i in plan.items)),
        tuple(sorted(plan.skipped)),
        tuple(p.request_hash for p in plan.packs),
    )


def plan_variants(
    df: pd.DataFrame,
    row_ids: Sequence[int],
    variants: Sequence[Variant],
    *,
    base_url: str | None,
    meta: Mapping | None = None,
) -> list[RunPlan]:
    """One sample plan per variant over exactly `row_ids`; CompareError names a variant that cannot run."""
    if not row_ids:
        raise CompareError("There are no rows to try.")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise CompareError("Two variants have the same name: give each its own.")
    plans = []
    for v in variants:
        options = replace(v.options, row_ids=tuple(int(r) for r in row_ids), limit=None)
        extra = {**(meta or {}), "sample": True, "compare": True, "variant": v.name}
        try:
            plans.append(plan_run(df, v.spec, options, base_url=base_url, meta=extra))
        except PlanError as exc:
            raise CompareError(f"Variant '{v.name}': {exc}") from exc
    return plans


def run_variants(
    df: pd.DataFrame,
    row_ids: Sequence[int],
    variants: Sequence[Variant],
    *,
    endpoint: Endpoint,
    store: Store,
    settings: RunSettings | None = None,
    on_progress: ProgressFn | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    governor: Governor | None = None,
    meta: Mapping | None = None,
) -> list[VariantRun]:
    """Run each variant over `row_ids`, in order, and wait for it (at most `timeout_s` each, then it is
    cancelled with its unsent rows pending). `governor` defaults to the key's shared one, as the app's."""
    plans = plan_variants(df, row_ids, variants, base_url=endpoint.base_url, meta=meta)
    settings = settings or RunSettings(workers=max(1, min(len(row_ids), 16)))
    done: dict[tuple, VariantRun] = {}
    out: list[VariantRun] = []
    for variant, plan in zip(variants, plans, strict=True):
        key = signature(plan)
        earlier = done.get(key)
        if earlier is not None:
            out.append(
                VariantRun(
                    variant,
                    earlier.run_id,
                    tuple(_reused(r) for r in earlier.rows),
                    0,
                    same_as=earlier.variant.name,
                    status=earlier.status,
                    message=earlier.message,
                    plan=plan,
                )
            )
            continue
        result = _run_one(variant, plan, endpoint, store, settings, on_progress, timeout_s, governor)
        done[key] = result
        out.append(result)
    return out


def _run_one(
    variant: Variant,
    plan: RunPlan,
    endpoint: Endpoint,
    store: Store,
    settings: RunSettings,
    on_progress: ProgressFn | None,
    timeout_s: float,
    governor: Governor | None,
) -> VariantRun:
    job = engine.start(plan, endpoint=endpoint, settings=settings, store=store, governor=governor)
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while not job.wait(0.25):
        if on_progress is not None:
            on_progress(variant.name, job.snapshot())
        if time.monotonic() >= deadline:
            timed_out = True
            job.cancel()
            job.wait(30.0)  # answers in flight are still recorded (they are billed anyway)
            break
    snap = job.snapshot()
    if on_progress is not None:
        on_progress(variant.name, snap)
    message = snap.message
    if timed_out and snap.status == "cancelled":
        message = f"Not finished within {timeout_s:g} s: the rows not answered stay pending."
    return VariantRun(
        variant,
        job.id,
        tuple(job.rows()),
        snap.requests_sent,
        same_as=None,
        status=snap.status,
        message=message if snap.status != "finished" else None,
        plan=plan,
    )


def _reused(row: RowRecord) -> RowRecord:
    """An earlier variant's answer as this variant's: reused, so nothing is counted as paid twice."""
    if row.text is None and not (row.usage.prompt_tokens or row.usage.completion_tokens):
        return row
    return replace(row, from_cache=True, latency_s=None)
