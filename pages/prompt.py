"""Prompt: pick one from the library or start blank, edit it, check it against the columns, preview and quote."""

from __future__ import annotations

import streamlit as st

from lib.cost.pricing import PRICES_READ_ON
from lib.prompts import templates
from lib.prompts.draft import Draft
from lib.prompts.library import PromptLibrary, PromptLibraryError
from lib.prompts.models import model_info
from lib.views import labels, prompt_draft
from pages import _shared

BLANK = "(blank prompt)"


def library() -> PromptLibrary:
    return PromptLibrary(labels.prompts_dir())


def load_source() -> None:
    """Callback of the library picker: open the chosen prompt (or a blank one) in the editor."""
    name = st.session_state.get("p_source")
    if not name or name == BLANK:
        _shared.update(lambda w: w.choose_prompt("", Draft()))
        return
    try:
        spec = library().load(name)
    except PromptLibraryError as exc:
        st.session_state["flash"] = str(exc)
        return
    _shared.update(lambda w: w.choose_prompt(spec.name, Draft.of(spec)))


def picker(lib: PromptLibrary) -> None:
    names = [BLANK, *lib.names()]
    w = _shared.ws()
    if w.draft is None:  # first visit: a blank prompt to start from
        w = _shared.update(lambda w: w.choose_prompt("", Draft()))
    source = w.prompt_source or BLANK
    st.session_state["p_source"] = source if source in names else BLANK
    st.selectbox("Start from", names, key="p_source", on_change=load_source)
    if w.prompt_source and w.prompt_source not in names:
        st.caption(f"Opened from {labels.md_escape(w.prompt_source)}, which is no longer in the library.")
    for problem in lib.errors():
        st.caption(f"Not loaded: {labels.md_escape(problem)}")


def set_example(i: int, part: int) -> None:
    value = st.session_state.get(f"p_ex_{i}_{'user' if part == 0 else 'assistant'}") or ""

    def change(w) -> None:
        examples = [list(e) for e in w.draft.examples]
        if i < len(examples):
            examples[i][part] = value
            w.draft.examples = [tuple(e) for e in examples]

    _shared.update(change)


def add_example() -> None:
    _shared.update(lambda w: w.draft.examples.append(("", "")))


def remove_example(i: int) -> None:
    def change(w) -> None:
        w.draft.examples = [e for j, e in enumerate(w.draft.examples) if j != i]

    _shared.update(change)


def editor(columns: list[str]) -> None:
    bind = _shared.bind
    draft = _shared.ws().draft
    left, right = st.columns([3, 2])
    with left:
        bind(st.text_input, "Prompt name", "draft.name", key="p_name")
        bind(st.text_area, "System message", "draft.system", key="p_system", height=160)
        st.markdown("**Few-shot examples** (user turn, then the ideal answer; literal text, no placeholders)")
        for i, (user, assistant) in enumerate(draft.examples):
            with st.container(border=True):
                for part, (label, text, height) in enumerate(
                    ((f"Example {i + 1}: user", user, 100), (f"Example {i + 1}: assistant", assistant, 80))
                ):
                    key = f"p_ex_{i}_{'user' if part == 0 else 'assistant'}"
                    st.session_state[key] = text
                    st.text_area(label, key=key, height=height, on_change=set_example, args=(i, part))
                st.button(f"Remove example {i + 1}", key=f"btn_rm_ex_{i}", on_click=remove_example, args=(i,))
        st.button("Add example", key="btn_add_example", on_click=add_example, icon=":material/add:")
        bind(
            st.text_area,
            "User message template",
            "draft.template",
            key="p_template",
            height=180,
            help="Use {{ Column Name }}.",
        )
    with right:
        st.markdown("**Columns you can use** (copy a line into the template)")
        if columns:
            st.code(prompt_draft.column_snippets(columns), language=None)
        else:
            st.caption("Upload a lead list to see its columns.")
        if draft.json_schema is not None:
            st.text_input(
                "Output columns", value=", ".join(draft.json_schema.get("properties", {})), disabled=True
            )
            st.caption("This prompt answers with JSON following this schema (read-only here):")
            st.json(draft.json_schema, expanded=False)
        else:
            bind(
                st.text_input,
                "Output columns (comma-separated)",
                "draft.outputs",
                key="p_outputs",
                help="One column: the answer as text. Several: the model answers JSON with these keys.",
            )
        model = _shared.model()
        aliases = _shared.ws().settings.price_aliases
        st.caption(f"Model: {labels.price_label(model, aliases)} (change it in the sidebar).")
        temp_ok = model_info(model).supports_temperature
        bind(
            st.number_input,
            "Default temperature",
            "draft.temperature",
            key="p_temp",
            min_value=0.0,
            max_value=2.0,
            step=0.1,
            placeholder="model default",
            disabled=not temp_ok,
            help=None if temp_ok else f"{model} does not accept a temperature.",
        )
        bind(
            st.number_input,
            "Default max tokens",
            "draft.max_tokens",
            key="p_max_tokens",
            min_value=1,
            max_value=100_000,
            step=10,
            placeholder="none",
        )
        st.caption(
            "These defaults are saved with the prompt; the Run page uses them unless you change them there."
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
    w = _shared.ws()
    st.subheader("Save")
    a, b = st.columns(2)
    if a.button("Save as a new prompt", key="btn_save_new"):
        try:
            path = library().save_new(spec)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            _shared.update(lambda w: setattr(w, "prompt_source", spec.name))
            st.success(f"Saved as {path.name}.")
    loaded = w.prompt_source
    if b.button("Save as a new version", key="btn_save_version", disabled=not loaded or loaded != spec.name):
        try:
            saved = library().save_version(spec, w.draft.version or 1)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            _shared.update(lambda w: setattr(w.draft, "version", saved.version))
            st.success(f"Saved {saved.name} version {saved.version}.")
    if not loaded or loaded != spec.name:
        st.caption("A new version can only be saved for a prompt opened from the library, under its name.")


def main() -> None:
    _shared.through_the_app()
    st.title("Prompt")
    lib = library()
    picker(lib)
    lead, _ = _shared.lead_file()
    df = lead.df if lead is not None else None
    columns = [str(c) for c in df.columns] if df is not None else []
    editor(columns)
    draft = _shared.ws().draft
    try:
        spec = draft.spec()
    except ValueError as exc:
        st.error(labels.md_escape(exc))
        return
    st.divider()
    if df is None:
        st.info("Upload a lead list to check the placeholders, preview the messages and get a quote.")
        _shared.page_link("data", "Go to Data", ":material/upload_file:")
        save(spec)
        return
    fits = check(spec, columns)
    if fits:
        preview(spec, df)
        show_quote(spec, df)
        _shared.page_link("run", "Next: run it", ":material/arrow_forward:")
    save(spec)


main()
