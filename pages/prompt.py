"""Prompt: pick one from the library or start blank, edit it, check it against the columns, preview and quote."""

from __future__ import annotations

import streamlit as st

from lib.cost.pricing import PRICES_READ_ON
from lib.prompts import templates
from lib.prompts.library import PromptLibrary, PromptLibraryError
from lib.prompts.models import model_info
from lib.views import labels, prompt_draft
from pages import _shared

BLANK = "(blank prompt)"


def library() -> PromptLibrary:
    return PromptLibrary(labels.prompts_dir())


def load_source() -> None:
    """Callback of the library picker: load the chosen prompt (or a blank one) into the editor."""
    name = st.session_state.get("p_source")
    if not name or name == BLANK:
        _shared.set_draft(prompt_draft.Draft(), None)
        return
    try:
        spec = library().load(name)
    except PromptLibraryError as exc:
        st.session_state["p_load_error"] = str(exc)
        return
    _shared.set_draft(prompt_draft.Draft.of(spec), spec.name)


def picker(lib: PromptLibrary) -> None:
    names = [BLANK, *lib.names()]
    if st.session_state.get("p_source") not in names:
        st.session_state["p_source"] = BLANK
    st.selectbox("Start from", names, key="p_source", on_change=load_source)
    if "p_template" not in st.session_state:
        load_source()
    for problem in lib.errors():
        st.caption(f"Not loaded: {labels.md_escape(problem)}")
    if error := st.session_state.pop("p_load_error", None):
        st.error(labels.md_escape(error))


def add_example() -> None:
    ss = st.session_state
    i = ss.get("p_ex_next", 0)
    ss[f"p_ex_{i}_user"] = ""
    ss[f"p_ex_{i}_assistant"] = ""
    ss["p_ex_ids"] = [*ss.get("p_ex_ids", []), i]
    ss["p_ex_next"] = i + 1


def remove_example(i: int) -> None:
    ss = st.session_state
    ss["p_ex_ids"] = [j for j in ss.get("p_ex_ids", []) if j != i]
    ss.pop(f"p_ex_{i}_user", None)
    ss.pop(f"p_ex_{i}_assistant", None)


def editor(columns: list[str]) -> None:
    ss = st.session_state
    left, right = st.columns([3, 2])
    with left:
        st.text_input("Prompt name", key="p_name")
        st.text_area("System message", key="p_system", height=160)
        st.markdown("**Few-shot examples** (user turn, then the ideal answer; literal text, no placeholders)")
        for n, i in enumerate(ss.get("p_ex_ids", []), start=1):
            with st.container(border=True):
                st.text_area(f"Example {n}: user", key=f"p_ex_{i}_user", height=100)
                st.text_area(f"Example {n}: assistant", key=f"p_ex_{i}_assistant", height=80)
                st.button(f"Remove example {n}", key=f"btn_rm_ex_{i}", on_click=remove_example, args=(i,))
        st.button("Add example", key="btn_add_example", on_click=add_example, icon=":material/add:")
        st.text_area("User message template", key="p_template", height=180, help="Use {{ Column Name }}.")
    with right:
        st.markdown("**Columns you can use** (copy a line into the template)")
        if columns:
            st.code(prompt_draft.column_snippets(columns), language=None)
        else:
            st.caption("Upload a lead list to see its columns.")
        if ss.get("p_schema") is not None:
            st.text_input(
                "Output columns", value=", ".join(ss["p_schema"].get("properties", {})), disabled=True
            )
            st.caption("This prompt answers with JSON following this schema (read-only here):")
            st.json(ss["p_schema"], expanded=False)
        else:
            st.text_input(
                "Output columns (comma-separated)",
                key="p_outputs",
                help="One column: the answer as text. Several: the model answers JSON with these keys.",
            )
        model = _shared.model()
        st.caption(f"Model: {labels.price_label(model)} (change it in the sidebar).")
        temp_ok = model_info(model).supports_temperature
        st.number_input(
            "Default temperature",
            min_value=0.0,
            max_value=2.0,
            step=0.1,
            key="p_temp",
            placeholder="model default",
            disabled=not temp_ok,
            help=None if temp_ok else f"{model} does not accept a temperature.",
        )
        st.number_input(
            "Default max tokens",
            min_value=1,
            max_value=100_000,
            step=10,
            key="p_max_tokens",
            placeholder="none",
        )


