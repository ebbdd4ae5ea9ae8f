"""Lead Enrichment Studio: run one prompt over every row of a lead list.

Entry point and router: page config, the sidebar (key, endpoint, model), then the chosen page.
"""

from __future__ import annotations

import os

import streamlit as st

from lib.cost.pricing import PRICES_READ_ON, price_for
from lib.engine.client import load_dotenv_once
from lib.prompts.models import DEFAULT_MODEL
from lib.views import labels
from pages import _shared

# Widget keys whose values must survive visiting another page (Streamlit drops the state of widgets
# that were not drawn in a run; re-assigning a key keeps it).
PERSISTENT_PREFIXES = ("p_", "r_", "d_", "h_")


def keep_page_state() -> None:
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(PERSISTENT_PREFIXES):
            st.session_state[key] = st.session_state[key]


def init_session() -> None:
    load_dotenv_once()
    ss = st.session_state
    if "demo_mode" not in ss:
        ss["demo_mode"] = _shared.env_key()[0] is None  # no key anywhere: start in the offline demo
    ss.setdefault("base_url_input", os.environ.get("OPENAI_BASE_URL", ""))
    ss.setdefault("model", DEFAULT_MODEL)


def sidebar() -> None:
    with st.sidebar:
        st.subheader("Connection")
        st.toggle(
            "Offline demo (simulated answers)",
            key="demo_mode",
            help="Runs against a built-in local server that imitates the OpenAI API. No key, no cost.",
        )
        conn = _shared.connection()
        st.caption(_shared.key_status(conn))
        if not st.session_state["demo_mode"]:
            st.text_input(
                "OpenAI API key",
                key="api_key_input",
                type="password",
                placeholder="sk-… (kept in this browser session only)",
                help="Used for this browser session only: never saved, logged or put in the address bar.",
            )
            st.text_input(
                "API endpoint (base URL)",
                key="base_url_input",
                placeholder="https://api.openai.com/v1",
                help="Leave empty for OpenAI. Azure, Ollama or vLLM: their OpenAI-compatible URL.",
            )
        st.subheader("Model")
        st.selectbox(
            "Model",
            labels.model_choices(st.session_state.get("model")),
            key="model",
            format_func=labels.price_label,
            accept_new_options=True,
            help="Type a model name that is not listed (it will be unpriced).",
        )
        st.caption(f"Prices per 1M tokens, read on {PRICES_READ_ON}. Unknown models are shown as unpriced.")
        if price_for(st.session_state["model"]) is None:
            st.caption("Give this model a price (USD per 1M tokens) to see costs and use a budget:")
            a, b = st.columns(2)
            a.number_input("Input", min_value=0.0, step=0.05, format="%.3f", key="price_in")
            b.number_input("Output", min_value=0.0, step=0.05, format="%.3f", key="price_out")


def main() -> None:
    st.set_page_config(page_title="Lead Enrichment Studio", page_icon=":material/table_chart:", layout="wide")
    keep_page_state()
    init_session()
    pages = [
        st.Page(_shared.PAGES["data"], title="Data", icon=":material/upload_file:", default=True),
        st.Page(_shared.PAGES["prompt"], title="Prompt", icon=":material/edit_note:"),
        st.Page(_shared.PAGES["run"], title="Run", icon=":material/play_arrow:"),
        st.Page(_shared.PAGES["results"], title="Results", icon=":material/table_view:"),
        st.Page(_shared.PAGES["history"], title="History", icon=":material/history:"),
    ]
    page = st.navigation(pages)
    sidebar()
    page.run()


main()
