"""Streamlit glue the pages share: the store, the demo server, the endpoint, the attached run.

Process-wide objects come from st.cache_resource (one per server process); everything about one
browser session (a typed key, the lead table, the attached run) lives in st.session_state only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from lib import batch, engine
from lib.cost.pricing import Price, price_for
from lib.engine import Job, runs
from lib.engine.client import Endpoint, endpoint_from_env, mask_key
from lib.prompts.models import DEFAULT_MODEL
from lib.prompts.templates import FIELD_CAP
from lib.sim import SimConfig, SimServer
from lib.store import Store, StoreError
from lib.views import labels, prompt_draft

DEMO_KEY = "sk-local-demo"
PAGES = {
    "data": "pages/data.py",
    "prompt": "pages/prompt.py",
    "run": "pages/run.py",
    "results": "pages/results.py",
    "history": "pages/history.py",
}


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


@st.cache_resource(show_spinner="Starting the offline demo server…")
def demo_server() -> SimServer:
    """The built-in OpenAI-compatible local server, one per process."""
    return SimServer(SimConfig(latency_ms=300, latency_dist="lognormal", latency_p99_ms=1500)).start()


@dataclass(frozen=True)
class Connection:
    endpoint: Endpoint | None
    demo: bool
    source: str  # where the key came from, for the status line (never the key itself)


def _secret_key() -> str | None:
    try:  # with no secrets file, touching st.secrets raises
        value = st.secrets.get("OPENAI_API_KEY")
    except Exception:
        return None
    return str(value).strip() if value else None


def env_key() -> tuple[str | None, str]:
    """A key from the environment (.env was loaded into it) or from st.secrets, and which."""
    key = (os.environ.get("OPENAI_API_KEY") or "").strip()
    if key:
        return key, ".env / environment"
    key = _secret_key()
    return (key, "secrets.toml") if key else (None, "")


def connection() -> Connection:
    """Where requests go for this session: the demo server, a typed key, or the environment's key."""
    if st.session_state.get("demo_mode"):
        return Connection(Endpoint(api_key=DEMO_KEY, base_url=demo_server().url), True, "offline demo")
    base_url = (st.session_state.get("base_url_input") or "").strip() or None
    typed = (st.session_state.get("api_key_input") or "").strip()
    if typed:
        return Connection(Endpoint(api_key=typed, base_url=base_url), False, "typed in this session")
    key, source = env_key()
    if key:
        env = endpoint_from_env({"OPENAI_API_KEY": key, **_org_env()})
        assert env is not None
        return Connection(
            Endpoint(api_key=key, base_url=base_url, organization=env.organization, project=env.project),
            False,
            source,
        )
    return Connection(None, False, "")


def _org_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID") if os.environ.get(k)}


def key_status(conn: Connection) -> str:
    if conn.demo:
        return "Offline demo: answers are simulated by the built-in local server."
    if conn.endpoint is None:
        return "No API key. Type one below, add OPENAI_API_KEY to .env, or use the offline demo."
    return f"Key {mask_key(conn.endpoint.api_key)} ({conn.source})"


def need_leads() -> pd.DataFrame:
    """The lead table of this session, or an empty state with a link to the Data page."""
    df = st.session_state.get("lead_df")
    if df is None:
        st.info("Upload a lead list first.")
        st.page_link(PAGES["data"], label="Go to Data", icon=":material/upload_file:")
        st.stop()
    return df


def model() -> str:
    return st.session_state.get("model") or DEFAULT_MODEL


def attached_job() -> Job | None:
    run_id = st.session_state.get("run_id")
    return engine.get_job(run_id) if run_id else None


def start_job(plan, conn: Connection, settings: engine.RunSettings) -> Job:
    """Start (or re-attach to) a run in this process; workers never touch Streamlit."""
    return engine.start(plan, endpoint=conn.endpoint, settings=settings, store=store())


def batch_settings(conn: Connection) -> batch.BatchSettings:
    """Batch polling: every few seconds against the offline demo, every 30 s at most against OpenAI."""
    return batch.BatchSettings(poll_interval_s=2.0 if conn.demo else 30.0)


def resume_stored(run_id: str, conn: Connection) -> Job:
    """Continue a stored run in this process: a batch run collects its batches (nothing is re-sent live);
    a live run rebuilds its plan and sends only the unanswered rows."""
    if batch.is_batch_run(store(), run_id):
        return batch.resume(store(), run_id, endpoint=conn.endpoint, settings=batch_settings(conn))
    plan = runs.resume_plan(store(), run_id)
    return start_job(plan, conn, engine.RunSettings())


