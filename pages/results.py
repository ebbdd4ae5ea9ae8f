"""Results: the full table with edits kept and marked, filters, retries, chaining, and exports."""

from __future__ import annotations

import logging

import streamlit as st

from lib import engine, export
from lib.engine import regenerate, runs
from lib.engine.client import Connection
from lib.export import ExportError
from lib.store import StoreError
from lib.views import export_choice, history, labels, live_table, review, run_data
from lib.workspace import LeadSource
from pages import _connection, _grids, _jobs, _review, _state

log = logging.getLogger(__name__)
FORMATS = (("csv", "Download CSV"), ("xlsx", "Download XLSX"), ("json", "Download JSON"))
VIEWS = (review.REVIEW_VIEW, *live_table.FILTERS)


def chosen_run() -> str | None:
    run_id = _state.ws().results_run()
    if run_id and (engine.get_job(run_id) is not None or _state.store().has_run(run_id)):
        return run_id
    return None


def sync_edits(run_id: str, index: list[int], editable: list[str]) -> None:
    """Fold the results editor's edits into the run's saved edits."""
    state = st.session_state.get(f"editor_results_{run_id}")
    if not state:
        return
    _, _, saved = _jobs.results_of(run_id)
    merged = live_table.merge_editor_edits(saved, state.get("edited_rows", {}), index, editable)
    if merged != saved:
        _jobs.save_edits(run_id, merged)


def export_file(frame, meta: dict, fmt: str, csv_for: str = "spreadsheet") -> bytes:
    """The download's bytes, built on click (on Streamlit's download thread), with a timestamped copy kept
    under the data dir. No rerun follows the click (on_click="ignore"): a rerun gives every download button
    a new deferred file id while the browser still holds the old one, so the next click failed
    ("Deferred file … not found") and downloaded nothing."""
    try:
        path = export.save_copy(frame, labels.data_dir(), live_table.export_stem(meta), fmt, csv_for=csv_for)
    except ExportError as exc:
        log.warning("Export copy not saved: %s", exc)  # the download itself still goes ahead
        return export.export_bytes(frame, fmt, csv_for=csv_for)
    return path.read_bytes()


def exports(frame, meta: dict, run_id: str) -> None:
    st.subheader("Export")
    st.caption(
        "Your edits are included. XLSX and JSON keep every cell's exact text. Each download also saves a "
        f"copy in the data folder ({labels.data_dir()})."
    )
    choices = export_choice.csv_choices(frame)
    _state.bind(
        st.radio,
        "The CSV is",
        "settings.csv_for",
        key="x_csv_for",
        options=list(choices),
        format_func=choices.get,
    )
    csv_for = _state.ws().settings.csv_for
    stem = export.safe_stem(live_table.export_stem(meta))
    cols = st.columns(len(FORMATS))
    for col, (fmt, label) in zip(cols, FORMATS, strict=True):
        col.download_button(
            label,
            data=lambda fmt=fmt: export_file(frame, meta, fmt, csv_for),
            file_name=f"{stem}.{fmt}",
            mime=export.MEDIA_TYPES[fmt],
            key=f"btn_download_{fmt}",
            on_click="ignore",
        )
    with st.expander("What the XLSX export changes"):
        st.text(export_choice.xlsx_note(export.xlsx_warnings(frame)))


def retry_section(run_id: str, frame, conn: Connection) -> None:
    failed = int((frame["enrich_status"] == "failed").sum())
    if not failed:
        return
    job = engine.get_job(run_id)
    busy = job is not None and job.active
    label = f"Retry the {failed:,} failed row(s)"
    if st.button(label, key="btn_retry_failed", disabled=conn.endpoint is None or busy):
        with st.spinner("Sending the failed rows again…"):
            _jobs.continue_run(run_id, conn, retry_failed=True)
        _jobs.attach(run_id)
        _state.go("run")
    if conn.endpoint is None:
        st.caption("Retrying needs a key or the offline demo (sidebar).")
    else:
        _connection.sending_caption(conn)


