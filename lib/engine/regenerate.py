"""Regenerate: ask again, for the rows a quality check flagged only, with a turn that states the broken rule.

Each attempt is a run of its own (kind "regenerate", journalled, billed and budgeted like any run), so the
earlier answers stay in the store for review; the results take each row's latest answer and its flags
(runs.laid_over), with every attempt's cost. The app's Regenerate buttons and the command line's
--regenerate (lib/cli/regenerate.py) both start each attempt with `start_again`, carrying the run's
service tier, ceilings and what is left of its budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from lib.engine.client import Endpoint
from lib.engine.job import Job, start
from lib.engine.resume import run_settings
from lib.engine.runs import (
    _prompt_tokens,
    laid_over,
    resume_plan,
    reviewed,
    stable_run_id,
    with_list_checks,
)
from lib.engine.settings import RunPlan, RunSettings
from lib.engine.unit import WorkItem, request_hash
from lib.jobs import get_job
from lib.store import RowRecord, Store

FOLLOW_UP = (
    "Your answer above breaks the prompt's rules: {problems} Write the answer again, following every rule "
    "of the original instructions, and reply with the new answer only."
)


def flagged(rows: Sequence[RowRecord]) -> list[RowRecord]:
    """Succeeded rows with at least one quality flag: the only rows regenerate sends again."""
    return [r for r in rows if r.status == "succeeded" and any(f.startswith("quality:") for f in r.flags)]


def follow_up(row: RowRecord) -> str:
    """The extra user turn: the sentences of the checks this answer broke."""
    return FOLLOW_UP.format(problems=(row.error or "it was flagged.").strip())


def regenerate_plan(
    plan: RunPlan,
    rows: Sequence[RowRecord],
    attempt: int,
    base_url: str | None,
    only: Collection[int] | None = None,
) -> RunPlan | None:
    """A run that asks each flagged row (of `only`, when given) again (None: nothing is flagged).

    `rows` are the latest answers of the whole list (the list-level checks are applied to them); the new
    request is the row's original conversation, the flagged answer, and the follow-up turn.
    """
    todo = [r for r in flagged(with_list_checks(rows, plan.meta)) if only is None or r.row_id in only]
    if not todo:
        return None
    originals = {item.row_id: item for item in plan.items}
    bodies: dict[int, dict] = {}
    for row in todo:
        item = originals.get(row.row_id)
        if item is None or row.text is None:
            continue
        turns = [{"role": "assistant", "content": row.text}, {"role": "user", "content": follow_up(row)}]
        bodies[row.row_id] = {**item.body, "messages": [*item.body["messages"], *turns]}
    if not bodies:
        return None
    model = next(iter(bodies.values()))["model"]
    counts = _prompt_tokens(list(bodies.values()), model)
    items = tuple(
        WorkItem(row_id, body, request_hash(body, base_url), n, originals[row_id].max_output_tokens)
        for (row_id, body), n in zip(bodies.items(), counts, strict=True)
    )
    return RunPlan(
        run_id=stable_run_id(plan.run_id, "regenerate", str(attempt), *(i.request_hash for i in items)),
        items=items,
        inputs={row_id: plan.inputs[row_id] for row_id in bodies},
        meta={
            **plan.meta,
            "kind": "regenerate",
            "mode": "live",  # asked again live, also for a batch run's rows
            "regenerates": plan.run_id,
            "attempt": attempt,
            "rows": len(items),
        },
        price=plan.price,
        check_output=plan.check_output,
        check_quality=plan.check_quality,
    )


def latest(rows: Sequence[RowRecord], newer: Sequence[RowRecord]) -> list[RowRecord]:
    """Each row's latest answer: a regenerated one where it succeeded, else the one before; either way
    carrying what both attempts were billed (runs.laid_over), so an export's cost column sums to the bill."""
    return laid_over(rows, [newer])


class RegenerateError(ValueError):
    """Why the app cannot ask again now, in words for the user."""


class BudgetSpent(RegenerateError):
    """Nothing is left of the run's budget for another attempt."""


def attempts(store: Store, run_id: str) -> list[str]:
    """The run's regenerate runs, oldest first."""
    return store.regenerations(run_id)


def running_attempt(store: Store, run_id: str) -> Job | None:
    """The regenerate run of this run still going in this process, if any."""
    for attempt_id in attempts(store, run_id):
        job = get_job(attempt_id)
        if isinstance(job, Job) and job.active:
            return job
    return None


