"""The workbench's tries: each column's sample run starts as a job and the page returns at once; the
Prompt page polls the running ones (try_panel) and redraws when they end. A column's run id is saved in
the workspace as soon as its run starts, so a reload or another tab finds the try still going.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import engine, models
from lib.engine import runs
from lib.engine.client import Connection
from lib.prompts.draft import Draft
from lib.views import labels, live_table, run_data, workbench_view
from lib.workbench import state, tries
from lib.workbench.state import Variant
from lib.workspace import Workspace
from pages import _draft, _jobs, _state

# --- what the workspace adds to every variant ----------------------------------------------------------


def context(w: Workspace) -> tries.RunContext:
    return tries.RunContext(
        mapping=dict(w.mapping),
        empty=w.settings.empty,
        service_tier=w.settings.service_tier,
        price=_draft.custom_price(w.effective_model()),
        api=w.api_choice(),
        max_tool_calls=w.settings.max_tool_calls,
    )


def draft_variant(w: Workspace, draft: Draft | None = None) -> Variant:
    """The draft as it stands, with the run's model settings: what "Try" sends."""
    draft = draft or w.draft or Draft()
    return state.new_variant(
        "try",
        state.try_label(w.workbench.tries + 1),
        draft,
        model=w.effective_model(),
        temperature=w.effective_temperature()
        if models.model_info(w.effective_model()).supports_temperature
        else None,
        max_tokens=w.effective_max_tokens(),
        rows_per_request=draft.rows_per_request,
        reasoning_effort=w.effective_effort(),
    )


def rows_of(run_id: str | None) -> list:
    return run_data.rows_of(_state.store(), run_id)


# --- messages where the eye is ------------------------------------------------------------------------

MSG = "wb_msg"  # messages of a try or a variant, drawn under the Try button


def say(text: str, place: str = MSG, *, ok: bool = False) -> None:
    _state.say(text, place, ok=ok)


# --- trying ----------------------------------------------------------------------------------------------


def run_variant(df, variant: Variant, w: Workspace, conn: Connection, row_ids: list[int], keep) -> str | None:
    """Start one variant's sample run (answers already paid are reused) and return its run id at once.

    `keep(variant)` saves the column with its run id as soon as the run has started: the page polls the
    run (try_panel), and a reload or a page change during the try finds it again through the workspace."""
    ctx = context(w)
    meta = _draft.run_meta(conn, variant.draft, sample=True, variant=variant.label)
    try:
        plan = tries.plan_variant(df, variant, ctx, row_ids, base_url=conn.endpoint.base_url, meta=meta)
    except (runs.PlanError, ValueError) as exc:
        say(str(exc))
        return None
    fp = tries.fingerprint_of(df, variant, ctx, row_ids) or ""
    job = _jobs.start_job(plan, conn, w.run_settings(workers=min(len(row_ids), 16)))
    state.stamp(variant, job.id, fp, row_ids)
    keep(variant)
    return job.id


def put(variant: Variant, *, as_try: bool = False) -> None:
    """Save a column into the workspace: replace the one with its key, or add it (a try is numbered)."""

    def change(w: Workspace) -> None:
        for i, v in enumerate(w.workbench.variants):
            if v.key == variant.key:
                w.workbench.variants[i] = variant
                return
        if as_try:
            w.workbench.tries += 1
            variant.label = state.try_label(w.workbench.tries)
        replaced, _ = w.workbench.room_for(variant.kind)
        reason = w.workbench.add(variant)
        if reason:
            say(reason)
            return
        if replaced is not None:
            say(f"{replaced.label} made room for {variant.label} (its answers stay in History).")
        if as_try and variant.run_id:
            w.sample_run_id = variant.run_id  # the Run page's quote uses these answer lengths

    _state.update(change)


