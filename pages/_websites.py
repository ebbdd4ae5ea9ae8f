"""The Data page's "Read websites" step: choose the address column, start, watch, pause, cancel.

The job runs in background threads (lib/web) and is found again by its id, kept in the workspace; the
live panel polls its snapshot. The columns it adds (`website_text`, `website_error`) are part of the
workspace's table from then on (pages/_leads.py), so prompts can use `{{ website_text }}`. After a
server restart the columns come back from the store, where every reading is kept. The choices it
offers are lib/web/step.py.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import engine, web
from lib.views import web_status
from lib.web import step
from pages import _leads, _state

# --- callbacks ------------------------------------------------------------------------------------------


def start(df: pd.DataFrame) -> None:
    w = _state.ws()
    column = w.websites.url_column
    if not column or column not in df.columns:
        _state.say("Choose the column that holds the website addresses first.")
        return
    job = web.start(step.cells_of(df, column), settings=_leads.web_settings(w), store=_state.store())

    def change(w) -> None:
        w.websites.job_id = job.id

    _state.update(change)


def pause(job_id: str) -> None:
    job = engine.get_job(job_id)
    if isinstance(job, web.WebJob):
        job.pause()


def resume(job_id: str) -> None:
    job = engine.get_job(job_id)
    if isinstance(job, web.WebJob):
        job.resume()


def cancel(job_id: str) -> None:
    job = engine.get_job(job_id)
    if isinstance(job, web.WebJob):
        job.cancel()


def forget() -> None:
    def change(w) -> None:
        w.websites.job_id = None

    _state.update(change)


# --- drawing --------------------------------------------------------------------------------------------


def panel(job_id: str, status_at_draw: str) -> None:
    """Redrawn every 500 ms while the job is active. Thin, because fragments are."""
    job = engine.get_job(job_id)
    if not isinstance(job, web.WebJob):
        return
    snap = job.snapshot()
    if snap.status != status_at_draw:
        st.rerun()  # paused, cancelled or done: redraw the page so the buttons and the table follow
    st.progress(snap.progress, text=web_status.progress_text(snap))
    if snap.recent_errors:
        st.caption("Recent problems")
        st.text("\n".join(f"row {e.row_id}: {e.message}" for e in reversed(snap.recent_errors[-6:])))


def section(df: pd.DataFrame) -> None:
    """The step itself, drawn on the Data page under the file's facts."""
    w = _state.ws()
    st.subheader("Read websites")
    st.caption(
        "Reads each lead's website (the homepage, politely, robots.txt obeyed) and adds two columns: "
        "website_text, for prompts such as Website analysis, and website_error. Addresses on a private "
        "network are never read unless their host is allowed below. A site read in the last 7 days comes "
        "from the store instead of being read again."
    )
    columns = [str(c) for c in df.columns if c not in (web.TEXT_COLUMN, web.ERROR_COLUMN)]
    if w.websites.url_column not in columns:
        guess = step.guess_column(columns)
        if guess is not None and w.websites.url_column is None:
            _state.update(lambda x: setattr(x.websites, "url_column", guess))
            w = _state.ws()
    job = _leads.web_job(w)
    active = job is not None and job.active
    left, right = st.columns(2)
    with left:
        _state.bind(
            st.selectbox,
            "Column with the website addresses",
            "websites.url_column",
            key="d_web_column",
            options=columns,
            index=None,
            placeholder="Choose a column",
            disabled=active,
        )
        _state.bind(
            st.checkbox,
            "Also read the About us page",
            "websites.about_page",
            key="d_web_about",
            disabled=active,
            help="One more page per site, found by its link text (About us, Über uns, Company…).",
        )
    with right:
        _state.bind(
            st.text_area,
            "Intranet hosts that may be read (one per line)",
            "websites.allow_hosts",
            key="d_web_hosts",
            height=80,
            disabled=active,
            help="Hosts that resolve to a private address are refused unless they are listed here.",
        )
        if step.default_hosts().strip():
            st.caption(
                "Allowed for everyone on this server: "
                + ", ".join(web_status.parse_hosts(step.default_hosts()))
            )
    buttons = st.columns(4)
    if job is None or not job.active:
        label = "Read websites" if w.websites.job_id is None else "Read websites again"
        buttons[0].button(
            label,
            key="btn_web_start",
            type="primary",
            on_click=start,
            args=(df,),
            disabled=not w.websites.url_column,
        )
    if job is not None:
        snap = job.snapshot()
        if snap.status == "running":
            buttons[1].button("Pause", key="btn_web_pause", on_click=pause, args=(job.id,))
        elif snap.status in ("paused", "cancelled") and snap.pending:
            buttons[1].button("Resume", key="btn_web_resume", on_click=resume, args=(job.id,))
        if snap.status in ("running", "paused"):
            buttons[2].button("Cancel", key="btn_web_cancel", on_click=cancel, args=(job.id,))
        st.fragment(panel, run_every="500ms" if active else None)(job.id, snap.status)
        if not active:
            summary(job.rows())
    elif w.websites.job_id is not None:
        st.caption("Website texts read earlier are in the table below.")
    if w.websites.job_id is not None and not active:
        buttons[3].button("Remove the website columns", key="btn_web_forget", on_click=forget)


def summary(rows: list[web.WebRow]) -> None:
    """Once done: how many sites were read, and why the others were not, by kind."""
    read = sum(r.status == "succeeded" for r in rows)
    st.caption(f"{read:,} of {len(rows):,} rows have website text.")
    kinds = web_status.error_summary(r.error for r in rows if r.status == "failed")
    if kinds:
        st.dataframe(pd.DataFrame(kinds, columns=["why not read", "rows"]), hide_index=True)