def results_of(run_id: str) -> tuple[pd.DataFrame, dict, dict[int, dict[str, str]]]:
    """(results table with edits, run meta, edits) from the live job if here, else from the store."""
    job = engine.get_job(run_id)
    if job is not None:
        edits = job.edits()
        frame = runs.results_frame(job.plan.inputs, job.rows(), job.plan.meta, edits)
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


# --- the prompt draft (its widgets' values live in session state under p_*) -------------------------

DRAFT_KEYS = ("p_name", "p_desc", "p_system", "p_template", "p_outputs", "p_temp", "p_max_tokens")


def set_draft(draft: prompt_draft.Draft, loaded: str | None) -> None:
    """Write a draft into the prompt widgets' state (call from a callback or before they are drawn)."""
    ss = st.session_state
    for key in [k for k in ss if isinstance(k, str) and k.startswith("p_ex_")]:
        del ss[key]
    ids = list(range(len(draft.examples)))
    for i, (user, assistant) in enumerate(draft.examples):
        ss[f"p_ex_{i}_user"] = user
        ss[f"p_ex_{i}_assistant"] = assistant
    ss.update(
        p_name=draft.name,
        p_desc=draft.description,
        p_system=draft.system,
        p_template=draft.template,
        p_outputs=draft.outputs,
        p_temp=draft.temperature,
        p_max_tokens=draft.max_tokens,
        p_schema=draft.json_schema,
        p_field_cap=draft.field_cap,
        p_version=draft.version,
        p_loaded=loaded,
        p_ex_ids=ids,
        p_ex_next=len(ids),
    )
    if draft.model:
        ss["model"] = draft.model


def draft() -> prompt_draft.Draft | None:
    """The draft the prompt page holds, or None before the prompt page was opened."""
    ss = st.session_state
    if "p_template" not in ss:
        return None
    return prompt_draft.Draft(
        name=ss.get("p_name") or "",
        description=ss.get("p_desc") or "",
        system=ss.get("p_system") or "",
        examples=[
            (ss.get(f"p_ex_{i}_user") or "", ss.get(f"p_ex_{i}_assistant") or "")
            for i in ss.get("p_ex_ids", [])
        ],
        template=ss.get("p_template") or "",
        outputs=ss.get("p_outputs") or "",
        json_schema=ss.get("p_schema"),
        model=model(),
        temperature=ss.get("p_temp"),
        max_tokens=ss.get("p_max_tokens"),
        field_cap=ss.get("p_field_cap") or FIELD_CAP,
        version=ss.get("p_version") or 1,
    )


def need_spec():
    """The prompt as a PromptSpec, or an empty state / error and stop."""
    d = draft()
    if d is None or not d.template.strip():
        st.info("Write or choose a prompt first.")
        st.page_link(PAGES["prompt"], label="Go to Prompt", icon=":material/edit_note:")
        st.stop()
    try:
        return d.spec()
    except ValueError as exc:
        st.error(f"The prompt can't be used yet: {exc}")
        st.page_link(PAGES["prompt"], label="Fix it on the Prompt page", icon=":material/edit_note:")
        st.stop()


def lead_digest() -> str:
    ss = st.session_state
    if not ss.get("lead_digest"):
        ss["lead_digest"] = labels.frame_digest(ss["lead_df"])
    return ss["lead_digest"]


@st.cache_data(max_entries=32, show_spinner="Counting tokens…")
def _quote(table_digest: str, spec_yaml: str, option_values: tuple, sample: tuple[int, ...], _df, _spec):
    model_name, max_tokens, temperature, empty, price = option_values
    options = runs.RunOptions(
        model=model_name, max_tokens=max_tokens, temperature=temperature, empty=empty, price=price
    )
    return prompt_draft.quote_table(_df, _spec, options, sample)


def custom_price(model: str) -> Price | None:
    """The price typed in the sidebar for a model the price table does not know (this session only)."""
    if price_for(model) is not None:
        return None
    ss = st.session_state
    price_in, price_out = ss.get("price_in"), ss.get("price_out")
    if not price_in and not price_out:
        return None
    return Price(float(price_in or 0), float(price_in or 0), float(price_out or 0))


def quote(df: pd.DataFrame, spec, options: runs.RunOptions, sample: tuple[int, ...] = ()):
    """The cost quote for the whole table, cached by table, prompt, options and sample."""
    from lib.prompts.library import dump_spec

    values = (options.model, options.max_tokens, options.temperature, options.empty, options.price)
    return _quote(lead_digest(), dump_spec(spec), values, tuple(sample), df, spec)
