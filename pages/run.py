"""Run: settings, try on a sample, start / pause / resume / cancel, and the live panel of the attached run."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from lib import batch, charts, engine
from lib.cost import pricing, quote
from lib.cost.pricing import PRICES_READ_ON
from lib.engine import Job, regenerate, runs
from lib.engine.client import Connection
from lib.models import model_info
from lib.prompts import templates
from lib.store import StoreError
from lib.views import history, labels, live_table, model_view, prompt_draft, research_view, review, run_status
from lib.workspace import Workspace
from pages import _connection, _draft, _grids, _jobs, _leads, _quote, _review, _state

# --- a run this server no longer runs ----------------------------------------------------------------


def orphan_panel(conn: Connection) -> None:
    """The workspace's run is in the store but not running here (the server restarted, or it stopped)."""
    w = _state.ws()
    run_id = w.run_id
    if not run_id or engine.get_job(run_id) is not None or not _state.store().has_run(run_id):
        return
    record = _state.store().run(run_id)
    if not history.resumable(record):
        return
    st.warning("This run is not running in this server any more (the server restarted or it was stopped).")
    st.text(history.run_label(record, status="interrupted"))
    st.caption(
        labels.md_escape(
            run_status.resume_text(
                [r.status for r in _state.store().rows(run_id)], _jobs.stored_settings(run_id)
            )
        )
    )
    _connection.sending_caption(conn)
    a, b = st.columns(2)
    if a.button("Resume run", key="btn_resume_orphan", disabled=conn.endpoint is None):
        _jobs.continue_run(run_id, conn)  # a batch run collects its batches, nothing re-sent live
        st.rerun()
    if b.button("Open results", key="btn_open_orphan"):
        _jobs.attach(run_id, results=True)
        _state.go("results")


# --- settings ------------------------------------------------------------------------------------------


def settings_form(w: Workspace) -> None:
    bind = _state.bind
    model = w.effective_model()
    st.caption(
        f"Model: {labels.price_label(model, w.settings.price_aliases)} · prices read on {PRICES_READ_ON} "
        "(change it in the sidebar)"
    )
    a, b, c = st.columns(3)
    bind(
        a.number_input,
        "Max tokens per answer",
        "settings.max_tokens",
        key="r_max_tokens",
        value=w.effective_max_tokens(),
        min_value=1,
        max_value=100_000,
        step=10,
        placeholder="no limit",
    )
    a.caption(w.origin("max_tokens") if w.effective_max_tokens() is not None else "No limit set.")
    if model_info(model).supports_temperature:
        bind(
            b.number_input,
            "Temperature",
            "settings.temperature",
            key="r_temp",
            value=w.effective_temperature(),
            min_value=0.0,
            max_value=2.0,
            step=0.1,
            placeholder="model default",
        )
        b.caption(
            w.origin("temperature") if w.effective_temperature() is not None else "The model's default."
        )
    else:
        b.caption(f"{model} does not accept a temperature.")
    bind(
        c.number_input,
        "Parallel workers",
        "settings.workers",
        key="r_workers",
        min_value=1,
        max_value=500,
        step=1,
    )
    d, e, f = st.columns(3)
    bind(
        d.number_input,
        "Requests per minute ceiling",
        "settings.rpm",
        key="r_rpm",
        min_value=1,
        step=100,
        placeholder="none",
    )
    bind(
        e.number_input,
        "Tokens per minute ceiling",
        "settings.tpm",
        key="r_tpm",
        min_value=1,
        step=10_000,
        placeholder="none",
    )
    bind(
        f.number_input,
        "Budget (USD)",
        "settings.budget_usd",
        key="r_budget",
        min_value=0.0,
        step=1.0,
        placeholder="no cap",
        format="%.2f",
        help="The run pauses before a request that could take it past this. Kept with this workspace.",
    )
    tier_form(w, model)
    bind(
        d.number_input,
        "Give up after (seconds)",
        "settings.give_up_after_s",
        key="r_give_up",
        min_value=1.0,
        step=60.0,
        placeholder="never",
        format="%.0f",
        help="Pause the run (rows stay pending) when nothing has succeeded for this long while the server "
        "keeps refusing: 429s that do not lift, or every request failing.",
    )
    bind(
        st.radio,
        "Rows with empty cells",
        "settings.empty",
        key="r_empty",
        options=["send", "skip"],
        horizontal=True,
        format_func={"send": "Send them anyway", "skip": "Skip them"}.get,
    )


