"""`run --regenerate N`: after the run, ask the rows a quality check flagged again, through the library's
`start_again` (lib/engine/regenerate.py), the same attempt the app's Regenerate buttons start.

N counts every attempt the run has had, so running the same command again sends nothing more once N
attempts are made; an attempt that was stopped (Ctrl-C, the budget) is continued first. Each attempt
carries the command's settings (tier, ceilings, workers, timeout) and endpoint, under what is left of
--budget; Ctrl-C stops it as it stops the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lib.cli.interrupts import Interrupts
from lib.cli.progress import Progress, run_frame


@dataclass
class Regenerated:
    """The rows with the latest answers laid over, and what the attempts asked, sent and were billed."""

    rows: list
    asked: list[int] = field(default_factory=list)  # rows asked again, per attempt of the run
    prompt_tokens: int = 0  # billed to the attempts (answers reused from the cache cost nothing)
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests_sent: int = 0  # by this command
    cache_hits: int = 0
    stopped: str | None = None  # why no more attempts were made before N (budget, an attempt stopped)


def ask_again(
    store,
    run_id: str,
    rows: Sequence,
    *,
    endpoint,
    settings,
    most: int,
    progress: Progress,
    interrupts: Interrupts,
) -> Regenerated:
    """Up to `most` attempts in all for the run; returns once none is going."""
    from lib.engine import regenerate
    from lib.engine.resume import continue_run

    done: list = []
    stopped = None

    def follow(job, attempt: int) -> str | None:
        interrupts.watch(job)
        progress.follow(job, lambda snap: run_frame(snap, f"regenerate {attempt}"))
        snap = job.snapshot()
        done.append(snap)
        return (
            None
            if snap.status == "finished"
            else f"Regenerate attempt {attempt} stopped: {snap.message or snap.status}"
        )

    earlier = regenerate.attempts(store, run_id)
    if earlier and store.run(earlier[-1]).status != "finished" and not interrupts.stopped:
        left = _left(settings.budget_usd, regenerate.spent(store, run_id))
        if left is not None and left <= 0:
            stopped = "The budget is spent: no more rows are asked again."
        else:
            job = continue_run(store, earlier[-1], endpoint, budget_usd=left)
            stopped = follow(job, len(earlier))
    while stopped is None and not interrupts.stopped and len(regenerate.attempts(store, run_id)) < most:
        if not regenerate.askable(store, run_id):
            break
        try:
            job = regenerate.start_again(store, run_id, endpoint, settings=settings)
        except regenerate.BudgetSpent:
            stopped = "The budget is spent: no more rows are asked again."
        except regenerate.RegenerateError as exc:
            stopped = f"Regenerate: {exc}"
        else:
            stopped = follow(job, len(regenerate.attempts(store, run_id)))
    result = Regenerated(
        rows=regenerate.current_rows(store, run_id, rows),
        requests_sent=sum(s.requests_sent for s in done),
        cache_hits=sum(s.cache_hits for s in done),
        stopped=stopped,
    )
    for attempt in regenerate.attempts(store, run_id):
        asked = store.rows(attempt)
        result.asked.append(len(asked))
        for row in asked:
            if not row.from_cache:
                result.prompt_tokens += row.usage.prompt_tokens
                result.completion_tokens += row.usage.completion_tokens
                result.cost_usd += row.cost_usd or 0.0
    return result


def _left(budget: float | None, spent: float) -> float | None:
    return None if budget is None else budget - spent
