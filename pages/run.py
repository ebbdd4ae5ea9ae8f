"""Run: settings, try on a sample, start / pause / resume / cancel, and the live panel of the attached run."""

from __future__ import annotations

import streamlit as st

from lib import batch, charts, engine
from lib.cost.pricing import PRICES_READ_ON
from lib.engine import Job, RunSettings, runs
from lib.prompts import templates
from lib.prompts.models import model_info
from lib.store import StoreError
from lib.views import history, labels, lead_view, live_table, prompt_draft, run_status
from pages import _shared

SAMPLE_TIMEOUT_S = 90.0


# --- attaching to a run ---------------------------------------------------------------------------


def reattach_from_url() -> None:
    """A refreshed page or a second tab carries ?run=ID: attach to that job, or offer to reopen it."""
    ss = st.session_state
    wanted = st.query_params.get("run")
    if not wanted or wanted == ss.get("run_id"):
        return
    if engine.get_job(wanted) is not None:
        ss["run_id"] = wanted
    elif _shared.store().has_run(wanted):
        ss["orphan_run"] = wanted


def orphan_panel(conn: _shared.Connection) -> None:
    run_id = st.session_state.get("orphan_run")
    if not run_id or engine.get_job(run_id) is not None:
        return
    record = _shared.store().run(run_id)
    st.warning("This run is not running in this server any more (the server restarted or it was stopped).")
    st.text(history.run_label(record))
    a, b = st.columns(2)
    if a.button("Resume run", key="btn_resume_orphan", disabled=conn.endpoint is None):
        job = _shared.resume_stored(run_id, conn)  # a batch run collects its batches, nothing re-sent live
        st.session_state.update(run_id=job.id)
        st.session_state.pop("orphan_run", None)
        st.rerun()
    if b.button("Open results", key="btn_open_orphan"):
        st.session_state["results_run_id"] = run_id
        st.switch_page(_shared.PAGES["results"])


# --- settings -------------------------------------------------------------------------------------


def seed_settings(spec) -> None:
    """Run settings start from the prompt's defaults, and follow them when the prompt changes."""
    ss = st.session_state
    defaults = (spec.name, spec.version, spec.max_tokens, spec.temperature)
    if ss.get("r_defaults_of") != defaults:
        ss.update(r_defaults_of=defaults, r_max_tokens=spec.max_tokens, r_temp=spec.temperature)
    for key, value in (("r_workers", 16), ("r_rpm", None), ("r_tpm", None), ("r_budget", None)):
        ss.setdefault(key, value)
    ss.setdefault("r_empty", "send")
    ss.setdefault("r_sample_n", 5)
    ss.setdefault("r_sample_how", "first")


def settings_form(model: str) -> None:
    st.caption(
        f"Model: {labels.price_label(model)} · prices read on {PRICES_READ_ON} (change it in the sidebar)"
    )
    a, b, c = st.columns(3)
    a.number_input("Max tokens per answer", min_value=1, max_value=100_000, step=10, key="r_max_tokens")
    if model_info(model).supports_temperature:
        b.number_input(
            "Temperature", min_value=0.0, max_value=2.0, step=0.1, key="r_temp", placeholder="default"
        )
    else:
        b.caption(f"{model} does not accept a temperature.")
    c.number_input("Parallel workers", min_value=1, max_value=500, step=1, key="r_workers")
    d, e, f = st.columns(3)
    d.number_input("Requests per minute ceiling", min_value=1, step=100, key="r_rpm", placeholder="none")
    e.number_input("Tokens per minute ceiling", min_value=1, step=10_000, key="r_tpm", placeholder="none")
    f.number_input(
        "Budget (USD)", min_value=0.0, step=1.0, key="r_budget", placeholder="no cap", format="%.2f"
    )
    st.radio(
        "Rows with empty cells",
        ["send", "skip"],
        key="r_empty",
        horizontal=True,
        format_func={"send": "Send them anyway", "skip": "Skip them"}.get,
    )


def current_options(spec, model: str, **extra) -> runs.RunOptions:
    ss = st.session_state
    return prompt_draft.run_options(
        spec,
        model,
        ss.get("r_max_tokens"),
        ss.get("r_temp"),
        ss["r_empty"],
        price=_shared.custom_price(model),
        **extra,
    )


def current_settings(workers: int | None = None) -> RunSettings:
    ss = st.session_state
    return RunSettings(
        workers=int(workers or ss["r_workers"]),
        rpm=ss.get("r_rpm"),
        tpm=ss.get("r_tpm"),
        budget_usd=ss.get("r_budget"),
    )


def run_meta(conn: _shared.Connection, **extra) -> dict:
    return {"input_name": st.session_state.get("lead_name"), "demo": conn.demo, **extra}


# --- sample ---------------------------------------------------------------------------------------


