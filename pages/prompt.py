"""Prompt: the workbench. Pick a prompt or start blank, fit it to the file, edit it on the left, try it on
the sample rows on the right with earlier answers beside the new ones, compare variants, and choose one."""

from __future__ import annotations

import streamlit as st

from lib.cost.pricing import PRICES_READ_ON
from lib.models import model_info
from lib.prompts import research, templates
from lib.prompts.draft import Draft
from lib.prompts.library import PromptLibrary, PromptLibraryError
from lib.views import labels, prompt_draft
from lib.workspace import replace_fields
from pages import _draft, _fit, _leads, _quote, _state, _workbench

BLANK = "(blank prompt)"
VERSION_MSG = "p_version_msg"  # what opening or restoring a version did, drawn above the versions


def library() -> PromptLibrary:
    return PromptLibrary(labels.prompts_dir())


def load_source() -> None:
    """Callback of the library picker: open the chosen prompt (or a blank one) in the editor."""
    name = st.session_state.get("p_source")
    if not name or name == BLANK:
        _state.update(lambda w: w.choose_prompt("", Draft()))
        return
    try:
        spec = library().load(name)
    except PromptLibraryError as exc:
        st.session_state["flash"] = str(exc)
        return
    _state.update(lambda w: w.choose_prompt(spec.name, Draft.of(spec)))


def picker(lib: PromptLibrary) -> None:
    names = [BLANK, *lib.names()]
    w = _state.ws()
    if w.draft is None:  # first visit: a blank prompt to start from
        w = _state.update(lambda w: w.choose_prompt("", Draft()))
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

    _state.update(change)


def add_example() -> None:
    _state.update(lambda w: w.draft.examples.append(("", "")))


def remove_example(i: int) -> None:
    def change(w) -> None:
        w.draft.examples = [e for j, e in enumerate(w.draft.examples) if j != i]

    _state.update(change)