TIER_NAMES = {
    "default": "Standard",
    "flex": "Flex (half price, slower; retried when capacity is short)",
    "priority": "Priority (faster, dearer)",
    "fast": "Fast (gpt-6 models: about twice the price, quicker answers)",
    "auto": "Auto (the project's default tier)",
}


def tier_form(w: Workspace, model: str) -> None:
    """The service tier, and for flex whether to go on at the standard price when capacity stays short."""
    a, b = st.columns([2, 3], vertical_alignment="bottom")
    _state.bind(
        a.selectbox,
        "Service tier",
        "settings.service_tier",
        key="r_tier",
        options=list(TIER_NAMES),
        format_func=TIER_NAMES.get,
        help="Each answer is priced by the tier OpenAI says served it.",
    )
    if w.settings.service_tier == "flex":
        if not pricing.supports_flex(model):
            b.warning(f"{model} has no flex processing: pick another model or tier.")
        _state.bind(
            b.checkbox,
            "Continue at the standard price if flex capacity stays unavailable",
            "settings.flex_fallback",
            key="r_flex_fallback",
            help=f"After {w.settings.flex_patience_s / 60:.0f} minutes without flex capacity the rest of the run "
            "goes at the standard tier.",
        )


def current_options(spec, w: Workspace, **extra) -> runs.RunOptions:
    model = w.effective_model()
    return prompt_draft.run_options(
        spec,
        model,
        w.effective_max_tokens(),
        w.effective_temperature(),
        w.settings.empty,
        price=_draft.custom_price(model),
        service_tier=w.settings.service_tier,
        reasoning_effort=w.effective_effort(),
        api=w.api_choice(),
        max_tool_calls=w.settings.max_tool_calls,
        **extra,
    )


# --- the sample ----------------------------------------------------------------------------------------


def sample_section(w: Workspace) -> None:
    """Trying is on the Prompt page; here, what the quote learnt from it."""
    tokens = _jobs.sample_tokens()
    if tokens:
        st.caption(
            f"The quote uses the answer lengths of the sample tried on the Prompt page ({len(tokens)} answers)."
        )
    else:
        st.caption(
            "Try the prompt on a few rows on the Prompt page first: the quote then uses real answer lengths."
        )
    _state.page_link("prompt", "Try it on a sample (Prompt page)", ":material/science:")


# --- starting --------------------------------------------------------------------------------------------


def start_section(df, spec, w: Workspace, conn: Connection, busy: bool) -> None:
    st.subheader("Run the whole list")
    options = current_options(spec, w)
    q = _quote.quote(
        df, spec, options, _jobs.sample_tokens(), _jobs.sample_reasoning(), _jobs.sample_searches()
    )
    _quote.quote_metrics(q)
    st.caption(f"Output estimate: {q.basis}.")
    research_caption(spec, options, conn)
    for note in prompt_draft.quote_notes(q):
        st.caption(note)
    if (spec.rows_per_request or 1) > 1:  # packed: its own path, priced from the packed requests
        paths = prompt_draft.quote_paths(
            df, spec, options, sample_output_tokens=_jobs.sample_tokens(), workers=w.settings.workers
        )
    else:
        paths = quote.paths(
            q,
            options.model,
            prices=pricing.tier_prices(options.model, options.price),
            workers=w.settings.workers,
        )
    st.caption("Every way to run it:")
    st.dataframe(prompt_draft.path_rows(paths), key="quote_paths", hide_index=True)
    st.caption(prompt_draft.batch_quote_text(q))
    suggestion = prompt_draft.suggest_batch(q)
    if suggestion:
        st.info(suggestion)
    warning = run_status.budget_warning(w.settings.budget_usd, q.cost_low, q.cost_high)
    if warning:
        st.warning(warning, icon=":material/savings:")
    elif w.settings.budget_usd is not None:
        st.caption(
            f"Budget: {labels.money(w.settings.budget_usd)} (this workspace's; clear the field for no cap)."
        )
    as_batch = _state.bind(
        st.checkbox, "Send as batch (half price, results within 24 hours)", "settings.batch", key="r_batch"
    )
    _connection.sending_caption(conn)
    listing = model_view.listing_for(conn.endpoint, _state.store())
    shutdown = model_view.retirement_warning(options.model, listing)
    if shutdown:
        (st.error if shutdown[0] == "error" else st.warning)(shutdown[1], icon=":material/event_busy:")
    retired = shutdown is not None and shutdown[0] == "error"
    label = "Send as batch" if as_batch else "Start run"
    if st.button(
        label,
        key="btn_start",
        type="primary",
        disabled=busy or conn.endpoint is None or retired,
        help="The model is shut down: choose another in the sidebar." if retired else None,
    ):
        start_run(df, spec, options, w, conn)
    started = st.session_state.pop("started", None)
    if started:
        st.toast("Run started: its live panel is at the top of this page.", icon=":material/play_arrow:")
    if busy:
        st.caption("A run is going: its progress and answers are at the top of this page.")