def check(spec: templates.PromptSpec, columns: list[str]) -> bool:
    """Flag placeholders that match no column; True when the prompt fits the table."""
    if not spec.template.strip():
        st.warning("The user message template is empty.")
        return False
    problems = templates.check(spec, columns)
    if not problems:
        st.success("Every placeholder matches a column.", icon=":material/check:")
        return True
    st.warning(f"{len(problems)} problem(s) with placeholders:", icon=":material/warning:")
    for p in problems:
        st.text(p.message)  # names come from the lead file: shown as plain text
    return False


def preview(spec: templates.PromptSpec, df) -> None:
    st.subheader("Exact messages for one row")
    ids = [int(i) for i in df.index[:1000]]
    if not ids:
        st.caption("The table has no rows.")
        return
    if st.session_state.get("p_preview_row") not in ids:
        st.session_state["p_preview_row"] = ids[0]
    row_id = st.selectbox("Row", ids, key="p_preview_row", format_func=lambda i: f"row {i}")
    if row_id is None:
        return
    row = df.loc[row_id].to_dict()
    model = _shared.model()
    body = templates.build_request(
        spec, row, model=model, max_tokens=spec.max_tokens, temperature=spec.temperature
    )
    for message in body["messages"]:
        st.caption(message["role"])
        st.code(message["content"], language=None, wrap_lines=True)
    rest = {k: v for k, v in body.items() if k != "messages"}
    st.caption("Request parameters")
    st.json(rest, expanded=False)


def show_quote(spec: templates.PromptSpec, df) -> None:
    st.subheader("Tokens and cost for the whole list")
    model = _shared.model()
    options = prompt_draft.run_options(
        spec, model, spec.max_tokens, spec.temperature, price=_shared.custom_price(model)
    )
    q = _shared.quote(df, spec, options, tuple(st.session_state.get("sample_tokens", ())))
    cols = st.columns(4)
    for col, (label, value) in zip(cols, prompt_draft.quote_lines(q).items(), strict=True):
        col.metric(label, value)
    st.caption(f"Output estimate: {q.basis}. Prices read on {PRICES_READ_ON}.")
    if q.over_context:
        st.warning(f"{len(q.over_context)} row(s) are too long for {model}'s context window.")


def save(spec: templates.PromptSpec) -> None:
    ss = st.session_state
    st.subheader("Save")
    a, b = st.columns(2)
    if a.button("Save as a new prompt", key="btn_save_new"):
        try:
            path = library().save_new(spec)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            ss["p_loaded"] = spec.name
            st.success(f"Saved as {path.name}.")
    loaded = ss.get("p_loaded")
    if b.button("Save as a new version", key="btn_save_version", disabled=not loaded or loaded != spec.name):
        try:
            saved = library().save_version(spec, ss.get("p_version") or 1)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            ss["p_version"] = saved.version
            st.success(f"Saved {saved.name} version {saved.version}.")
    if not loaded or loaded != spec.name:
        st.caption("A new version can only be saved for a prompt opened from the library, under its name.")


def main() -> None:
    st.title("Prompt")
    lib = library()
    picker(lib)
    df = st.session_state.get("lead_df")
    columns = [str(c) for c in df.columns] if df is not None else []
    editor(columns)
    draft = _shared.draft()
    assert draft is not None
    try:
        spec = draft.spec()
    except ValueError as exc:
        st.error(labels.md_escape(exc))
        return
    st.divider()
    if df is None:
        st.info("Upload a lead list to check the placeholders, preview the messages and get a quote.")
        st.page_link(_shared.PAGES["data"], label="Go to Data", icon=":material/upload_file:")
        save(spec)
        return
    fits = check(spec, columns)
    if fits:
        preview(spec, df)
        show_quote(spec, df)
        st.page_link(_shared.PAGES["run"], label="Next: run it", icon=":material/arrow_forward:")
    save(spec)


main()
