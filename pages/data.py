"""Data: upload a CSV/XLSX lead list, see what was detected, preview it and profile its columns."""

from __future__ import annotations

import streamlit as st

from lib.leads import LeadFile, LeadFileError, list_sheets, read_leads
from lib.views import labels, lead_view
from pages._shared import PAGES

RAGGED = {
    "reject": "Reject the file and tell me the line numbers",
    "skip": "Skip those rows and list them",
}


@st.cache_data(max_entries=8, show_spinner="Reading the file…")
def parse(file_hash: str, filename: str, sheet: str | None, ragged: str, _data: bytes) -> LeadFile:
    """read_leads, cached by the file's hash and the options (the bytes themselves are not hashed again)."""
    return read_leads(_data, filename, sheet=sheet, ragged=ragged)


@st.cache_data(max_entries=8, show_spinner=False)
def sheets_of(file_hash: str, _data: bytes) -> list[str]:
    return list_sheets(_data)


def upload_options(name: str, data: bytes, file_hash: str) -> tuple[str | None, str]:
    """Sheet picker (XLSX) and the ragged-rows choice."""
    sheet = None
    if name.lower().endswith((".xlsx", ".xlsm")):
        try:
            names = sheets_of(file_hash, data)
        except LeadFileError:
            names = []
        if len(names) > 1:
            sheet = st.selectbox("Sheet", names, key="d_sheet", help="Which worksheet holds the leads.")
    ragged = st.radio(
        "Rows with too many or too few cells",
        list(RAGGED),
        format_func=RAGGED.get,
        key="d_ragged",
        horizontal=True,
    )
    return sheet, ragged


def load_upload() -> None:
    uploaded = st.file_uploader(
        "Lead list (CSV, TSV or XLSX)", type=["csv", "tsv", "txt", "xlsx", "xlsm"], key="upload"
    )
    if uploaded is None:
        return
    data = uploaded.getvalue()
    file_hash = labels.digest(data)
    sheet, ragged = upload_options(uploaded.name, data, file_hash)
    try:
        lead = parse(file_hash, uploaded.name, sheet, ragged, data)
    except LeadFileError as exc:
        st.error("This file can't be used as it is:", icon=":material/error:")
        st.text(str(exc))
        if exc.rejected:
            st.dataframe(
                [{"line": r.line, "reason": r.reason, "text": r.text} for r in exc.rejected[:200]],
                hide_index=True,
            )
            st.caption('Choose "Skip those rows" above to read the file without them.')
        return
    key = (file_hash, sheet, ragged)
    if st.session_state.get("lead_key") != key:
        st.session_state.update(
            lead_key=key,
            lead_df=lead.df,
            lead_name=uploaded.name,
            lead_info=lead,
            lead_digest=labels.digest(repr(key).encode()),
        )
        st.session_state.pop("sample_result", None)


def show_detected(lead: LeadFile) -> None:
    st.subheader("What was detected")
    st.text("\n".join(lead_view.detected_facts(lead)))
    if lead.rejected:
        st.caption("Rows left out (they are not in the table):")
        st.dataframe(lead_view.rejected_frame(lead), hide_index=True)


def main() -> None:
    st.title("Data")
    st.caption("Upload the lead list to enrich. Every cell is read as text, exactly as in the file.")
    load_upload()
    df = st.session_state.get("lead_df")
    if df is None:
        st.info("Upload a lead list to begin: a CSV export from your CRM or an Excel file.")
        return
    st.success("Lead table ready.", icon=":material/check_circle:")
    st.text(f"{st.session_state.get('lead_name', 'Table')}: {len(df):,} rows, {df.shape[1]:,} columns")
    lead = st.session_state.get("lead_info")
    if lead is not None:
        show_detected(lead)
    st.subheader("Preview")
    st.dataframe(df.head(500))
    if len(df) > 500:
        st.caption(f"Showing the first 500 of {len(df):,} rows.")
    st.subheader("Columns")
    st.dataframe(
        lead_view.column_profile(df),
        hide_index=True,
        column_config={"filled %": st.column_config.ProgressColumn("filled %", min_value=0, max_value=100)},
    )
    st.page_link(PAGES["prompt"], label="Next: write the prompt", icon=":material/arrow_forward:")


main()