def research_caption(spec, options: runs.RunOptions, conn: Connection) -> None:
    """Which API the rows go through, and what web research and one answer per company do to the run."""
    base_url = conn.endpoint.base_url if conn.endpoint is not None else None
    fine, words = research_view.research_text(spec, options, base_url)
    (st.caption if fine else st.error)(labels.md_escape(words))


def start_run(df, spec, options: runs.RunOptions, w: Workspace, conn: Connection) -> None:
    ss = st.session_state
    current = _jobs.attached_job()
    if current is not None and current.active:  # a second click while the first run goes on
        st.toast("A run is already going.")
        return
    # One run id per start intent: a double click re-sends the same id and the engine returns its job.
    run_id = ss.setdefault("pending_run_id", runs.new_run_id())
    try:
        settings = w.run_settings()
        meta = _draft.run_meta(conn, run_settings=dataclasses.asdict(settings))
        plan = runs.plan_run(df, spec, options, base_url=conn.endpoint.base_url, run_id=run_id, meta=meta)
        if w.settings.batch:
            job = batch.start(
                plan,
                endpoint=conn.endpoint,
                store=_state.store(),
                settings=batch.BatchSettings.polling(conn.demo),
            )
        else:
            job = _jobs.start_job(plan, conn, settings)
    except (runs.PlanError, StoreError) as exc:
        st.error(labels.md_escape(exc))
        return
    _jobs.attach(job.id)
    st.session_state["started"] = job.id  # said near the button after the rerun: the panel is at the top
    st.rerun()


# --- the attached run --------------------------------------------------------------------------------------


def controls(job: Job, snap: engine.Snapshot, conn: Connection) -> None:
    a, b, c, d = st.columns([1, 1, 1, 3])
    if snap.status == "running" and a.button("Pause", key="btn_pause"):
        job.pause()
        st.rerun()
    if snap.status in ("paused", "cancelled", "failed"):
        budget = None
        if run_status.budget_paused(snap):
            st.session_state.setdefault("r_new_budget", round((snap.budget_usd or 1.0) * 2, 2))
            budget = st.number_input("Raise the budget to (USD)", min_value=0.0, step=1.0, key="r_new_budget")
        if a.button("Resume", key="btn_resume", disabled=conn.endpoint is None):
            with st.spinner("Resuming…"):
                _jobs.continue_run(job.id, conn, budget_usd=budget)
                if budget is not None:
                    _state.update(lambda w: w.set_setting("budget_usd", budget))
            st.rerun()
    if snap.status in ("running", "paused") and b.button("Cancel", key="btn_cancel"):
        job.cancel()
        st.rerun()
    retry_label = "Re-send failed rows live" if job.kind == "batch" else "Retry failed rows"
    if (
        snap.status == "finished"
        and snap.failed
        and c.button(retry_label, key="btn_retry_run", disabled=conn.endpoint is None)
    ):
        _jobs.continue_run(job.id, conn, retry_failed=True)
        st.rerun()
    askable = _review.askable(job.id) if snap.status == "finished" and _review.blocked(job.id) is None else []
    if askable and d.button(
        f"Regenerate flagged rows ({len(askable):,})",
        key="btn_regenerate_run",
        disabled=conn.endpoint is None,
        help="Sent live: each flagged row is asked again with a turn that says which rule it broke, billed "
        "and under what is left of the budget. Accepted and edited rows are left as they are.",
    ):
        _review.ask_again(job.id, conn)
        st.rerun()
    if not job.active:
        _connection.sending_caption(conn)


def job_table(job: Job) -> live_table.LiveTable:
    """One LiveTable per job and session: rebuilt incrementally on every redraw."""
    ss = st.session_state
    table = ss.get("live_table")
    if table is None or ss.get("live_table_id") != job.id:
        table = live_table.LiveTable(job.plan.inputs, job.plan.meta)
        ss.update(live_table=table, live_table_id=job.id)
    return table


