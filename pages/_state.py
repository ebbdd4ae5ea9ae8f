"""The app's state as pages reach it: the store, the workspace named in the URL, widgets bound to it,
messages left for the next draw, links between pages, and the router check every page starts with.

The truth lives in the workspace (lib/workspace.py), saved on every change and addressed by `?ws=ID`.
Widgets are views: `bind()` sets a widget's value from the workspace before it is drawn and writes back
in its on_change callback, because Streamlit drops the state of any widget it did not draw in a run.
Session state holds only the workspace id and a typed key (pages/_connection.py), never the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from lib import engine
from lib.store import Store, StoreError
from lib.views import labels
from lib.workspace import Workspace, Workspaces

PAGES = {
    "data": "pages/data.py",
    "prompt": "pages/prompt.py",
    "run": "pages/run.py",
    "results": "pages/results.py",
    "history": "pages/history.py",
}
WS_PARAM = "ws"
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


def page_link(page: str, label: str, icon: str) -> None:
    st.page_link(PAGES[page], label=label, icon=icon, query_params={WS_PARAM: st.session_state["ws_id"]})


def go(page: str) -> None:
    st.switch_page(PAGES[page], query_params={WS_PARAM: st.session_state["ws_id"]})


# --- the store ------------------------------------------------------------------------------------------


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
    moved = (
        ws.follow_current_default()
    )  # an earlier release's default that is shutting down: said, not silent
    if moved:
        spaces.save(ws)
        ss["flash"] = moved
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


def _write_back(key: str, path: str, convert: Callable[[Any], Any] | None) -> None:
    value = st.session_state.get(key)
    if convert is not None:
        value = convert(value)
    update(lambda w: w.set_path(path, value))


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
    shown = ws().get_path(path) if value is None else value
    if steady:
        st.session_state.setdefault(key, shown)
    else:
        st.session_state[key] = shown
    return widget(label, key=key, on_change=_write_back, args=(key, path, convert), **kwargs)


# --- messages ------------------------------------------------------------------------------------------


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
