"""Regenerate: ask again, for the rows a quality check flagged only, with a turn that states the broken rule.

Each attempt is a run of its own (kind "regenerate", journalled, billed and budgeted like any run), so the
earlier answers stay in the store for review; the results take each row's latest answer and its flags.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.engine import RunPlan, WorkItem, request_hash
from lib.engine.runs import _prompt_tokens, stable_run_id, with_list_checks
from lib.store import RowRecord

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
    plan: RunPlan, rows: Sequence[RowRecord], attempt: int, base_url: str | None
) -> RunPlan | None:
    """A run that asks each flagged row again (None: nothing is flagged).

    `rows` are the latest answers with the list-level checks applied; the new request is the row's
    original conversation, the flagged answer, and the follow-up turn.
    """
    todo = flagged(with_list_checks(rows, plan.meta))
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
            "regenerates": plan.run_id,
            "attempt": attempt,
            "rows": len(items),
        },
        price=plan.price,
        check_output=plan.check_output,
        check_quality=plan.check_quality,
    )


def latest(rows: Sequence[RowRecord], newer: Sequence[RowRecord]) -> list[RowRecord]:
    """Each row's latest answer: a regenerated one where it succeeded, else the one before."""
    by_id = {r.row_id: r for r in rows}
    for row in newer:
        if row.status == "succeeded":
            by_id[row.row_id] = row
    return list(by_id.values())
