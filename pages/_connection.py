"""Where this browser session's requests go: the demo server, a key typed in this session, or the
environment's; and the line that says so beside every action.

A typed key lives in session state only (TYPED_KEY): never in the workspace, the URL, a log or
os.environ. The runs started with it hold it in their client until they are forgotten
(lib.engine.client.release_client).
"""

from __future__ import annotations

import os

import streamlit as st

from lib.engine.client import Connection, choose_connection
from lib.sim import SimConfig, SimServer
from lib.views import connection_text
from lib.workspace import Workspace
from pages import _state

TYPED_KEY = "typed_key"  # session state only: the key this browser session typed


@st.cache_resource(show_spinner="Starting the offline demo server…")
def demo_server() -> SimServer:
    """The built-in OpenAI-compatible local server, one per process."""
    return SimServer(
        SimConfig(latency_ms=300, latency_dist="lognormal", latency_p99_ms=1500, prompt_sensitive=True)
    ).start()


def _secret_key() -> str | None:
    try:  # with no secrets file, touching st.secrets raises
        value = st.secrets.get("OPENAI_API_KEY")
    except Exception:
        return None
    return str(value).strip() if value else None


def env_has_key() -> bool:
    return bool((os.environ.get("OPENAI_API_KEY") or "").strip() or _secret_key())


def demo_mode(w: Workspace | None = None) -> bool:
    w = w or _state.ws()
    return connection_text.demo_mode(w.connection.demo, env_has_key())


def connection() -> Connection:
    """Where requests go for this session now: exactly what the sidebar shows."""
    w = _state.ws()
    demo = demo_mode(w)
    return choose_connection(
        demo=demo,
        demo_url=demo_server().url if demo else None,
        typed_key=st.session_state.get(TYPED_KEY),
        typed_base_url=w.connection.base_url,
        env=os.environ,
        secret_key=_secret_key(),
    )


def sending_caption(conn: Connection) -> None:
    st.caption(connection_text.sending_markdown(conn))
