"""The workspace's prompt as runs use it: fitted to the file, its library and saved versions, and what a
run records of it (the prompt's identity and the run's meta)."""

from __future__ import annotations

import streamlit as st

from lib.cost.pricing import Price
from lib.engine.client import Connection
from lib.prompts import identity
from lib.prompts.library import PromptLibrary
from lib.prompts.templates import PromptSpec
from lib.views import labels, run_data
from lib.workbench import tries
from pages import _leads, _state


def model() -> str:
    return _state.ws().effective_model()


def custom_price(model_name: str) -> Price | None:
    """The price set in the sidebar for a model the price table does not know (lib.workspace)."""
    return _state.ws().custom_price(model_name)


def run_spec() -> PromptSpec:
    """The draft as a PromptSpec fitted to the file (the workspace's mapping); ValueError when it can't work."""
    w = _state.ws()
    return tries.variant_spec(w.draft, tries.RunContext(mapping=dict(w.mapping)))


def need_spec() -> PromptSpec:
    """The prompt as a PromptSpec fitted to the file, or an empty state / error and stop."""
    d = _state.ws().draft
    if d is None or not d.template.strip():
        st.info("Write or choose a prompt first.")
        _state.page_link("prompt", "Go to Prompt", ":material/edit_note:")
        st.stop()
    try:
        return run_spec()
    except ValueError as exc:
        st.error(f"The prompt can't be used yet: {labels.md_escape(exc)}")
        _state.page_link("prompt", "Fix it on the Prompt page", ":material/edit_note:")
        st.stop()


def prompt_library() -> PromptLibrary:
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


def saved_version(name: str | None, version: int | None) -> PromptSpec | None:
    """The library's text of `name` at `version`, or None (a blank prompt, a deleted one)."""
    if not name or not version:
        return None
    return identity.opened_from(prompt_library(), name, int(version))


def run_meta(conn: Connection, draft=None, **extra) -> dict:
    """The run's meta (lib.views.run_data.run_meta) for the workspace's draft, or `draft` as a workbench
    column holds it."""
    w = _state.ws()
    lead, _ = _leads.lead_file(w)
    draft = draft or w.draft
    saved = saved_version(w.prompt_source, draft.version) if draft is not None else None
    return run_data.run_meta(
        w,
        lead.encoding if lead is not None else None,
        demo=conn.demo,
        prompt=identity.draft_identity(draft, saved, w.mapping),
        **extra,
    )
