"""What pages read of a run, from its live job when this process runs it, else from the store: its rows,
its results table with edits, the answer lengths of a sample; and what a run records of its origin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from lib import engine
from lib.engine import runs
from lib.store import RowRecord, Store, StoreError
from lib.workspace import Workspace


def rows_of(store: Store, run_id: str | None) -> list[RowRecord]:
    """A run's rows as they stand ([] for no run, or one that is neither here nor in the store yet)."""
    if not run_id:
        return []
    job = engine.get_job(run_id)
    try:
        return list(job.rows() if job is not None else store.rows(run_id))
    except (KeyError, StoreError):
        return []


@dataclass(frozen=True)
class RunState:
    """Where a run stands: its status and message, and whether a job of this process works on it now."""

    status: str
    message: str | None
    active: bool
    pending: int  # rows not answered yet

    @property
    def interrupted(self) -> bool:
        """The store says it was running, but nothing here runs it: the server restarted meanwhile."""
        return not self.active and self.status in ("pending", "running")


def run_state(store: Store, run_id: str | None) -> RunState | None:
    """The run's state from its job here, else from the store; None for a run that is neither."""
    if not run_id:
        return None
    job = engine.get_job(run_id)
    if job is not None:
        snap = job.snapshot()
        return RunState(snap.status, snap.message, job.active, snap.pending)
    try:
        record = store.run(run_id)
        pending = sum(r.status == "pending" for r in store.rows(run_id))
    except (KeyError, StoreError):
        return None
    return RunState(record.status, record.message, False, pending)


def sample_tokens(store: Store, run_id: str | None) -> tuple[int, ...]:
    """Completion tokens of a sample's answers (the quote's output estimate uses them)."""
    return tuple(r.usage.completion_tokens for r in rows_of(store, run_id) if r.status == "succeeded")


def sample_reasoning(store: Store, run_id: str | None) -> tuple[int, ...]:
    """Hidden reasoning tokens of the same answers, in the same order (part of their completion tokens)."""
    return tuple(r.usage.reasoning_tokens for r in rows_of(store, run_id) if r.status == "succeeded")


def sample_searches(store: Store, run_id: str | None) -> tuple[int, ...]:
    """Billed web search calls of the sample's answers, when the sample ran with web research (else ():
    a sample without it says nothing of how many searches a row needs)."""
    if not run_id:
        return ()
    try:
        if not store.run(run_id).meta.get("web_search"):
            return ()
    except KeyError:
        return ()
    return tuple(r.usage.web_search_calls for r in rows_of(store, run_id) if r.status == "succeeded")


def results_of(store: Store, run_id: str) -> tuple[pd.DataFrame, dict, dict[int, dict[str, str]]]:
    """(results table with edits, run meta, edits) from the live job if here, else from the store."""
    job = engine.get_job(run_id)
    if job is not None:
        edits = job.edits()
        frame = runs.reviewed_results(store, run_id, job.plan.inputs, job.rows(), job.plan.meta, edits)
        return frame, dict(job.plan.meta), edits
    return runs.stored_results(store, run_id), store.run(run_id).meta, store.edits(run_id)


def save_edits(store: Store, run_id: str, edits: Mapping[int, Mapping[str, str]]) -> None:
    """The user's cell edits: on the live job (which journals them), else straight into the store."""
    job = engine.get_job(run_id)
    if job is not None:
        job.set_edits(edits)
    else:
        store.save_edits(run_id, edits)


def run_meta(w: Workspace, input_encoding: str | None, *, demo: bool, prompt: Mapping, **extra) -> dict:
    """A run's meta: the file, whether it is the demo, how the file was read, the exact prompt
    (`prompt`: lib.prompts.identity.draft_identity), and `extra`."""
    return {
        "input_name": w.lead.file_name if w.lead else None,
        "demo": demo,
        "input_encoding": input_encoding,
        "input_encoding_chosen": bool(w.lead and w.lead.encoding),
        **prompt,
        **extra,
    }