def sample_section(df, spec, model: str, conn: _shared.Connection) -> None:
    st.subheader("Try on a sample")
    a, b, c = st.columns([1, 2, 1], vertical_alignment="bottom")
    a.number_input("Rows", min_value=1, max_value=50, key="r_sample_n")
    b.radio("Which rows", ["first", "random"], key="r_sample_how", horizontal=True)
    clicked = c.button("Try on sample", key="btn_sample", disabled=conn.endpoint is None)
    if clicked:
        run_sample(df, spec, model, conn)
    result = st.session_state.get("sample_result")
    if result is not None:
        frame, meta = result
        _shared.simulated_note(meta)
        st.dataframe(frame, hide_index=False)
        tokens = st.session_state.get("sample_tokens", ())
        if tokens:
            st.caption(f"The quote below now uses the sample's answer lengths ({len(tokens)} answers).")


def run_sample(df, spec, model: str, conn: _shared.Connection) -> None:
    ss = st.session_state
    ids = lead_view.sample_ids(df, int(ss["r_sample_n"]), ss["r_sample_how"], seed=len(df))
    try:
        plan = runs.plan_run(
            df,
            spec,
            current_options(spec, model, row_ids=ids),
            base_url=conn.endpoint.base_url,
            meta=run_meta(conn, sample=True),
        )
    except runs.PlanError as exc:
        st.error(labels.md_escape(exc))
        return
    with st.spinner(f"Sending {len(plan.items)} sample row(s)…"):
        job = _shared.start_job(plan, conn, current_settings(workers=min(len(ids), 16)))
        done = job.wait(SAMPLE_TIMEOUT_S)
    if not done:
        job.cancel()
        st.error(f"The sample did not finish within {SAMPLE_TIMEOUT_S:.0f} s and was cancelled.")
    if job.status == "failed" and job.message:
        st.error(labels.md_escape(job.message))
    frame = runs.results_frame(job.plan.inputs, job.rows(), job.plan.meta)
    ss["sample_result"] = (frame.drop(columns=["enrich_row_id"]), dict(job.plan.meta))
    ss["sample_tokens"] = tuple(r.usage.completion_tokens for r in job.rows() if r.status == "succeeded")


# --- starting -------------------------------------------------------------------------------------


def start_section(df, spec, model: str, conn: _shared.Connection, busy: bool) -> None:
    st.subheader("Run the whole list")
    options = current_options(spec, model)
    q = _shared.quote(df, spec, options, tuple(st.session_state.get("sample_tokens", ())))
    cols = st.columns(4)
    for col, (label, value) in zip(cols, prompt_draft.quote_lines(q).items(), strict=True):
        col.metric(label, value)
    st.caption(f"Output estimate: {q.basis}.")
    st.caption(prompt_draft.batch_quote_text(q))
    suggestion = prompt_draft.suggest_batch(q)
    if suggestion:
        st.info(suggestion)
    as_batch = st.checkbox("Send as batch (half price, results within 24 hours)", key="r_batch")
    if conn.endpoint is None:
        st.warning("No API key: type one in the sidebar or switch on the offline demo.")
    label = "Send as batch" if as_batch else "Start run"
    if st.button(label, key="btn_start", type="primary", disabled=busy or conn.endpoint is None):
        start_run(df, spec, options, conn)


def start_run(df, spec, options: runs.RunOptions, conn: _shared.Connection) -> None:
    ss = st.session_state
    current = _shared.attached_job()
    if current is not None and current.active:  # a second click while the first run goes on
        st.toast("A run is already going.")
        return
    # One run id per start intent: a double click re-sends the same id and the engine returns its job.
    run_id = ss.setdefault("pending_run_id", runs.new_run_id())
    try:
        plan = runs.plan_run(
            df, spec, options, base_url=conn.endpoint.base_url, run_id=run_id, meta=run_meta(conn)
        )
        if ss.get("r_batch"):
            job = batch.start(
                plan, endpoint=conn.endpoint, store=_shared.store(), settings=_shared.batch_settings(conn)
            )
        else:
            job = _shared.start_job(plan, conn, current_settings())
    except (runs.PlanError, StoreError) as exc:
        st.error(labels.md_escape(exc))
        return
    ss["run_id"] = job.id
    st.query_params["run"] = job.id
    st.rerun()


# --- the attached run -----------------------------------------------------------------------------


