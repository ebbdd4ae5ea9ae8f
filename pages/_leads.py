"""The workspace's lead table: its file read with the chosen options, plus the website columns once
they were read (from the reading's job while it is here, else from the store), cached per content."""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from lib import engine, web
from lib.leads import LeadFile, LeadFileError, read_leads
from lib.views import labels
from lib.web import step
from lib.workspace import Workspace
from pages import _state


@st.cache_resource(max_entries=8, show_spinner="Reading the file…")
def _read(digest: str, file_name: str, sheet: str | None, encoding: str | None, ragged: str) -> LeadFile:
    data = _state.workspaces().file_bytes(digest)
    if data is None:
        raise LeadFileError(
            f"The uploaded file {file_name} is no longer in the data folder: upload it again."
        )
    return read_leads(data, file_name, sheet=sheet, encoding=encoding, ragged=ragged)


def lead_file(w: Workspace | None = None) -> tuple[LeadFile | None, str | None]:
    """(the workspace's lead file as read with its options, None) or (None, why it can't be read)."""
    w = w or _state.ws()
    if w.lead is None:
        return None, None
    src = w.lead
    try:
        lead = _read(src.digest, src.file_name, src.sheet, src.encoding, src.ragged)
    except LeadFileError as exc:
        return None, str(exc)
    if w.websites.job_id:  # the websites were read: their two columns are part of the table
        lead = dataclasses.replace(lead, df=with_websites(w, lead.df))
    return lead, None


def need_leads() -> pd.DataFrame:
    """The lead table, or an empty state with a link to the Data page."""
    lead, error = lead_file()
    if lead is None:
        if error:
            st.error("The lead file can't be used as it is. See the Data page.")
        else:
            st.info("Upload a lead list first.")
        _state.page_link("data", "Go to Data", ":material/upload_file:")
        st.stop()
    if lead.df.empty:
        st.warning("The lead file has column names but no rows: there is nothing to send.")
        _state.page_link("data", "Go to Data", ":material/upload_file:")
        st.stop()
    return lead.df


def lead_digest() -> str:
    """What the table depends on now (file, read options, website columns): a key for caches of it."""
    w = _state.ws()
    src = w.lead
    if src is None:
        return ""
    return labels.digest(repr((src.digest, src.sheet, src.encoding, src.ragged, website_state(w))).encode())


# --- the website columns ----------------------------------------------------------------------------------


def web_job(w: Workspace) -> web.WebJob | None:
    """The reading of this workspace's websites, while this process has it."""
    job_id = w.websites.job_id
    job = engine.get_job(job_id) if job_id else None
    return job if isinstance(job, web.WebJob) else None


def web_settings(w: Workspace) -> web.WebSettings:
    return step.settings_for(w.websites.about_page, w.websites.allow_hosts)


def website_state(w: Workspace) -> tuple:
    """What the website columns of the table depend on now (for caches keyed by the table)."""
    job = web_job(w)
    return (w.websites.job_id, w.websites.url_column, job.snapshot().version if job is not None else None)


@st.cache_data(max_entries=4, show_spinner=False)
def _stored(digest: str, column: str, settings_repr: str, job_id: str, _cells, _settings) -> list[web.WebRow]:
    return web.stored_rows(_cells, _settings, _state.store())


def with_websites(w: Workspace, df: pd.DataFrame) -> pd.DataFrame:
    """The lead table with the website columns once they were read (from the job, or the store)."""
    s = w.websites
    if not s.job_id or not s.url_column or s.url_column not in df.columns:
        return df
    job = web_job(w)
    if job is not None:
        rows = job.rows()
    else:
        settings = web_settings(w)
        cells = step.cells_of(df, s.url_column)
        rows = _stored(w.lead.digest, s.url_column, repr(settings), s.job_id, cells, settings)
    return web.website_columns(df, rows)