def current_rows(store: Store, run_id: str, rows: Sequence[RowRecord] | None = None) -> list[RowRecord]:
    """The run's rows (the live job's, when given) with the regenerated answers laid over."""
    base = store.rows(run_id) if rows is None else rows
    return laid_over(base, [store.rows(a) for a in attempts(store, run_id)])


def spent(store: Store, run_id: str) -> float:
    """What the run and its regenerate attempts may have been billed: the answers (reused ones cost nothing)
    and the estimate kept for requests whose outcome is unknown."""
    total = 0.0
    for rid in (run_id, *attempts(store, run_id)):
        total += sum(r.cost_usd or 0.0 for r in store.rows(rid) if not r.from_cache)
        total += float(store.run(rid).meta.get("estimated_usd") or 0.0)
    return total


def review_rows(
    store: Store,
    run_id: str,
    rows: Sequence[RowRecord] | None = None,
    *,
    meta: dict | None = None,
    inputs: dict | None = None,
    edits: dict | None = None,
) -> list[RowRecord]:
    """The rows as the review queue sees them: regenerated answers laid over, edited answers checked
    again, the list-level checks applied, accepted rows no longer flagged. The live panel passes its
    job's rows, plan and edits; otherwise everything comes from the store."""
    now = reviewed(
        {r.row_id: r for r in current_rows(store, run_id, rows)},
        meta if meta is not None else store.run(run_id).meta,
        inputs if inputs is not None else dict(store.inputs(run_id)),
        edits if edits is not None else store.edits(run_id),
        store.accepted(run_id),
    )
    return list(now.values())


def askable(store: Store, run_id: str, rows: Sequence[RowRecord] | None = None) -> list[int]:
    """Rows the app may ask again: flagged, not accepted, and not edited by the user (a new answer would
    hide behind the edit; an edit that still breaks a rule is edited again, or accepted)."""
    meta = store.run(run_id).meta
    edits = store.edits(run_id)
    shown = set((meta.get("output_columns") or {}).values())
    now = review_rows(store, run_id, rows, meta=meta, edits=edits)
    return [r.row_id for r in flagged(now) if not shown & set(edits.get(r.row_id, {}))]


def start_again(
    store: Store,
    run_id: str,
    endpoint: Endpoint,
    row_ids: Collection[int] | None = None,
    *,
    settings: RunSettings | None = None,
) -> Job:
    """Ask the run's flagged rows (all, or `row_ids`) again, live, through `endpoint`; returns at once.

    The attempt is billed and journalled as a run of its own, under what is left of the run's budget,
    with `settings` (default: those of the run's job in this process, else those it was started with:
    tier, ceilings, workers, timeout); a second click while an attempt goes on returns that attempt.
    """
    going = running_attempt(store, run_id)
    if going is not None:
        return going
    job = get_job(run_id)
    if job is not None and job.active:
        raise RegenerateError("The run is still going: ask rows again once it has finished or is paused.")
    wanted = set(askable(store, run_id))
    if row_ids is not None:
        wanted &= set(row_ids)
    if not wanted:
        raise RegenerateError("No flagged row to ask again (accepted and edited rows are left as they are).")
    plan = resume_plan(store, run_id)
    rows = current_rows(store, run_id)
    again = regenerate_plan(plan, rows, len(attempts(store, run_id)) + 1, endpoint.base_url, only=wanted)
    if again is None:
        raise RegenerateError("No flagged row to ask again.")
    settings = run_settings(store, run_id, settings=settings)  # the job's here (a raised budget), else stored
    budget = settings.budget_usd
    if budget is not None:
        left = budget - spent(store, run_id)
        if left <= 0:
            raise BudgetSpent(
                f"The run's budget (${budget:,.2f}) is spent: raise it (Resume on the Run page) to ask again."
            )
        settings = dataclasses.replace(settings, budget_usd=left)
    # The attempt's own settings go with it, so resuming an interrupted attempt asks as it was asked.
    meta = {**again.meta, "base_url": endpoint.base_url, "run_settings": dataclasses.asdict(settings)}
    again = dataclasses.replace(again, meta=meta)
    return start(again, endpoint=endpoint, settings=settings, store=store)


def earlier_answers(store: Store, run_id: str, row_id: int) -> list[str]:
    """A row's answers before its latest one, oldest first: the run's own, then each attempt's but the last."""
    texts = []
    for rid in (run_id, *attempts(store, run_id)):
        texts += [r.text for r in store.rows(rid) if r.row_id == row_id and r.text is not None]
    latest_text = next((r.text for r in current_rows(store, run_id) if r.row_id == row_id), None)
    if texts and texts[-1] == latest_text:
        texts.pop()
    return texts
