"""History: past runs from the store, their cost over time; reopen results or resume an interrupted run."""

from __future__ import annotations

import streamlit as st

from lib import charts, engine
from lib.engine.client import Connection
from lib.views import history
from pages import _connection, _jobs, _state


def actions(records, conn: Connection) -> None:
    by_id = {r.run_id: r for r in records}
    ids = list(by_id)
    chosen = _state.ws().history_run_id
    run_id = _state.bind(
        st.selectbox,
        "Run",
        "history_run_id",
        key="h_run",
        value=chosen if chosen in ids else ids[0],
        options=ids,
        format_func=lambda i: history.run_label(by_id[i]),
    )
    record = by_id[run_id]
    job = engine.get_job(run_id)
    a, b = st.columns(2)
    if a.button("Open results", key="btn_history_open"):
        _jobs.attach(run_id, results=True)
        _state.go("results")
    can_resume = history.resumable(record) and (job is None or not job.active)
    if can_resume and b.button("Resume run", key="btn_history_resume", disabled=conn.endpoint is None):
        with st.spinner("Resuming…"):
            job = _jobs.continue_run(run_id, conn)
        _jobs.attach(job.id)
        _state.go("run")
    if can_resume:
        _connection.sending_caption(conn)
    if record.message:
        st.text(record.message)


def main() -> None:
    _state.through_the_app()
    st.title("History")
    records = _state.store().runs()
    if not records:
        st.info("No runs yet.")
        _state.page_link("data", "Upload a lead list to start", ":material/upload_file:")
        return
    frame = history.history_frame(records)
    for i, r in enumerate(records):  # a run going on in this process knows its status better than the store
        job = engine.get_job(r.run_id)
        if job is not None:
            frame.loc[i, "status"] = job.status
    st.dataframe(frame, hide_index=True)
    st.plotly_chart(charts.history_costs(history.history_chart_rows(records)), key="history_chart")
    st.subheader("Open or resume")
    actions(records, _connection.connection())


main()
