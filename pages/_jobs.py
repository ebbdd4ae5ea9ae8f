"""The runs a workspace has: the one attached, starting and continuing one in this process, and its
results and edits (from the live job when here, else the store: lib.views.run_data)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import batch, engine
from lib.engine import Job, resume
from lib.engine.client import Connection
from lib.views import labels, run_data
from lib.workspace import Workspace
from pages import _state


def attached_job() -> Job | None:
    run_id = _state.ws().run_id
    return engine.get_job(run_id) if run_id else None


def attach(run_id: str | None, *, results: bool = False) -> None:
    """Make `run_id` the workspace's run (the Run page's), or only the one the Results page shows."""

    def change(w: Workspace) -> None:
        if results:
            w.results_run_id = run_id
        else:
            w.run_id = run_id
            w.results_run_id = None

    _state.update(change)


def start_job(plan, conn: Connection, settings: engine.RunSettings) -> Job:
    """Start (or re-attach to) a run in this process; workers never touch Streamlit."""
    return engine.start(plan, endpoint=conn.endpoint, settings=settings, store=_state.store())


def continue_run(
    run_id: str, conn: Connection, *, retry_failed: bool = False, budget_usd: float | None = None
):
    """Resume a run, or re-send its failed rows, on the connection shown now (lib.engine.resume)."""
    return resume.continue_run(
        _state.store(),
        run_id,
        conn.endpoint,
        retry_failed=retry_failed,
        budget_usd=budget_usd,
        batch_settings=batch.BatchSettings.polling(conn.demo),
    )


def stored_settings(run_id: str) -> engine.RunSettings:
    return resume.stored_settings(_state.store(), run_id)


def results_of(run_id: str) -> tuple[pd.DataFrame, dict, dict[int, dict[str, str]]]:
    return run_data.results_of(_state.store(), run_id)


def save_edits(run_id: str, edits: dict[int, dict[str, str]]) -> None:
    run_data.save_edits(_state.store(), run_id, edits)


def sample_tokens() -> tuple[int, ...]:
    """Completion tokens of the workspace's sample answers (the quote's output estimate uses them)."""
    return run_data.sample_tokens(_state.store(), _state.ws().sample_run_id)


def sample_reasoning() -> tuple[int, ...]:
    return run_data.sample_reasoning(_state.store(), _state.ws().sample_run_id)


def sample_searches() -> tuple[int, ...]:
    """Billed web search calls of the sample's answers (when it ran with web research)."""
    return run_data.sample_searches(_state.store(), _state.ws().sample_run_id)


def simulated_note(meta: dict) -> None:
    if meta.get("demo"):
        st.warning(labels.SIMULATED_NOTE, icon=":material/science:")
