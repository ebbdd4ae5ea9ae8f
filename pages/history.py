"""History: past runs from the store, their cost over time; reopen results or resume an interrupted run."""

from __future__ import annotations

import streamlit as st

from lib import charts, engine
from lib.views import history
from pages import _shared


def actions(records, conn: _shared.Connection) -> None:
    by_id = {r.run_id: r for r in records}
    ids = list(by_id)
    if st.session_state.get("h_run") not in ids:
        st.session_state["h_run"] = ids[0]
    run_id = st.selectbox("Run", ids, key="h_run", format_func=lambda i: history.run_label(by_id[i]))
    record = by_id[run_id]
    job = engine.get_job(run_id)
    a, b = st.columns(2)
    if a.button("Open results", key="btn_history_open"):
        st.session_state["results_run_id"] = run_id
        st.switch_page(_shared.PAGES["results"])
    can_resume = history.resumable(record) and (job is None or not job.active)
    if can_resume and b.button("Resume run", key="btn_history_resume", disabled=conn.endpoint is None):
        with st.spinner("Resuming…"):
            job = _shared.resume_stored(run_id, conn)
        st.session_state["run_id"] = job.id
        st.switch_page(_shared.PAGES["run"], query_params={"run": job.id})
    if can_resume and conn.endpoint is None:
        st.caption("Resuming needs a key or the offline demo (sidebar).")
    if record.message:
        st.text(record.message)


def main() -> None:
    st.title("History")
    records = _shared.store().runs()
    if not records:
        st.info("No runs yet.")
        st.page_link(
            _shared.PAGES["data"], label="Upload a lead list to start", icon=":material/upload_file:"
        )
        return
    frame = history.history_frame(records)
    for i, r in enumerate(records):  # a run going on in this process knows its status better than the store
        job = engine.get_job(r.run_id)
        if job is not None:
            frame.loc[i, "status"] = job.status
    st.dataframe(frame, hide_index=True)
    st.plotly_chart(charts.history_costs(history.history_chart_rows(records)), key="history_chart")
    st.subheader("Open or resume")
    actions(records, _shared.connection())


main()