def sync_edits(run_id: str, key: str | None = None, order: list[int] | None = None) -> None:
    """Copy the editor's edits onto the job (on_change, and before each render for seeded state).

    The editor keeps edits by row position in the order it was drawn in (flagged rows first), so the
    positions are read against that order; the key names that order (review.editor_key)."""
    job = engine.get_job(run_id)
    if job is None:
        return
    table = job_table(job)
    views: list[tuple[str, list[int] | None]] = [(key, order)] if key is not None else []
    if key is None:  # before a render: the order last drawn, and the run's own order under the plain key
        drawn = st.session_state.get("live_editor_view")
        if drawn and drawn[0] == run_id:
            views.append((drawn[1], drawn[2]))
        views.append((f"editor_{run_id}", None))
    for view_key, view_order in dict(views).items():
        state = st.session_state.get(view_key)
        if not state:
            continue
        merged = live_table.merge_editor_edits(
            job.edits(), state.get("edited_rows", {}), view_order or list(table.index), table.names.values()
        )
        if merged != job.edits():
            job.set_edits(merged)


def review_table(job: Job, table: live_table.LiveTable, snap: engine.Snapshot) -> None:
    """The table's rows as the review queue sees them (accepted, regenerated, edits checked again)."""
    store = _state.store()
    going = regenerate.running_attempt(store, job.id)
    version = (
        snap.version,
        store.accepted(job.id),
        len(regenerate.attempts(store, job.id)),
        going.snapshot().version if going is not None else None,
    )
    if table.version != version:
        rows = regenerate.review_rows(
            store, job.id, job.rows(), meta=job.plan.meta, inputs=job.plan.inputs, edits=job.edits()
        )
        table.build(rows, job.edits(), version)  # type: ignore[arg-type]


def live_counts(frame) -> None:
    """Counts per check as answers arrive: one line above the grid, which stays near the progress bar."""
    if review.counts(frame) or review.summary_text(frame).endswith("accepted."):
        st.caption(labels.md_escape(review.summary_text(frame)))


def live_queue(run_id: str, frame) -> None:
    """The first flagged rows (below the grid), each with its reason and an Accept button."""
    if not review.counts(frame):
        return
    ids = live_table.id_columns([str(c) for c in frame.columns], _state.ws().settings.id_columns)
    waiting = review.queue(frame, [], ids)
    for row_id, row in waiting.head(review.LIVE_QUEUE_ROWS).iterrows():
        a, b = st.columns([8, 1], vertical_alignment="center")
        a.text(f"Row {row_id} · {row['checks']}: {row['reason']}")  # plain text: the reason quotes the answer
        b.button("Accept", key=f"btn_live_accept_{row_id}", on_click=_review.accept, args=(run_id, [row_id]))
    more = len(waiting) - review.LIVE_QUEUE_ROWS
    if more > 0:
        st.caption(
            f"… and {more:,} more: the review queue on Results lists them all, to accept, edit or ask again."
        )