def controls(job: Job, snap: engine.Snapshot, conn: _shared.Connection) -> None:
    a, b, c, _ = st.columns([1, 1, 1, 3])
    if snap.status == "running" and a.button("Pause", key="btn_pause"):
        job.pause()
        st.rerun()
    if snap.status in ("paused", "cancelled", "failed"):
        budget = None
        if run_status.budget_paused(snap):
            st.session_state.setdefault("r_new_budget", round((snap.budget_usd or 1.0) * 2, 2))
            budget = st.number_input("Raise the budget to (USD)", min_value=0.0, step=1.0, key="r_new_budget")
        if a.button("Resume", key="btn_resume", disabled=conn.endpoint is None and snap.status == "failed"):
            with st.spinner("Resuming…"):
                if getattr(job, "mode", "live") == "batch":
                    job.resume()  # polls its batches again (or sends what a cancel left)
                elif (
                    snap.status == "failed"
                ):  # stopped by a fatal error: rebuild it so the new key/endpoint is used
                    _shared.resume_stored(job.id, conn)
                else:
                    job.resume(budget_usd=budget)
            st.rerun()
    if snap.status in ("running", "paused") and b.button("Cancel", key="btn_cancel"):
        job.cancel()
        st.rerun()
    retry_label = (
        "Re-send failed rows live" if getattr(job, "mode", "live") == "batch" else "Retry failed rows"
    )
    if snap.status == "finished" and snap.failed and c.button(retry_label, key="btn_retry_run"):
        job.retry_failed()
        st.rerun()


def job_table(job: Job) -> live_table.LiveTable:
    ss = st.session_state
    table = ss.get("live_table")
    if table is None or ss.get("live_table_id") != job.id:
        table = live_table.LiveTable(job.plan.inputs, job.plan.meta)
        ss.update(live_table=table, live_table_id=job.id)
    return table


def sync_edits(run_id: str) -> None:
    """Copy the editor's edits onto the job (on_change, and before each render for seeded state)."""
    job = engine.get_job(run_id)
    state = st.session_state.get(f"editor_{run_id}")
    if job is None or not state:
        return
    table = job_table(job)
    merged = live_table.merge_editor_edits(
        job.edits(), state.get("edited_rows", {}), list(table.index), table.names.values()
    )
    if merged != job.edits():
        job.set_edits(merged)


def panel(run_id: str, status_at_draw: str) -> None:
    """The live part: redrawn every 500 ms while the run is active. Thin, because fragments are."""
    job = engine.get_job(run_id)
    if job is None:
        return
    snap = job.snapshot()
    if snap.status != status_at_draw:
        st.rerun()  # started, paused or ended: redraw the whole page so buttons and the timer follow
    st.progress(snap.progress, text=run_status.progress_text(snap))
    st.caption(run_status.spend_text(snap))
    if snap.message:
        st.text(snap.message)
    if getattr(job, "mode", "live") == "batch":
        batch_lines(job)
    st.plotly_chart(charts.cost_over_time(snap.cost_series, budget=snap.budget_usd), key=f"chart_{run_id}")
    if snap.recent_errors:
        st.caption("Recent errors")
        st.text("\n".join(run_status.error_lines(snap)))
    sync_edits(run_id)
    table = job_table(job)
    if table.version != snap.version:
        table.build(job.rows(), job.edits(), snap.version)
    inputs = list(table.inputs.columns)
    st.data_editor(
        table.frame,
        key=f"editor_{run_id}",
        disabled=[*inputs, *runs.STATUS_COLUMNS],
        on_change=sync_edits,
        args=(run_id,),
        height=420 if len(table.frame) > 12 else "auto",
    )


def batch_lines(job: batch.BatchJob) -> None:
    """Each batch's status at OpenAI, and the price against a live run."""
    st.caption(" \n".join(run_status.batch_progress_lines(job.progress())))
    saved = run_status.batch_savings_text(job.savings())
    if saved:
        st.caption(saved)


def attached_section(conn: _shared.Connection) -> None:
    job = _shared.attached_job()
    if job is None:
        return
    ss = st.session_state
    snap = job.snapshot()
    meta = job.plan.meta
    st.subheader(f"Run of {meta.get('prompt_name', 'a prompt')} on {snap.total:,} rows")
    st.caption(f"Model {meta.get('model')} · status: {snap.status} · run id {job.id}")
    _shared.simulated_note(meta)
    if st.query_params.get("run") != job.id:
        st.query_params["run"] = job.id
    controls(job, snap, conn)
    live = job.active
    if not live and ss.get("pending_run_id") == job.id:
        ss.pop("pending_run_id")  # this start intent is over; the next Start makes a new run
    st.fragment(panel, run_every="500ms" if live else None)(job.id, snap.status)
    if not live and st.button("Open results", key="btn_open_results"):
        ss["results_run_id"] = job.id
        st.switch_page(_shared.PAGES["results"])
    st.divider()


def main() -> None:
    st.title("Run")
    conn = _shared.connection()
    reattach_from_url()
    orphan_panel(conn)
    attached_section(conn)
    job = _shared.attached_job()
    busy = job is not None and job.active
    df = _shared.need_leads()
    spec = _shared.need_spec()
    problems = templates.check(spec, [str(c) for c in df.columns])
    if problems:
        st.error("The prompt uses columns this table does not have. Fix it on the Prompt page.")
        st.page_link(_shared.PAGES["prompt"], label="Go to Prompt", icon=":material/edit_note:")
        return
    seed_settings(spec)
    model = _shared.model()
    st.subheader("Settings")
    settings_form(model)
    sample_section(df, spec, model, conn)
    start_section(df, spec, model, conn, busy)


main()
