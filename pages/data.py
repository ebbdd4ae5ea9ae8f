"""Data: upload a CSV/XLSX lead list, see what was detected, preview it and profile its columns."""

from __future__ import annotations

import streamlit as st

from lib.leads import LeadFileError, list_sheets, read_leads
from lib.store import StoreError
from lib.views import labels, lead_view
from lib.workspace import LeadSource
from pages import _leads, _state, _websites

RAGGED = {
    "reject": "Reject the file and tell me the line numbers",
    "skip": "Skip those rows and list them",
}
FIRST_TABLE = "(first sheet with a table)"


@st.cache_data(max_entries=8, show_spinner=False)
def sheets_of(digest: str, _data: bytes) -> list[str]:
    return list_sheets(_data)


def on_upload() -> None:
    """A new file replaces the workspace's file; read options start afresh for it."""
    uploaded = st.session_state.get("upload")
    if uploaded is None:
        return  # the uploader was cleared: the workspace keeps its file (Remove it with the button)
    data = uploaded.getvalue()
    try:
        digest = _state.workspaces().put_file(data)
    except StoreError as exc:
        st.session_state["flash"] = str(exc)
        return
    source = LeadSource(file_name=uploaded.name, digest=digest, size=len(data))
    _state.update(lambda w: w.set_lead(source))


def remove_file() -> None:
    _state.update(lambda w: setattr(w, "lead", None))


def set_sheet() -> None:
    value = st.session_state.get("d_sheet")
    sheet = None if value in (None, FIRST_TABLE) else value
    _state.update(lambda w: setattr(w.lead, "sheet", sheet))


def read_options(src: LeadSource, data: bytes | None) -> None:
    """Sheet picker (XLSX) and the ragged-rows choice, as views of the workspace's read options."""
    if data is not None and src.file_name.lower().endswith((".xlsx", ".xlsm")):
        try:
            names = sheets_of(src.digest, data)
        except LeadFileError:
            names = []
        if len(names) > 1:
            options = [FIRST_TABLE, *names]
            st.session_state["d_sheet"] = src.sheet if src.sheet in names else FIRST_TABLE
            st.selectbox(
                "Sheet", options, key="d_sheet", on_change=set_sheet, help="Which worksheet holds the leads."
            )
    _state.bind(
        st.radio,
        "Rows with too many or too few cells",
        "lead.ragged",
        key="d_ragged",
        options=list(RAGGED),
        format_func=RAGGED.get,
        horizontal=True,
    )


def set_encoding(detected: str | None) -> None:
    """The encoding picked on the page; the detected one is stored as None (detect again next time)."""
    value = st.session_state.get("d_encoding")
    _state.update(lambda w: setattr(w.lead, "encoding", None if value == detected else value))


def use_detected_encoding() -> None:
    _state.update(lambda w: setattr(w.lead, "encoding", None))


def encoding_choice(lead, src: LeadSource) -> None:
    """CSV only: the encoding read, the others that give other text, and the cells they change."""
    options = lead_view.encoding_options(lead)
    if lead.sheet is not None or lead.encoding is None or (len(options) < 2 and src.encoding is None):
        return
    if lead.encoding_uncertain and src.encoding is None:
        st.warning(
            "The file's encoding is not certain: check the cells below and choose the encoding under "
            "which they read right.",
            icon=":material/translate:",
        )
    st.session_state["d_encoding"] = lead.encoding
    st.selectbox(
        "Encoding",
        options,
        key="d_encoding",
        format_func=lambda name: lead_view.encoding_label(name, lead.detected_encoding),
        on_change=set_encoding,
        args=(lead.detected_encoding,),
        help="How the file's bytes become letters. Excel on Windows saves cp1252, Excel for Mac Mac Roman.",
    )
    preview = lead_view.encoding_preview(lead)
    if not preview.empty:
        st.caption("The cells that read differently under each encoding (line in the file, then the text):")
        st.dataframe(preview, hide_index=True)


def show_error(message: str, data: bytes | None, src: LeadSource) -> None:
    st.error(f"{labels.md_escape(src.file_name)} can't be used as it is:", icon=":material/error:")
    st.text(message)
    if src.encoding:
        st.button(
            f"Read it with the detected encoding instead of {src.encoding}",
            key="btn_detected_encoding",
            on_click=use_detected_encoding,
        )
    if data is None:
        return
    try:  # what exactly broke, for a ragged file: the lines, and the way out
        read_leads(data, src.file_name, sheet=src.sheet, encoding=src.encoding, ragged="reject")
    except LeadFileError as exc:
        if exc.rejected:
            st.dataframe(
                [{"line": r.line, "reason": r.reason, "text": r.text} for r in exc.rejected[:200]],
                hide_index=True,
            )
            if src.ragged == "reject":
                st.caption('Choose "Skip those rows" above to read the file without them.')


def show_detected(lead) -> None:
    st.subheader("What was detected")
    st.text("\n".join(lead_view.detected_facts(lead)))
    if lead.rejected:
        st.caption("Rows left out (they are not in the table):")
        st.dataframe(lead_view.rejected_frame(lead), hide_index=True)
    if lead.set_aside:
        st.caption("Lines set aside: report titles, totals and notices, which are not leads:")
        st.dataframe(lead_view.set_aside_frame(lead), hide_index=True)


def main() -> None:
    _state.through_the_app()
    st.title("Data")
    st.caption("Upload the lead list to enrich. Every cell is read as text, exactly as in the file.")
    w = _state.ws()
    st.file_uploader(
        "Lead list (CSV, TSV or XLSX)" if w.lead is None else "Replace the lead list",
        type=["csv", "tsv", "txt", "xlsx", "xlsm"],
        key="upload",
        on_change=on_upload,
    )
    w = _state.ws()
    src = w.lead
    if src is None:
        st.info("Upload a lead list to begin: a CSV export from your CRM or an Excel file.")
        return
    data = _state.workspaces().file_bytes(src.digest)
    head, button = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**File:** {labels.md_escape(src.file_name)} ({labels.size(src.size)})")
    button.button("Remove file", key="btn_remove_file", on_click=remove_file)
    read_options(src, data)
    lead, error = _leads.lead_file(w)
    if lead is None:
        show_error(error or "The file could not be read.", data, src)
        return
    encoding_choice(lead, src)
    df = lead.df
    if df.empty:
        st.warning(
            f"{labels.md_escape(src.file_name)} has column names but no rows: there is nothing to enrich.",
            icon=":material/warning:",
        )
    else:
        st.success("Lead table ready.", icon=":material/check_circle:")
    show_detected(lead)
    if not df.empty:
        _websites.section(df)
    st.subheader("Preview")
    st.dataframe(df.head(500))
    if len(df) > 500:
        st.caption(f"Showing the first 500 of {len(df):,} rows.")
    st.subheader("Columns")
    st.dataframe(
        lead_view.column_profile(df),
        hide_index=True,
        column_config={
            "filled": st.column_config.ProgressColumn(
                "filled", min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )
    if not df.empty:
        _state.page_link("prompt", "Next: write the prompt", ":material/arrow_forward:")


main()