def review_section(
    run_id: str, frame, edits: dict, outputs: list[str], conn: Connection, after: list[str] | None = None
) -> None:
    """The queue: flagged, not accepted rows with their reasons; accept, edit or ask again per row.
    `after`: a research run's columns (sources...), shown with the answer."""
    ids = live_table.id_columns([str(c) for c in frame.columns], _state.ws().settings.id_columns)
    after = after or []
    waiting = review.queue(frame, [*outputs, *after], ids)
    blocked = _review.blocked(run_id)
    askable = _review.askable(run_id) if blocked is None else []
    if askable and st.button(
        f"Regenerate flagged rows ({len(askable):,})",
        key="btn_regenerate_all",
        disabled=conn.endpoint is None,
        help="Asks each flagged row again, with a turn that says which rule its answer broke. Billed, "
        "and kept under the run's budget; the earlier answers stay for review. Accepted and edited rows "
        "are left as they are.",
    ):
        _review.ask_again(run_id, conn, askable)
        st.rerun()
    if askable:
        a, b = st.columns([2, 1], vertical_alignment="bottom")
        picked = a.multiselect(
            "Or pick flagged rows to ask again",
            askable,
            key="review_pick",
            format_func=lambda i: review.row_label(frame, i, ids),
        )
        if b.button(
            f"Regenerate picked rows ({len(picked):,})",
            key="btn_regenerate_picked",
            disabled=not picked or conn.endpoint is None,
        ):
            _review.ask_again(run_id, conn, picked)
            st.rerun()
    if blocked:
        st.caption(blocked)
    if waiting.empty:
        st.success("No answer waits for review.")
        accepted_section(run_id, frame, ids)
        return
    st.dataframe(
        waiting,
        key="review_queue",
        height=320 if len(waiting) > 8 else "auto",
        column_config={"_index": st.column_config.NumberColumn("row", pinned=True, width="small")},
    )
    options = [int(i) for i in waiting.index]
    row_id = st.selectbox(
        "Review a row", options, key="review_row", format_func=lambda i: review.row_label(frame, i, ids)
    )
    if row_id is None or row_id not in frame.index:
        return
    row = frame.loc[row_id]
    st.caption("Why it is flagged")
    st.text(row.get("enrich_error") or "")  # plain text: the reason quotes the answer
    for column in [*outputs, *after]:
        st.caption(labels.md_escape(column))
        st.text(row.get(column) or "")
    earlier = regenerate.earlier_answers(_state.store(), run_id, row_id)
    if earlier:
        with st.expander(f"Earlier answers ({len(earlier)})"):
            for text in earlier:
                st.text(text)
    edited = bool(set(edits.get(row_id, {})) & set(outputs))
    a, b = st.columns(2)
    a.button(
        "Accept as it is",
        key=f"btn_accept_{row_id}",
        on_click=_review.accept,
        args=(run_id, [row_id]),
        help="The answer stays as it is and is no longer flagged; the export's flags say 'accepted:…'.",
    )
    if b.button(
        "Regenerate this row",
        key=f"btn_regenerate_{row_id}",
        disabled=conn.endpoint is None or blocked is not None or edited,
    ):
        _review.ask_again(run_id, conn, [row_id])
        st.rerun()
    if edited:
        b.caption("You edited this answer: edit it again, or accept it.")
    with st.form(f"review_edit_{run_id}_{row_id}"):
        typed = {
            c: st.text_area(
                f"Edit {labels.md_escape(c)}", value=row.get(c) or "", key=f"review_text_{row_id}_{c}"
            )
            for c in outputs
        }
        if st.form_submit_button("Save edit"):
            merged = {k: dict(v) for k, v in edits.items()}
            for column, value in typed.items():
                if value != (row.get(column) or ""):
                    merged.setdefault(row_id, {})[column] = value
            _jobs.save_edits(run_id, merged)  # checked again at once: a fixed answer leaves the queue
            st.rerun()
    accepted_section(run_id, frame, ids)


def accepted_section(run_id: str, frame, ids: list[str]) -> None:
    kept = [int(i) for i, cell in frame["enrich_flags"].items() if review.is_accepted(cell)]
    if not kept:
        return
    with st.expander(f"Accepted rows ({len(kept):,})"):
        back = st.multiselect(
            "Rows", kept, key="review_unaccept", format_func=lambda i: review.row_label(frame, i, ids)
        )
        st.button("Flag them again", key="btn_unaccept", on_click=_review.accept, args=(run_id, back, False))