def try_draft(df, conn: Connection, row_ids: list[int], draft_fp: str | None) -> None:
    w = _state.ws()
    same = w.workbench.same_as(draft_fp)
    if same is not None:
        say(f"Nothing changed since {same.label}: its answers are the ones for this prompt.")
        return
    _, reason = w.workbench.room_for("try")
    if reason:
        say(reason)
        return
    variant = draft_variant(w)
    variant.label = state.try_label(w.workbench.tries + 1)
    run_variant(df, variant, w, conn, row_ids, keep=lambda v: put(v, as_try=True))


def try_again(df, conn: Connection, row_ids: list[int], variants: list[Variant]) -> None:
    """Answer these columns on the current sample: each starts at once, but columns that would send the
    same requests share one run, so nothing is paid twice."""
    w = _state.ws()
    started: dict[str, str] = {}  # fingerprint -> run id
    for variant in variants:
        fp = tries.fingerprint_of(df, variant, context(w), row_ids)
        if fp and fp in started:
            state.stamp(variant, started[fp], fp, row_ids)
            put(variant)
            continue
        run_id = run_variant(df, variant, w, conn, row_ids, keep=put)
        if run_id is None:
            break
        if fp:
            started[fp] = run_id


def add_variant(df, conn: Connection, row_ids: list[int], variant: Variant) -> None:
    w = _state.ws()
    same = w.workbench.same_as(tries.fingerprint_of(df, variant, context(w), row_ids))
    if same is not None:  # the same requests: nothing to send and nothing new to see
        say(f"This variant sends exactly what {same.label} sends: its answers are the ones beside.")
        return
    _, reason = w.workbench.room_for(variant.kind)
    if reason:
        say(reason)
        return
    run_variant(df, variant, w, conn, row_ids, keep=put)


# --- a try in progress -------------------------------------------------------------------------------------


def running_tries(w: Workspace) -> list[Variant]:
    """The columns whose sample run a job of this process is answering now."""
    states = {v.key: run_data.run_state(_state.store(), v.run_id) for v in w.workbench.variants}
    return [v for v in w.workbench.variants if states[v.key] is not None and states[v.key].active]


def unfinished(w: Workspace) -> list[Variant]:
    """Columns answered on this sample whose run stopped before every row was answered."""
    return [
        v
        for v in w.workbench.variants
        if v.run_id
        and not w.workbench.needs_try(v)
        and workbench_view.stopped_text(run_data.run_state(_state.store(), v.run_id)) is not None
    ]


def stop_tries(run_ids: list[str]) -> None:
    for run_id in run_ids:
        job = engine.get_job(run_id)
        if job is not None:
            job.cancel()  # answers in flight are still recorded (they are billed anyway)


def try_panel(df: pd.DataFrame, keys: list[str]) -> None:
    """Redrawn every 500 ms while a try runs: each running column's progress and its answers as they land.
    When one ends, the whole page redraws (run_every is fixed per script run) and it joins the others."""
    w = _state.ws()
    jobs = []
    for key in keys:
        v = w.workbench.find(key)
        job = engine.get_job(v.run_id) if v is not None and v.run_id else None
        if job is not None and job.active:
            jobs.append((v, job))
    if len(jobs) < len(keys):
        st.rerun()
    id_cols = live_table.id_columns([str(c) for c in df.columns], w.settings.id_columns)
    for v, job in jobs:
        share, text = workbench_view.try_progress(v.label, job.snapshot())
        st.progress(share, text=labels.md_escape(text))
        for row in job.rows():
            if row.text and row.row_id in df.index:
                cells = {str(k): "" if x is None else str(x) for k, x in df.loc[row.row_id].to_dict().items()}
                st.caption(labels.md_escape(workbench_view.row_title(row.row_id, cells, id_cols)))
                st.text(row.text)  # model output: plain text, never HTML or Markdown
    st.button(
        "Stop trying",
        key="btn_try_stop",
        on_click=stop_tries,
        args=([job.id for _, job in jobs],),
        icon=":material/stop:",
        help="No new requests; answers already on their way are still kept (they are paid for).",
    )
