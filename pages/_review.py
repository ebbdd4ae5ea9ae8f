"""Page glue of the review queue, shared by Results and the Run page's live panel: accept, ask again."""

from __future__ import annotations

import streamlit as st

from lib import engine
from lib.engine import regenerate
from lib.engine.client import Connection
from lib.store import StoreError
from lib.views import labels, run_status
from pages import _state


def accept(run_id: str, row_ids: list[int], accepted: bool = True) -> None:
    """Keep these flagged answers as they are (or take it back); kept in the store, so a reload keeps it."""
    try:
        _state.store().accept(run_id, row_ids, accepted)
    except StoreError as exc:
        st.session_state["review_error"] = str(exc)


def shown_error() -> None:
    """An error from a button's callback, said once on the next run."""
    message = st.session_state.pop("review_error", None)
    if message:
        st.error(labels.md_escape(message))


def ask_again(run_id: str, conn: Connection, row_ids: list[int] | None = None) -> None:
    """Start a regenerate attempt over the connection the sidebar shows (the typed key stays in the
    session; the engine holds it only in its client)."""
    if conn.endpoint is None:
        st.session_state["review_error"] = "Asking again needs a key or the offline demo (sidebar)."
        return
    try:
        regenerate.start_again(_state.store(), run_id, conn.endpoint, row_ids)
    except (regenerate.RegenerateError, StoreError) as exc:
        st.session_state["review_error"] = str(exc)


def askable(run_id: str) -> list[int]:
    job = engine.get_job(run_id)
    return regenerate.askable(_state.store(), run_id, job.rows() if job is not None else None)


def blocked(run_id: str) -> str | None:
    """Why nothing can be asked again now, or None."""
    job = engine.get_job(run_id)
    if job is not None and job.active:
        return "Asking again is possible once the run has finished or is paused."
    if regenerate.running_attempt(_state.store(), run_id) is not None:
        return "Rows are being asked again now."
    return None


def attempt_progress(run_id: str) -> bool:
    """The regenerate attempt going now, redrawn each second; the whole page redraws when it ends."""
    job = regenerate.running_attempt(_state.store(), run_id)
    if job is None:
        return False

    def draw() -> None:
        if not job.active:
            st.rerun()
        attempt_lines(job)

    st.fragment(draw, run_every="1s")()
    return True


def attempt_lines(job) -> None:
    """A regenerate attempt's progress and spend (inside a panel that redraws itself already)."""
    snap = job.snapshot()
    st.progress(snap.progress, text=f"Asking flagged rows again: {run_status.progress_text(snap)}")
    st.caption(run_status.spend_text(snap))


def spent_text(run_id: str) -> str:
    """'Asked again 2 times · the run and its attempts cost $0.0123' (empty when never asked again)."""
    store = _state.store()
    n = len(regenerate.attempts(store, run_id))
    if not n:
        return ""
    times = "once" if n == 1 else f"{n} times"
    total = labels.money(regenerate.spent(store, run_id))
    return f"Flagged rows asked again {times} · the run and its attempts were billed {total} in all"