def panel(run_id: str, status_at_draw: str, asking_at_draw: bool = False) -> None:
    """The live part: redrawn every 500 ms while the run is active. Thin, because fragments are."""
    job = engine.get_job(run_id)
    if job is None:
        return
    sync_edits(run_id)  # before the snapshot: an edit that fixes a row moves it out of the flagged rows now
    snap = job.snapshot()
    going = regenerate.running_attempt(_state.store(), run_id)
    asking = going is not None
    if snap.status != status_at_draw or asking != asking_at_draw:
        st.rerun()  # started, paused or ended: redraw the whole page so buttons and the timer follow
    st.progress(snap.progress, text=run_status.progress_text(snap))
    st.caption(run_status.spend_text(snap))
    stall = run_status.stall_text(snap)
    if stall:
        st.text(f"Nothing moves: {stall}.")
    for line in (
        run_status.tier_text(snap),
        run_status.caching_text(snap),
        run_status.reasoning_text(snap),
        research_view.searches_text(snap),
    ):
        if line:
            st.caption(line)
    for line in run_status.adjusted_lines(snap):
        st.caption(labels.md_escape(line))
    if snap.message:
        st.text(snap.message)
    if going is not None:
        _review.attempt_lines(going)
    table = job_table(job)
    review_table(job, table, snap)
    live_counts(table.frame)
    natural = [int(i) for i in table.index]
    first = _state.ws().settings.flagged_first
    if first:
        edits = job.edits()
        stamp = (_state.store().accepted(run_id), sorted((k, sorted(v.items())) for k, v in edits.items()))
        sorter = st.session_state.get("live_order")
        if sorter is None or st.session_state.get("live_order_id") != run_id:
            sorter = review.LiveOrder()
            st.session_state.update(live_order=sorter, live_order_id=run_id)
        order, shown = sorter.view(table.frame, live=job.active, stamp=stamp, now=time.monotonic())
    else:
        order, shown = natural, table.frame
    key = review.editor_key(run_id, order, natural)
    st.session_state["live_editor_view"] = (run_id, key, order)
    outputs = list(table.names.values())
    after = list(table.extra.values())
    grid_order, config = _grids.grid_layout(shown, outputs, after)
    st.data_editor(
        shown,
        key=key,
        disabled=[*table.inputs.columns, *after, *runs.STATUS_COLUMNS],
        column_order=grid_order,
        column_config=config,
        on_change=sync_edits,
        args=(run_id, key, order),
        height=420 if len(shown) > 12 else "auto",
    )
    a, b = st.columns([1, 3], vertical_alignment="center")
    _state.bind(
        a.toggle,
        "Flagged rows first",
        "settings.flagged_first",
        key="r_flagged_first",
        steady=True,
        help="Off: the table keeps the list's order while answers arrive, so rows do not move as you edit.",
    )
    if order != natural:
        b.caption("Flagged rows come first; edits stay with their row.")
    live_queue(run_id, table.frame)
    if job.kind == "batch":
        batch_lines(job)
    if any(cost or tokens for _, cost, tokens in snap.cost_series):  # nothing spent: no empty chart
        st.plotly_chart(
            charts.cost_over_time(snap.cost_series, budget=snap.budget_usd), key=f"chart_{run_id}"
        )
    if snap.recent_errors:
        st.caption("Recent errors")
        st.text("\n".join(run_status.error_lines(snap)))


def batch_lines(job: batch.BatchJob) -> None:
    """Each batch's status at OpenAI, and the price against a live run."""
    st.caption(" \n".join(run_status.batch_progress_lines(job.progress())))
    saved = run_status.batch_savings_text(job.savings())
    if saved:
        st.caption(saved)


def attached_section(conn: Connection) -> None:
    job = _jobs.attached_job()
    if job is None:
        return
    ss = st.session_state
    snap = job.snapshot()
    meta = job.plan.meta
    st.subheader(f"Run of {meta.get('prompt_name', 'a prompt')} on {snap.total:,} rows")
    file = labels.md_escape(meta.get("input_name") or "a table")
    st.caption(
        f"{file} · model {labels.md_escape(meta.get('model'))} · status: {snap.status} · run id {job.id}"
    )
    _jobs.simulated_note(meta)
    _review.shown_error()
    controls(job, snap, conn)
    live = job.active
    if not live and ss.get("pending_run_id") == job.id:
        ss.pop("pending_run_id")  # this start intent is over; the next Start makes a new run
    asking = regenerate.running_attempt(_state.store(), job.id) is not None
    st.fragment(panel, run_every="500ms" if live or asking else None)(job.id, snap.status, asking)
    if job.plan.meta.get("web_search"):  # outside the live fragment: a picker there would reset every redraw
        rows = {r.row_id: r for r in job.rows()}
        _grids.row_sources(rows, sorted(rows), key="run_sources_row")
    a, b, _ = st.columns([1, 1, 2])
    if not live and a.button("Open results", key="btn_open_results"):
        _jobs.attach(job.id, results=True)
        _state.go("results")
    if b.button("Open the review queue", key="btn_open_review", help="Every flagged row, on Results."):
        ss["res_filter"] = review.REVIEW_VIEW
        _jobs.attach(job.id, results=True)
        _state.go("results")
    st.divider()


def main() -> None:
    _state.through_the_app()
    st.title("Run")
    conn = _connection.connection()
    orphan_panel(conn)
    attached_section(conn)
    job = _jobs.attached_job()
    busy = job is not None and job.active
    df = _leads.need_leads()
    spec = _draft.need_spec()
    problems = templates.check(spec, [str(c) for c in df.columns])
    if problems:
        st.error("The prompt uses columns this table does not have. Fix it on the Prompt page.")
        _state.page_link("prompt", "Go to Prompt", ":material/edit_note:")
        return
    w = _state.ws()
    st.subheader("Settings")
    settings_form(w)
    _grids.id_column_picker([str(c) for c in df.columns])
    w = _state.ws()
    sample_section(w)
    start_section(df, spec, _state.ws(), conn, busy)


main()
