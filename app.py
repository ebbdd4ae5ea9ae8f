"""Lead Enrichment Studio: run one prompt over every row of a lead list.

Entry point and router: page config, the workspace named in the URL, the sidebar (connection, model,
recent workspaces), then the chosen page. Every value shown here is a view of the workspace, except the
typed key, which stays in this browser session.
"""

from __future__ import annotations

import streamlit as st

from lib import models
from lib.cost.pricing import PRICES_READ_ON, price_for
from lib.envfile import load_dotenv_files
from lib.views import connection_text, labels, model_view
from pages import _connection, _state


def remember_key() -> None:
    """on_change of the key box: the typed key lives in this session only (never stored or logged)."""
    st.session_state[_connection.TYPED_KEY] = (st.session_state.get("api_key_input") or "").strip()


def forget_key() -> None:
    st.session_state.pop(_connection.TYPED_KEY, None)
    st.session_state["api_key_input"] = ""


def set_demo() -> None:
    value = bool(st.session_state.get("demo_mode"))
    _state.update(lambda w: setattr(w.connection, "demo", value))


def connection_box() -> None:
    w = _state.ws()
    st.subheader("Connection")
    st.session_state["demo_mode"] = _connection.demo_mode(w)
    st.toggle(
        "Offline demo (simulated answers)",
        key="demo_mode",
        on_change=set_demo,
        help="Runs against a built-in local server that imitates the OpenAI API. No key, no cost.",
    )
    if not st.session_state["demo_mode"]:
        # The box is never filled from the server side: the key is not sent back to the browser. The key
        # in use is the one kept for this session (TYPED_KEY), which the status line names, masked.
        st.text_input(
            "OpenAI API key",
            key="api_key_input",
            type="password",
            on_change=remember_key,
            placeholder="sk-… (kept in this browser session only)",
            help="Used for this browser session only: never saved, logged or put in the address bar.",
        )
        _state.bind(
            st.text_input,
            "API endpoint (base URL)",
            "connection.base_url",
            key="base_url_input",
            convert=lambda v: (v or "").strip(),
            placeholder="from OPENAI_BASE_URL, else https://api.openai.com/v1",
            help="Leave empty for OpenAI (or the OPENAI_BASE_URL of .env). Azure, Ollama, vLLM, LiteLLM: "
            "their OpenAI-compatible URL.",
        )
        if st.session_state.get(_connection.TYPED_KEY):
            st.button("Forget the typed key", key="btn_forget_key", on_click=forget_key)
    _state.bind(
        st.selectbox,
        "API",
        "settings.api",
        key="api_choice",
        options=["auto", "responses", "chat"],
        format_func={
            "auto": "Automatic (Responses API on OpenAI, Chat Completions elsewhere)",
            "responses": "Responses API",
            "chat": "Chat Completions",
        }.get,
        help="Which OpenAI API each row is sent through. Answers and costs are the same either way; web "
        "research needs the Responses API, and many OpenAI-compatible servers serve only Chat Completions.",
    )
    st.caption(connection_text.key_status(_connection.connection()))


def model_box() -> None:
    w = _state.ws()
    st.subheader("Model")
    model = w.effective_model()
    listing = model_view.listing_for(_connection.connection().endpoint, _state.store())
    _state.bind(
        st.selectbox,
        "Model",
        "settings.model",
        key="model",
        options=model_view.model_choices(model, listing),
        format_func=lambda name: model_view.model_label(name, w.settings.price_aliases, listing),
        accept_new_options=True,
        help="Type a model name that is not listed (it will be unpriced). Models that are shut down are left "
        "out; those shutting down say when.",
    )
    if not w.settings.model_set and w.draft is not None and w.draft.model:
        st.caption(f"From the prompt {labels.md_escape(w.draft.name)}.")
    warning = model_view.retirement_warning(model, listing)
    if warning:
        (st.error if warning[0] == "error" else st.warning)(warning[1], icon=":material/event_busy:")
    effort_box(w, model)
    st.caption(
        f"Prices per 1M tokens, read on {PRICES_READ_ON}. Unknown models are shown as unpriced. Model shutdown "
        f"dates: {'the endpoint' + chr(39) + 's model list' if listing is not None else 'as of ' + models.as_of()}."
    )
    if price_for(model) is None:
        price_as_box(model)
    if price_for(model) is None and not w.settings.price_aliases.get(model):
        st.caption("Give this model a price (USD per 1M tokens) to see costs and use a budget:")
        a, b = st.columns(2)
        _state.bind(
            a.number_input,
            "Input",
            "settings.price_input",
            key="price_in",
            min_value=0.0,
            step=0.05,
            format="%.3f",
        )
        _state.bind(
            b.number_input,
            "Output",
            "settings.price_output",
            key="price_out",
            min_value=0.0,
            step=0.05,
            format="%.3f",
        )


