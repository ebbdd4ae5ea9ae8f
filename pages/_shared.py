"""Streamlit glue the pages share: the store, the workspace named in the URL, widgets bound to it, the
connection of this browser session, the lead table, the attached run.

The truth lives in the workspace (lib/workspace.py), saved on every change and addressed by `?ws=ID`.
Widgets are views: `bind()` sets a widget's value from the workspace before it is drawn and writes back
in its on_change callback, because Streamlit drops the state of any widget it did not draw in a run.
Session state holds only the workspace id and a typed key (never stored, logged or put in the URL).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from lib import batch, engine
from lib.cost.pricing import Price, price_for
from lib.engine import Job, resume, runs
from lib.engine.client import Connection, choose_connection
from lib.leads import LeadFile, LeadFileError, read_leads
from lib.sim import SimConfig, SimServer
from lib.store import Store, StoreError
from lib.views import labels, live_table
from lib.workspace import Workspace, Workspaces

PAGES = {
    "data": "pages/data.py",
    "prompt": "pages/prompt.py",
    "run": "pages/run.py",
    "results": "pages/results.py",
    "history": "pages/history.py",
}
WS_PARAM = "ws"
TYPED_KEY = "typed_key"  # session state only: the key this browser session typed
_WS_CACHE = "_ws_loaded"  # this run's copy of the workspace (the store holds the truth)


# --- routing ------------------------------------------------------------------------------------------


ROUTED = "_routed_by_app"  # set by app.py just before it runs the page: this run went through the router


def through_the_app() -> None:
    """Make sure this page runs under app.py's router, not alone.

    Streamlit decides once per process, on its first session, that an app with a pages/ folder is an
    old-style multipage app, and then runs a page file alone for a URL like /run, skipping app.py (its
    sidebar, its navigation, the workspace in the URL) until some session calls st.navigation. After a
    server restart the first visitor's reload would meet exactly that. Switch it off and run again.

    Whether this run came through app.py is asked of this session, not read from Streamlit's flag: after a
    restart two sessions arrive at once (a tab reconnecting, a page opened), and the one that switched the
    flag off first left the other running its page alone, without the sidebar."""
    if not st.session_state.pop(ROUTED, False):
        PagesManager.uses_pages_directory = False
        st.rerun()


# --- process-wide objects ------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def store() -> Store:
    """The run journal for the configured data dir; a clear error and stop if it cannot be opened."""
    path = str(labels.data_dir().resolve())
    try:
        return _store(path)
    except StoreError as exc:
        st.error(labels.md_escape(exc))
        st.stop()


def workspaces() -> Workspaces:
    return Workspaces(store())


@st.cache_resource(show_spinner="Starting the offline demo server…")
def demo_server() -> SimServer:
    """The built-in OpenAI-compatible local server, one per process."""
    return SimServer(
        SimConfig(latency_ms=300, latency_dist="lognormal", latency_p99_ms=1500, prompt_sensitive=True)
    ).start()


# --- the workspace ----------------------------------------------------------------------------------


def open_workspace() -> Workspace:
    """The workspace named in the URL (or this session's, or a new one); keeps its id in the URL."""
    ss = st.session_state
    spaces = workspaces()
    wanted = st.query_params.get(WS_PARAM)
    ws = spaces.load(wanted) if wanted else None
    if wanted and ws is None and ss.get("ws_id") != wanted:
        ss["flash"] = (
            "That workspace link is not known here (deleted, or from another data folder): a new one was started."
        )
    if ws is None and ss.get("ws_id"):
        ws = spaces.load(ss["ws_id"])
    if ws is None:
        ws = spaces.create()
        legacy_run = st.query_params.get("run")  # an old ?run= link: attach that run
        if legacy_run and (engine.get_job(legacy_run) is not None or store().has_run(legacy_run)):
            ws.run_id = legacy_run
            spaces.save(ws)
    ss["ws_id"] = ws.id
    ss[_WS_CACHE] = ws
    return ws


def keep_in_url() -> None:
    """Put the workspace id in the address bar on every run. Set even when the server's copy already has
    it: a page's first run can leave the browser's address without it while the server thinks it is there."""
    ws_id = st.session_state.get("ws_id")
    if ws_id:
        st.query_params[WS_PARAM] = ws_id


def ws() -> Workspace:
    """This session's workspace as loaded at the start of this run (or by the last update)."""
    ss = st.session_state
    cached = ss.get(_WS_CACHE)
    if cached is not None and cached.id == ss.get("ws_id"):
        return cached
    found = workspaces().load(ss.get("ws_id")) if ss.get("ws_id") else None
    if found is None:
        return open_workspace()
    ss[_WS_CACHE] = found
    return found


def update(change: Callable[[Workspace], Any]) -> Workspace:
    """Load the workspace fresh (another tab may have changed it), change it and save it at once."""
    ss = st.session_state
    w = workspaces().load(ss.get("ws_id")) or ws()
    change(w)
    workspaces().save(w)
    ss[_WS_CACHE] = w
    return w


def switch_to(workspace_id: str) -> None:
    """Callback: open another workspace in this tab."""
    ss = st.session_state
    ss["ws_id"] = workspace_id
    ss.pop(_WS_CACHE, None)
    ss.pop("upload", None)  # the uploader's chip belongs to the workspace being left
    st.query_params[WS_PARAM] = workspace_id  # the URL names the workspace this tab shows


def _get(w: Workspace, path: str) -> Any:
    obj: Any = w
    for part in path.split("."):
        obj = getattr(obj, part) if obj is not None else None
    return obj


def _write_back(key: str, path: str, convert: Callable[[Any], Any] | None) -> None:
    value = st.session_state.get(key)
    if convert is not None:
        value = convert(value)
    part, _, name = path.rpartition(".")

    def change(w: Workspace) -> None:
        if part == "settings":
            w.set_setting(name, value)
        elif part == "draft":
            w.set_draft_field(name, value)
        else:
            setattr(_get(w, part) if part else w, name, value)

    update(change)


def bind(
    widget: Callable,
    label: str,
    path: str,
    *,
    key: str,
    value: Any = None,
    convert: Callable[[Any], Any] | None = None,
    steady: bool = False,
    **kwargs,
):
    """Draw `widget` (st.text_input, col.number_input…) as a view of the workspace field `path`
    ('settings.workers', 'draft.template'); `value` overrides what is shown (a derived value).

    `steady`: for a widget in a fragment that redraws on a timer, set its value only when it is not on
    screen yet. Setting it on every redraw could land between a click and the rerun the click asks for,
    so the switch showed the click while the workspace kept the old value."""
    shown = _get(ws(), path) if value is None else value
    if steady:
        st.session_state.setdefault(key, shown)
    else:
        st.session_state[key] = shown
    return widget(label, key=key, on_change=_write_back, args=(key, path, convert), **kwargs)


def say(text: str, place: str = "flash", *, ok: bool = False) -> None:
    """Leave a message for the next draw of `place` (callbacks and actions that rerun cannot draw it)."""
    st.session_state[place] = (text, ok)


def flash(place: str = "flash") -> None:
    """The message left for `place`, drawn where the page calls this (the app calls it at the top)."""
    message = st.session_state.pop(place, None)
    if not message:
        return
    text, ok = message if isinstance(message, tuple) else (message, False)
    if ok:
        st.success(labels.md_escape(text), icon=":material/check:")
    else:
        st.warning(labels.md_escape(text), icon=":material/info:")


def page_link(page: str, label: str, icon: str) -> None:
    st.page_link(PAGES[page], label=label, icon=icon, query_params={WS_PARAM: st.session_state["ws_id"]})


def go(page: str) -> None:
    st.switch_page(PAGES[page], query_params={WS_PARAM: st.session_state["ws_id"]})


# --- the connection ---------------------------------------------------------------------------------


def _secret_key() -> str | None:
    try:  # with no secrets file, touching st.secrets raises
        value = st.secrets.get("OPENAI_API_KEY")
    except Exception:
        return None
    return str(value).strip() if value else None


def env_has_key() -> bool:
    return bool((os.environ.get("OPENAI_API_KEY") or "").strip() or _secret_key())


def demo_mode(w: Workspace | None = None) -> bool:
    w = w or ws()
    return (not env_has_key()) if w.connection.demo is None else w.connection.demo


def connection() -> Connection:
    """Where requests go for this session now: exactly what the sidebar shows."""
    w = ws()
    demo = demo_mode(w)
    return choose_connection(
        demo=demo,
        demo_url=demo_server().url if demo else None,
        typed_key=st.session_state.get(TYPED_KEY),
        typed_base_url=w.connection.base_url,
        env=os.environ,
        secret_key=_secret_key(),
    )


def key_status(conn: Connection) -> str:
    if conn.demo:
        return "Offline demo: answers are simulated by the built-in local server."
    if conn.endpoint is None:
        return labels.md_escape(
            conn.why_none
            or "No API key. Type one below, add OPENAI_API_KEY to .env, or use the offline demo."
        )
    return sending_markdown(conn)


def sending_markdown(conn: Connection) -> str:
    """The sending line as Markdown: escaped, the URL as code so it is not turned into a link."""
    text = labels.md_escape(conn.sending_line())
    if conn.url:
        text = text.replace(labels.md_escape(conn.url), "`" + conn.url.replace("`", "") + "`")
    return text


def sending_caption(conn: Connection) -> None:
    st.caption(sending_markdown(conn))


# --- the lead table ---------------------------------------------------------------------------------


@st.cache_resource(max_entries=8, show_spinner="Reading the file…")
def _read(digest: str, file_name: str, sheet: str | None, encoding: str | None, ragged: str) -> LeadFile:
    data = workspaces().file_bytes(digest)
    if data is None:
        raise LeadFileError(
            f"The uploaded file {file_name} is no longer in the data folder: upload it again."
        )
    return read_leads(data, file_name, sheet=sheet, encoding=encoding, ragged=ragged)


def lead_file(w: Workspace | None = None) -> tuple[LeadFile | None, str | None]:
    """(the workspace's lead file as read with its options, None) or (None, why it can't be read)."""
    w = w or ws()
    if w.lead is None:
        return None, None
    src = w.lead
    try:
        lead = _read(src.digest, src.file_name, src.sheet, src.encoding, src.ragged)
    except LeadFileError as exc:
        return None, str(exc)
    if w.websites.job_id:  # the websites were read: their two columns are part of the table
        from pages import _websites

        lead = dataclasses.replace(lead, df=_websites.table(w, lead.df))
    return lead, None


def need_leads() -> pd.DataFrame:
    """The lead table, or an empty state with a link to the Data page."""
    lead, error = lead_file()
    if lead is None:
        if error:
            st.error("The lead file can't be used as it is. See the Data page.")
        else:
            st.info("Upload a lead list first.")
        page_link("data", "Go to Data", ":material/upload_file:")
        st.stop()
    if lead.df.empty:
        st.warning("The lead file has column names but no rows: there is nothing to send.")
        page_link("data", "Go to Data", ":material/upload_file:")
        st.stop()
    return lead.df


def lead_name() -> str | None:
    w = ws()
    return w.lead.file_name if w.lead else None


# --- the prompt and the run ---------------------------------------------------------------------------


def run_spec():
    """The draft as a PromptSpec fitted to the file (the workspace's mapping); ValueError when it can't work."""
    from lib.workbench import tries

    w = ws()
    return tries.variant_spec(w.draft, tries.RunContext(mapping=dict(w.mapping)))


def need_spec():
    """The prompt as a PromptSpec fitted to the file, or an empty state / error and stop."""
    d = ws().draft
    if d is None or not d.template.strip():
        st.info("Write or choose a prompt first.")
        page_link("prompt", "Go to Prompt", ":material/edit_note:")
        st.stop()
    try:
        return run_spec()
    except ValueError as exc:
        st.error(f"The prompt can't be used yet: {labels.md_escape(exc)}")
        page_link("prompt", "Fix it on the Prompt page", ":material/edit_note:")
        st.stop()


def prompt_library():
    from lib.prompts.library import PromptLibrary

    return PromptLibrary(labels.prompts_dir())


def prompt_versions(name: str | None) -> list:
    """The saved versions of a library prompt, newest first ([] for a blank or unknown prompt)."""
    from lib.prompts.library import PromptLibraryError

    if not name:
        return []
    try:
        return prompt_library().versions(name)
    except PromptLibraryError:
        return []


def saved_version(name: str | None, version: int | None):
    """The library's text of `name` at `version`, or None (a blank prompt, a deleted one)."""
    from lib.prompts.library import PromptLibraryError

    if not name or not version:
        return None
    try:
        return prompt_library().load_version(name, int(version))
    except PromptLibraryError:
        return None


def prompt_identity(w: Workspace | None = None, draft=None) -> dict:
    """What a run records of its prompt (the workspace's draft, or `draft`, as a workbench column holds
    it): name, version, edited since saved and a hash; and the workspace's column mapping."""
    from lib.prompts import identity

    w = w or ws()
    draft = draft or w.draft
    if draft is None:
        return {}
    try:
        spec = draft.spec()
    except ValueError:
        return {}
    found = identity.identity(spec, saved_version(w.prompt_source, draft.version))
    if w.mapping:
        found["prompt_mapping"] = dict(w.mapping)
    return found


def run_meta(conn: Connection, draft=None, **extra) -> dict:
    """The run's meta: the file, whether it is the demo, how the file was read, the exact prompt."""
    lead, _ = lead_file()
    w = ws()
    encoding = {
        "input_encoding": lead.encoding if lead is not None else None,
        "input_encoding_chosen": bool(w.lead and w.lead.encoding),
    }
    return {"input_name": lead_name(), "demo": conn.demo, **encoding, **prompt_identity(w, draft), **extra}


def run_settings(w: Workspace, workers: int | None = None) -> engine.RunSettings:
    s = w.settings
    return engine.RunSettings(
        workers=int(workers or s.workers),
        rpm=s.rpm,
        tpm=s.tpm,
        budget_usd=s.budget_usd,
        give_up_after_s=s.give_up_after_s,
        service_tier=s.service_tier,
        flex_fallback=s.flex_fallback,
        flex_patience_s=s.flex_patience_s,
    )


def model() -> str:
    return ws().effective_model()


def custom_price(model_name: str) -> Price | None:
    """The price set in the sidebar for a model the price table does not know: priced as a known model,
    or typed in."""
    if price_for(model_name) is not None:
        return None
    s = ws().settings
    if s.price_aliases.get(model_name):
        return price_for(model_name, aliases=s.price_aliases)
    if not s.price_input and not s.price_output:
        return None
    return Price(float(s.price_input or 0), float(s.price_input or 0), float(s.price_output or 0))


def attached_job() -> Job | None:
    run_id = ws().run_id
    return engine.get_job(run_id) if run_id else None


def attach(run_id: str | None, *, results: bool = False) -> None:
    def change(w: Workspace) -> None:
        if results:
            w.results_run_id = run_id
        else:
            w.run_id = run_id
            w.results_run_id = None

    update(change)


def start_job(plan, conn: Connection, settings: engine.RunSettings) -> Job:
    """Start (or re-attach to) a run in this process; workers never touch Streamlit."""
    return engine.start(plan, endpoint=conn.endpoint, settings=settings, store=store())


def batch_settings(conn: Connection) -> batch.BatchSettings:
    """Batch polling: every few seconds against the offline demo, every 30 s at most against OpenAI."""
    return batch.BatchSettings(poll_interval_s=2.0 if conn.demo else 30.0)


def continue_run(
    run_id: str, conn: Connection, *, retry_failed: bool = False, budget_usd: float | None = None
):
    """Resume a run, or re-send its failed rows, on the connection shown now (lib.engine.resume)."""
    return resume.continue_run(
        store(),
        run_id,
        conn.endpoint,
        retry_failed=retry_failed,
        budget_usd=budget_usd,
        batch_settings=batch_settings(conn),
    )


def stored_settings(run_id: str) -> engine.RunSettings:
    return resume.stored_settings(store(), run_id)


def results_of(run_id: str) -> tuple[pd.DataFrame, dict, dict[int, dict[str, str]]]:
    """(results table with edits, run meta, edits) from the live job if here, else from the store."""
    job = engine.get_job(run_id)
    if job is not None:
        edits = job.edits()
        frame = runs.reviewed_results(store(), run_id, job.plan.inputs, job.rows(), job.plan.meta, edits)
        return frame, dict(job.plan.meta), edits
    s = store()
    return runs.stored_results(s, run_id), s.run(run_id).meta, s.edits(run_id)


def save_edits(run_id: str, edits: dict[int, dict[str, str]]) -> None:
    job = engine.get_job(run_id)
    if job is not None:
        job.set_edits(edits)
    else:
        store().save_edits(run_id, edits)


def simulated_note(meta: dict) -> None:
    if meta.get("demo"):
        st.warning(labels.SIMULATED_NOTE, icon=":material/science:")


def lead_digest() -> str:
    w = ws()
    src = w.lead
    if src is None:
        return ""
    from pages import _websites

    return labels.digest(repr((src.digest, src.sheet, src.encoding, src.ragged, _websites.state(w))).encode())


@st.cache_data(max_entries=32, show_spinner="Counting tokens…")
def _quote(table_digest: str, spec_yaml: str, option_values: tuple, sample: tuple[int, ...], _df, _spec):
    from lib.views import prompt_draft

    model_name, max_tokens, temperature, empty, price = option_values
    options = runs.RunOptions(
        model=model_name, max_tokens=max_tokens, temperature=temperature, empty=empty, price=price
    )
    return prompt_draft.quote_table(_df, _spec, options, sample)


def quote(df: pd.DataFrame, spec, options: runs.RunOptions, sample: tuple[int, ...] = ()):
    """The cost quote for the whole table, cached by table, prompt, options and sample."""
    from lib.prompts.library import dump_spec

    values = (options.model, options.max_tokens, options.temperature, options.empty, options.price)
    return _quote(lead_digest(), dump_spec(spec), values, tuple(sample), df, spec)


# --- grids with the answers in view ------------------------------------------------------------------


def grid_layout(frame: pd.DataFrame, outputs: list[str]) -> tuple[list[str], dict]:
    """(column order, column config): identifying columns pinned, then the answers, then the rest."""
    columns = [str(c) for c in frame.columns]
    ids = live_table.id_columns(columns, ws().settings.id_columns)
    order = [c for c in live_table.column_order(columns, outputs, ids) if c != "enrich_row_id"]
    pin_answers = len(ids) + len(outputs) <= 4
    config: dict = {"_index": st.column_config.NumberColumn("row", disabled=True, pinned=True, width="small")}
    for c in ids:
        config[c] = st.column_config.TextColumn(c, pinned=True)
    for c in outputs:
        if c in columns:
            config[c] = st.column_config.TextColumn(c, width="large", pinned=pin_answers)
    return order, config


def row_detail(frame: pd.DataFrame, outputs: list[str], key: str) -> None:
    """One row in full (long answers are cut in the grid), as plain text."""
    if frame.empty:
        return
    with st.expander("Read one row in full", icon=":material/article:"):
        ids = [int(i) for i in frame.index]
        row_id = st.number_input("Row", min_value=min(ids), max_value=max(ids), value=ids[0], step=1, key=key)
        if row_id not in frame.index:
            st.caption(f"Row {row_id} is not in this table (filtered out or never read).")
            return
        row = frame.loc[row_id]
        for c in [*outputs, *[c for c in frame.columns if c not in outputs]]:
            value = row[c]
            if isinstance(value, str) and value:
                st.caption(c)
                st.text(value)  # plain text: lead text and answers are never rendered as HTML or Markdown


def id_column_picker(columns: list[str]) -> None:
    """Which columns identify a lead in the grids (kept in the workspace)."""
    w = ws()
    current = live_table.id_columns(columns, w.settings.id_columns)
    st.session_state["w_id_columns"] = current

    def write() -> None:
        chosen = list(st.session_state.get("w_id_columns") or [])
        update(lambda w: w.set_setting("id_columns", chosen))

    st.multiselect(
        "Columns shown before the answers",
        columns,
        key="w_id_columns",
        on_change=write,
        max_selections=live_table.MAX_ID_COLUMNS,
        help="They stay pinned on the left of every grid, so you can tell which lead an answer is for.",
    )


def quote_metrics(q) -> None:
    """The quote's figures, two to a row so no value is cut off."""
    from lib.views import prompt_draft

    items = list(prompt_draft.quote_lines(q).items())
    for i in range(0, len(items), 2):
        cols = st.columns(2)
        for col, (label, value) in zip(cols, items[i : i + 2], strict=False):
            col.metric(label, value)


def sample_tokens() -> tuple[int, ...]:
    """Completion tokens of the workspace's sample answers (the quote's output estimate uses them)."""
    run_id = ws().sample_run_id
    if not run_id:
        return ()
    job = engine.get_job(run_id)
    try:
        rows = job.rows() if job is not None else store().rows(run_id)
    except (KeyError, StoreError):
        return ()
    return tuple(r.usage.completion_tokens for r in rows if r.status == "succeeded")