def chain(frame, meta: dict) -> None:
    if st.button("Run another prompt on this table", key="btn_chain"):
        data = live_table.chain_csv(frame)
        name = f"results of {meta.get('prompt_name', 'a run')}.csv"
        try:
            digest = _state.workspaces().put_file(data)
        except StoreError as exc:
            st.error(labels.md_escape(exc))
            return
        source = LeadSource(
            file_name=name, digest=digest, size=len(data), derived_from_run=meta.get("run_id")
        )

        def change(w) -> None:
            w.set_lead(source)
            w.run_id = None  # the run shown on the Run page belonged to the previous table
            w.results_run_id = meta.get("run_id") or w.results_run_id

        _state.update(change)
        _state.go("prompt")


def main() -> None:
    _state.through_the_app()
    st.title("Results")
    run_id = chosen_run()
    if run_id is None:
        st.info("No results yet: start a run, or reopen one from History.")
        _state.page_link("run", "Go to Run", ":material/play_arrow:")
        _state.page_link("history", "Go to History", ":material/history:")
        return
    conn = _connection.connection()
    frame, meta, edits = _jobs.results_of(run_id)
    output_columns = list((meta.get("output_columns") or {}).values())
    sync_edits(run_id, [int(i) for i in frame.index], output_columns)
    frame, meta, edits = _jobs.results_of(run_id)
    st.caption(labels.md_escape(f"{history.prompt_label(meta)} · {meta.get('model')} · run {run_id}"))
    _jobs.simulated_note(meta)
    job = engine.get_job(run_id)
    if job is not None and job.active:
        st.info("This run is still going; the table shows what has arrived so far.")
        _state.page_link("run", "Watch it on the Run page", ":material/play_arrow:")
    _review.shown_error()
    _review.attempt_progress(run_id)
    st.caption(labels.md_escape(review.summary_text(frame)))
    spent = _review.spent_text(run_id)
    if spent:
        st.caption(spent)
    waiting = review.waiting(frame)
    which = st.segmented_control(
        "Show",
        VIEWS,
        key="res_filter",
        default="All rows",
        format_func=lambda v: f"{v} ({waiting:,})" if v == review.REVIEW_VIEW else v,
    )
    if which == review.REVIEW_VIEW:
        review_section(run_id, frame, edits, output_columns, conn, runs.research_columns(meta))
        retry_section(run_id, frame, conn)
        chain(frame, meta)
        exports(frame, meta, run_id)
        return
    shown = live_table.filter_results(frame, which or "All rows")
    st.caption(
        f"{len(shown):,} of {len(frame):,} rows · {sum(len(v) for v in edits.values())} edited cell(s)"
    )
    display = live_table.display_frame(frame, edits)
    after = runs.research_columns(meta)  # web research: sources (and calls, shared) beside the answers
    order, config = _grids.grid_layout(display, output_columns, after)
    if which in (None, "All rows"):
        st.data_editor(
            display,
            key=f"editor_results_{run_id}",
            disabled=[c for c in display.columns if c not in output_columns],
            column_order=order,
            column_config=config,
            height=480 if len(display) > 12 else "auto",
        )
        st.caption('Edit answers in place; the "edited" column names the cells you changed.')
    elif shown.empty:
        st.info(f"No rows are {which.lower()}.")
    else:
        st.dataframe(display.loc[shown.index], column_order=order, column_config=config, height=480)
    _grids.id_column_picker(
        [
            str(c)
            for c in frame.columns
            if c not in output_columns and c not in runs.STATUS_COLUMNS and c != "edited"
        ]
    )
    _grids.row_detail(display, output_columns, key="results_detail_row")
    if meta.get("web_search"):
        rows = {r.row_id: r for r in run_data.rows_of(_state.store(), run_id)}
        _grids.row_sources(rows, [int(i) for i in shown.index], key="results_sources_row")
    retry_section(run_id, frame, conn)
    chain(frame, meta)
    exports(frame, meta, run_id)


main()