def editor(columns: list[str]) -> None:
    """The prompt's fields, in one column: what is sent first (system, examples), then the row's message."""
    bind = _state.bind
    draft = _state.ws().draft
    bind(st.text_input, "Prompt name", "draft.name", key="p_name")
    bind(st.text_area, "System message", "draft.system", key="p_system", height=220)
    with st.expander(f"Few-shot examples ({len(draft.examples)})", icon=":material/school:"):
        st.caption("A user turn, then the ideal answer: literal text, no placeholders.")
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
        help="Use {{ Column Name }}. Ctrl+Enter tries the prompt on the sample rows.",
    )
    if columns:
        with st.expander("Columns you can use", icon=":material/view_column:"):
            st.caption("Copy a line into the template.")
            st.code(prompt_draft.column_snippets(columns), language=None)
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
    model = _draft.model()
    aliases = _state.ws().settings.price_aliases
    st.caption(f"Model: {labels.price_label(model, aliases)} (change it in the sidebar).")
    temp_ok = model_info(model).supports_temperature
    a, b = st.columns(2)
    bind(
        a.number_input,
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
        b.number_input,
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
    extras(draft, columns)


def set_checks(name: str, key: str) -> None:
    """One field of the prompt's quality checks, from its widget."""
    value = st.session_state.get(key)
    if name in ("banned", "mention"):
        value = tuple(
            v.strip() for v in (value.splitlines() if isinstance(value, str) else value or []) if v.strip()
        )
    elif value is not None:
        value = int(value)

    def change(w) -> None:
        w.draft.checks = replace_fields(w.draft.checks, **{name: value})

    _state.update(change)


def extras(draft: Draft, columns: list[str]) -> None:
    """Optional fields, quality checks and packing: saved with the prompt."""
    ss = st.session_state
    names = templates.placeholders(draft.template)
    ss["p_optional"] = [n for n in draft.optional_fields if n in names]
    st.multiselect(
        "Fields that may be missing or empty",
        names,
        key="p_optional",
        on_change=lambda: _state.update(
            lambda w: w.set_draft_field("optional_fields", tuple(ss.get("p_optional") or ()))
        ),
        help="A file without such a column is sent an empty value, with a note, instead of being refused.",
    )
    with st.expander("Quality checks on every answer", icon=":material/rule:"):
        checks = draft.checks
        a, b = st.columns(2)
        ss["p_max_words"] = checks.max_words
        a.number_input(
            "Most words",
            min_value=1,
            step=1,
            key="p_max_words",
            placeholder="no limit",
            on_change=set_checks,
            args=("max_words", "p_max_words"),
        )
        ss["p_max_chars"] = checks.max_chars
        b.number_input(
            "Most characters",
            min_value=1,
            step=10,
            key="p_max_chars",
            placeholder="no limit",
            on_change=set_checks,
            args=("max_chars", "p_max_chars"),
        )
        ss["p_banned"] = "\n".join(checks.banned)
        st.text_area(
            "Banned phrases (one per line)",
            key="p_banned",
            height=100,
            on_change=set_checks,
            args=("banned", "p_banned"),
        )
        ss["p_mention"] = [c for c in checks.mention if c in columns] if columns else list(checks.mention)
        st.multiselect(
            "Must mention the value of",
            columns or list(checks.mention),
            key="p_mention",
            on_change=set_checks,
            args=("mention", "p_mention"),
        )
        st.caption(
            "Left-over placeholders ({{…}}, [Company Name], <first name>) are always flagged. A flagged answer "
            "still counts: it waits for review on the Results page."
        )
    bind = _state.bind
    bind(
        st.number_input,
        "Rows per request",
        "draft.rows_per_request",
        key="p_rows_per_request",
        min_value=1,
        max_value=50,
        step=1,
        placeholder="1 (one row per request)",
        help="Several rows in one request pay the system message and examples once: cheaper for short "
        "answers. Compare it with one row per request under Add a variant before you run.",
    )
    research_section(draft)


def set_web_search() -> None:
    on = bool(st.session_state.get("p_web_search"))

    def change(w) -> None:
        tools = [t for t in w.draft.tools if t != research.WEB_SEARCH]
        w.set_draft_field("tools", (*tools, research.WEB_SEARCH) if on else tuple(tools))

    _state.update(change)


def set_location() -> None:
    country = (st.session_state.get("p_search_country") or "").strip().upper()
    _state.update(lambda w: w.set_draft_field("user_location", (("country", country),) if country else ()))


def set_require_sources() -> None:
    value = bool(st.session_state.get("p_require_sources"))
    _state.update(lambda w: setattr(w.draft, "checks", replace_fields(w.draft.checks, require_sources=value)))


def research_section(draft: Draft) -> None:
    """Web research (the web_search tool, sources) and one answer per company: saved with the prompt."""
    ss = st.session_state
    on = research.WEB_SEARCH in draft.tools
    ss["p_web_search"] = on
    st.toggle(
        "Research each row on the web",
        key="p_web_search",
        on_change=set_web_search,
        help="Each row's request may search the web (OpenAI's web_search tool, about $10 per 1,000 searches "
        "plus the pages read, billed as input). The answer's cited pages fill a sources column. Needs the "
        "Responses API.",
    )
    if on:
        a, b, c = st.columns(3)
        _state.bind(
            a.number_input,
            "Most searches a row",
            "settings.max_tool_calls",
            key="p_max_tool_calls",
            min_value=1,
            max_value=research.MAX_TOOL_CALLS,
            step=1,
            placeholder=str(research.default_max_tool_calls()),
            help="Billed searches one row may make (hidden follow-up searches count too). The budget reserves "
            "this many for every row before it is sent.",
        )
        _state.bind(
            b.selectbox,
            "Pages read per search",
            "draft.search_context_size",
            key="p_search_context",
            options=[None, *research.CONTEXT_SIZES],
            format_func=lambda v: "medium (default)" if v is None else v,
            help="How much of the found pages the model reads: more is billed as more input tokens.",
        )
        ss["p_search_country"] = dict(draft.user_location).get("country", "")
        c.text_input(
            "Search from country",
            key="p_search_country",
            on_change=set_location,
            placeholder="any (e.g. DE)",
            max_chars=2,
            help="A two-letter country code: results are searched as from there.",
        )
        ss["p_require_sources"] = draft.checks.require_sources
        st.checkbox(
            "Flag answers that cite no source (no_source)",
            key="p_require_sources",
            on_change=set_require_sources,
        )
    names = templates.placeholders(draft.system) + templates.placeholders(draft.template)
    choices = [None, *dict.fromkeys(names)]
    if draft.one_answer_per not in choices:
        choices.append(draft.one_answer_per)
    _state.bind(
        st.selectbox,
        "One answer per",
        "draft.one_answer_per",
        key="p_one_answer_per",
        options=choices,
        format_func=lambda v: "each row (no sharing)" if v is None else f"{v} (rows of one company share it)",
        help="For questions about the company, not the person: rows whose value names the same company "
        "(its website, e-mail domain or name, written any way) are asked once and share the answer, paid once.",
    )


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
    model = _draft.model()
    web = research.of_spec(spec, max_tool_calls=_state.ws().settings.max_tool_calls)
    body = templates.build_request(
        spec, row, model=model, max_tokens=spec.max_tokens, temperature=spec.temperature, web_search=web
    )
    for message in body["messages"]:
        st.caption(message["role"])
        st.code(message["content"], language=None, wrap_lines=True)
    rest = {k: v for k, v in body.items() if k != "messages"}
    st.caption("Request parameters")
    st.json(rest, expanded=False)


def show_quote(spec: templates.PromptSpec, df) -> None:
    st.subheader("Tokens and cost for the whole list")
    model = _draft.model()
    options = prompt_draft.run_options(
        spec,
        model,
        spec.max_tokens,
        spec.temperature,
        price=_draft.custom_price(model),
        reasoning_effort=_state.ws().effective_effort(),
        api=_state.ws().api_choice(),
        max_tool_calls=_state.ws().settings.max_tool_calls,
    )
    q = _quote.quote(df, spec, options, tuple(st.session_state.get("sample_tokens", ())))
    lines = list(prompt_draft.quote_lines(q).items())
    for start in range(0, len(lines), 4):
        cols = st.columns(4)
        for col, (label, value) in zip(cols, lines[start : start + 4], strict=False):
            col.metric(label, value)
    st.caption(f"Output estimate: {q.basis}. Prices read on {PRICES_READ_ON}.")
    if q.web_search:
        st.caption(labels.md_escape(q.search_basis[:1].upper() + q.search_basis[1:] + "."))
    if q.over_context:
        st.warning(f"{len(q.over_context)} row(s) are too long for {model}'s context window.")


def save(spec: templates.PromptSpec | None) -> None:
    w = _state.ws()
    st.subheader("Save")
    loaded = w.prompt_source
    can_version = bool(loaded) and spec is not None and loaded == spec.name
    if st.button("Save as a new version", key="btn_save_version", disabled=not can_version, type="primary"):
        try:
            saved = library().save_version(spec, w.draft.version or 1)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            _state.update(lambda w: setattr(w.draft, "version", saved.version))
            _state.say(
                f"Saved {saved.name} version {saved.version}; version {saved.version - 1} is kept.",
                "p_saved",
                ok=True,
            )
            st.rerun()  # the versions list at the top now has the new one
    if not can_version:
        st.caption("A new version can only be saved for a prompt opened from the library, under its name.")
    if st.button("Save as a new prompt", key="btn_save_new", disabled=spec is None):
        try:
            path = library().save_new(spec)
        except PromptLibraryError as exc:
            st.error(labels.md_escape(exc))
        else:
            _state.update(lambda w: setattr(w, "prompt_source", spec.name))
            st.success(f"Saved as {path.name}.")
    _state.flash("p_saved")


def open_version(name: str, version: int) -> None:
    """Open an earlier version in the editor; saving it makes it the newest version (nothing is lost)."""
    try:
        spec = library().load_version(name, version)
    except PromptLibraryError as exc:
        st.session_state["flash"] = str(exc)
        return
    current = _state.ws().draft.version if _state.ws().draft else spec.version

    def change(w) -> None:
        draft = Draft.of(spec)
        draft.version = current  # edits of the newest version: "Save as a new version" keeps both
        w.draft = draft

    _state.update(change)
    _state.say(
        f"Version {version} is in the editor. Save it as a new version to make it the newest; nothing is lost.",
        VERSION_MSG,
        ok=True,
    )


def restore(name: str, version: int) -> None:
    try:
        current = library().load(name)
        restored = library().restore(name, version, current.version)
    except PromptLibraryError as exc:
        st.session_state["flash"] = str(exc)
        return
    _state.update(lambda w: w.choose_prompt(restored.name, Draft.of(restored)))
    _state.say(
        f"Version {version} is back as version {restored.version}; every version is still kept.",
        VERSION_MSG,
        ok=True,
    )


def versions_section(lib: PromptLibrary) -> None:
    """Every saved version of the opened prompt: a difference with the newest, open or restore one."""
    _state.flash(VERSION_MSG)
    w = _state.ws()
    name = w.prompt_source
    if not name:
        return
    try:
        versions = lib.versions(name)
    except PromptLibraryError:
        return
    if len(versions) < 2:
        return
    newest = versions[0].version
    with st.expander(f"Versions of {labels.md_escape(name)} ({len(versions)})", icon=":material/history:"):
        st.dataframe(
            [
                {
                    "version": f"v{v.version}",
                    "saved": labels.when(v.saved_at),
                    "": "newest" if v.is_current else "",
                }
                for v in versions
            ],
            hide_index=True,
            key="p_versions_table",
        )
        older = [v.version for v in versions if v.version != newest]
        chosen = st.selectbox(
            "Compare with the newest", older, key="p_version_pick", format_func=lambda n: f"v{n}"
        )
        if chosen is not None:
            st.code(lib.diff(name, chosen, newest) or "(no difference)", language="diff")
            a, b = st.columns(2)
            a.button(
                f"Open v{chosen} in the editor",
                key="btn_open_version",
                on_click=open_version,
                args=(name, chosen),
            )
            b.button(
                f"Restore v{chosen} as v{newest + 1}",
                key="btn_restore_version",
                on_click=restore,
                args=(name, chosen),
            )


def main() -> None:
    _state.through_the_app()
    st.title("Prompt")
    lib = library()
    picker(lib)
    versions_section(lib)
    lead, _ = _leads.lead_file()
    df = lead.df if lead is not None else None
    columns = [str(c) for c in df.columns] if df is not None else []
    draft = _state.ws().draft
    try:
        spec = draft.spec()
    except ValueError as exc:
        spec = None
        problem = str(exc)
    fits = False
    if df is not None and spec is not None and spec.template.strip():
        fits = _fit.fit_section(spec, columns)
    left, right = st.columns([5, 7], gap="large")
    with left:
        editor(columns)
        if spec is None:
            st.error(labels.md_escape(problem))
        save(spec)
    with right:
        if df is None:
            st.info("Upload a lead list to fit the prompt to its columns and try it on a few rows.")
            _state.page_link("data", "Go to Data", ":material/upload_file:")
        elif spec is None or not spec.template.strip():
            st.info("Write the user message template to try the prompt.")
        else:
            _workbench.workbench(df, fits)
    if df is None or spec is None or not fits:
        return
    st.divider()
    run_spec = _draft.run_spec()
    with st.expander("Exact messages for one row", icon=":material/code:"):
        preview(run_spec, df)
    show_quote(run_spec, df)
    _state.page_link("run", "Next: run it on the whole list", ":material/arrow_forward:")


main()