def effort_box(w, model: str) -> None:
    """Reasoning effort: hidden thinking, billed as output; 'auto' follows the prompt, else the cheapest."""
    info = models.model_info(model)
    if info.known and not info.reasoning:
        st.caption(model_view.effort_note(model, None))
        return
    choices = model_view.effort_choices(model)
    wanted = w.effective_effort() or model_view.AUTO
    _state.bind(
        st.selectbox,
        "Reasoning effort",
        "settings.reasoning_effort",
        key="reasoning_effort",
        value=wanted if wanted in choices else model_view.AUTO,
        options=choices,
        format_func=model_view.EFFORT_WORDS.get,
        convert=lambda v: None if v == model_view.AUTO else v,
        help="How much the model thinks before it answers. Thinking is billed as output tokens and comes "
        "out of max tokens: enrichment rarely needs any, so 'none' is cheapest.",
    )
    st.caption(model_view.effort_note(model, w.effective_effort()))


NOT_ALIASED = "(not a known model)"


def price_as_box(model: str) -> None:
    """A deployment or proxy name (gpt-4o-mini-json) is unpriced until the user says what it really is."""
    key = "price_as"
    current = _state.ws().settings.price_aliases.get(model)
    options = [NOT_ALIASED, *labels.price_as_choices()]
    st.session_state[key] = current if current in options else NOT_ALIASED

    def changed() -> None:
        chosen = st.session_state[key]
        _state.update(lambda w: w.set_price_alias(model, None if chosen == NOT_ALIASED else chosen))

    st.selectbox(
        "Price it as",
        options,
        key=key,
        on_change=changed,
        help="A deployment or gateway name for a model the price table knows: costs and the budget then "
        "use that model's price.",
    )


def workspace_box() -> None:
    current = _state.ws()
    recent = [w for w in _state.workspaces().recent(12)]
    with st.expander("Workspaces", icon=":material/folder_open:"):
        st.caption(
            "Everything you set up is saved as you go, in this workspace. Its address (this page's URL) "
            "brings it back after a reload or a restart."
        )
        st.text(f"This one: {current.title()}")
        others = [w for w in recent if w.id != current.id and (w.lead or w.draft)]
        for w in others[:8]:
            st.button(
                w.title(),
                key=f"btn_ws_{w.id}",
                on_click=_state.switch_to,
                args=(w.id,),
                help=f"Last changed {labels.when(w.updated_at)}",
            )
        a, b = st.columns(2)
        a.button(
            "New",
            key="btn_ws_new",
            icon=":material/add:",
            on_click=new_workspace,
            help="Start an empty workspace.",
        )
        b.button(
            "Delete",
            key="btn_ws_delete",
            icon=":material/delete:",
            on_click=delete_workspace,
            args=(current.id,),
            help="Forget this workspace and its uploaded file. Its runs stay in History.",
        )


def new_workspace() -> None:
    fresh = _state.workspaces().create()
    _state.switch_to(fresh.id)


def delete_workspace(ws_id: str) -> None:
    _state.workspaces().delete(ws_id)
    new_workspace()
    st.session_state["flash"] = (
        "The workspace was deleted; this is a new, empty one. Its runs are still in History."
    )


def sidebar() -> None:
    with st.sidebar:
        connection_box()
        model_box()
        workspace_box()


def main() -> None:
    st.set_page_config(page_title="Lead Enrichment Studio", page_icon=":material/table_chart:", layout="wide")
    load_dotenv_files()
    _state.open_workspace()
    pages = [
        st.Page(_state.PAGES["data"], title="Data", icon=":material/upload_file:", default=True),
        st.Page(_state.PAGES["prompt"], title="Prompt", icon=":material/edit_note:"),
        st.Page(_state.PAGES["run"], title="Run", icon=":material/play_arrow:"),
        st.Page(_state.PAGES["results"], title="Results", icon=":material/table_view:"),
        st.Page(_state.PAGES["history"], title="History", icon=":material/history:"),
    ]
    # The navigation is drawn by the app, as links that carry the workspace id: Streamlit's own menu
    # drops the query string on some page changes, and with it the workspace.
    page = st.navigation(pages, position="hidden")
    _state.keep_in_url()
    with st.sidebar:
        for p in pages:
            st.page_link(
                p, label=p.title, icon=p.icon, query_params={_state.WS_PARAM: st.session_state["ws_id"]}
            )
        st.divider()
    sidebar()
    _state.flash()
    st.session_state[_state.ROUTED] = True  # this page runs under the router (see through_the_app)
    page.run()


main()
