"""The Prompt page's trying half: the fixed sample, the variants side by side, ratings, and choosing one.

Draws only: the sample rules are lib/workbench/sample.py, the columns and ratings lib/workbench/state.py,
what is sent lib/workbench/tries.py, the comparison lib/workbench/compare.py, the words lib/views.
"""

from __future__ import annotations

import copy

import pandas as pd
import streamlit as st

from lib import models
from lib.engine.client import Connection
from lib.prompts.draft import Draft
from lib.views import labels, live_table, model_view, prompt_draft, run_data, workbench_view
from lib.workbench import compare, sample, state, tries
from lib.workbench.state import Variant
from lib.workspace import Workspace
from pages import _connection, _draft, _state, _tries

TRY_SHORTCUT = "Ctrl+Enter"
SAMPLE_MSG = "wb_sample_msg"  # a sample that could not be chosen, drawn in the Sample box
HOW = {
    "first": "First rows",
    "random": "Random rows",
    "ids": "Row numbers",
    "filter": "Rows matching",
}


# --- the sample ----------------------------------------------------------------------------------------


def choice_of(w: Workspace) -> sample.SampleChoice:
    data = {k: v for k, v in w.workbench.sample.items() if k in sample.SampleChoice.__dataclass_fields__}
    if not data:
        data = {"how": w.settings.sample_how, "n": int(w.settings.sample_n)}
    return sample.SampleChoice(**data)


def sample_chooser(df: pd.DataFrame) -> list[int]:
    """Which rows every variant is tried on; kept fixed until the user picks others."""
    w = _state.ws()
    choice = choice_of(w)
    if not w.workbench.row_ids:  # first visit: the first rows, so "Try" works at once
        try:
            ids = sample.choose_rows(df, choice)
        except sample.SampleError:
            ids = []
        if ids:
            w = _state.update(lambda w: w.workbench.set_sample(vars(choice), ids))
    found = len(w.workbench.row_ids)
    title = f"Sample: {sample.describe(choice)}"
    if choice.how in ("filter", "ids") or found != choice.n:
        title += f" ({found} row{'s' if found != 1 else ''})"
    ss = st.session_state
    with st.expander(title, expanded=bool(ss.get(SAMPLE_MSG))):
        _state.flash(SAMPLE_MSG)
        ss.setdefault("wb_how", choice.how)
        how = st.radio("Which rows", list(HOW), format_func=HOW.get, horizontal=True, key="wb_how")
        a, b = st.columns(2)
        ss.setdefault("wb_n", int(choice.n))
        if how != "ids":
            a.number_input("How many", min_value=1, max_value=50, step=1, key="wb_n")
        if how == "random":
            ss.setdefault("wb_seed", int(choice.seed))
            b.number_input(
                "Seed", min_value=0, step=1, key="wb_seed", help="The same seed picks the same rows."
            )
        elif how == "ids":
            ss.setdefault("wb_ids", choice.ids)
            b.text_input("Row numbers", key="wb_ids", placeholder="1, 5, 9-12")
        elif how == "filter":
            columns = [str(c) for c in df.columns]
            ss.setdefault("wb_column", choice.column if choice.column in columns else columns[0])
            ss.setdefault("wb_op", choice.op)
            ss.setdefault("wb_text", choice.text)
            c, d, e = st.columns([2, 2, 3])
            c.selectbox("Column", columns, key="wb_column")
            d.selectbox(
                "Condition",
                ["contains", "equals", "starts with", "is empty", "is not empty"],
                key="wb_op",
                label_visibility="hidden",
            )
            e.text_input("Text", key="wb_text", placeholder="VP")
        st.button("Use these rows", key="btn_wb_sample", on_click=set_sample, args=(df,))
        st.caption(
            "Every variant is tried on the same rows, so the comparison is fair. Answers already paid for "
            "are reused: the same request costs nothing the second time."
        )
    return list(_state.ws().workbench.row_ids)


def set_sample(df: pd.DataFrame) -> None:
    ss = st.session_state
    fields = {"how": ss.get("wb_how", "first"), "n": int(ss.get("wb_n") or 5)}
    if fields["how"] == "random":
        fields["seed"] = int(ss.get("wb_seed") or 0)
    elif fields["how"] == "ids":
        fields["ids"] = ss.get("wb_ids") or ""
    elif fields["how"] == "filter":
        fields.update(
            column=ss.get("wb_column") or "", op=ss.get("wb_op") or "contains", text=ss.get("wb_text") or ""
        )
    choice = sample.SampleChoice(**fields)
    try:
        ids = sample.choose_rows(df, choice)
    except sample.SampleError as exc:
        _tries.say(str(exc), SAMPLE_MSG)
        return
    _state.update(lambda w: w.workbench.set_sample(vars(choice), ids))


def replacement_offer(df, conn: Connection, row_ids: list[int], fits: bool) -> None:
    """A prompt on a model that is shutting down: try it on OpenAI's suggested replacement, beside the answers
    already there (the liked ones are the reference; 'Only differing rows' shows what changes)."""
    w = _state.ws()
    model = w.effective_model()
    status = models.retirement(model)
    if status.state == "current" or not status.replacement or status.replacement == model:
        return
    already = any(v.model == status.replacement for v in w.workbench.variants)
    st.warning(status.words(), icon=":material/event_busy:")
    if already:
        st.caption(
            f"The {status.replacement} column is beside the others: compare the answers you liked with its "
            "answers (Only differing rows), then Use this."
        )
        return
    if st.button(
        f"Try on {status.replacement}",
        key="btn_wb_replacement",
        icon=":material/swap_horiz:",
        disabled=conn.endpoint is None or not fits or not row_ids,
        help="The same prompt and sample on the suggested model, at effort none; your ratings stay on the "
        "answers they were given, so the liked answers are the reference.",
    ):
        draft = copy.deepcopy(w.draft or Draft())
        base = _tries.draft_variant(w, draft)
        base.model, base.kind = status.replacement, "model"
        base.label = f"{draft.name} · {status.replacement}"
        base.reasoning_effort = "none" if "none" in models.model_info(status.replacement).efforts else None
        if not models.model_info(status.replacement).supports_temperature:
            base.temperature = None
        _tries.add_variant(df, conn, row_ids, base)
        st.rerun()


def add_variant_form(df, conn: Connection, row_ids: list[int]) -> None:
    """Another column: a saved version, or the draft on another model, temperature or packing."""
    w = _state.ws()
    with st.expander("Add a variant to compare", icon=":material/add:"):
        kinds = ["Another model", "Another effort", "Another temperature", "Several rows per request"]
        info = models.model_info(w.effective_model())
        if info.known and not info.supports_temperature:
            kinds.remove("Another temperature")  # the model refuses one: that column would send the same
        if info.known and not info.reasoning:
            kinds.remove("Another effort")
        versions = _draft.prompt_versions(w.prompt_source)
        if versions:
            kinds.insert(0, "A saved version")
        others = [n for n in _draft.prompt_library().names() if n != w.prompt_source]
        if others:
            kinds.append("Another library prompt")  # e.g. web research beside the homepage reader
        kind = st.radio("What to compare", kinds, key="wb_add_kind", horizontal=True)
        draft = copy.deepcopy(w.draft or Draft())
        base = _tries.draft_variant(w, draft)
        if kind == "A saved version":
            chosen = st.selectbox(
                "Version", [v.version for v in versions], key="wb_add_version", format_func=lambda n: f"v{n}"
            )
            spec = _draft.saved_version(w.prompt_source, chosen)
            if spec is not None:
                base = state.new_variant(
                    "version",
                    f"{spec.name} v{spec.version}",
                    Draft.of(spec),
                    model=base.model,
                    temperature=base.temperature,
                    max_tokens=base.max_tokens,
                    rows_per_request=spec.rows_per_request,
                )
        elif kind == "Another library prompt":
            name = st.selectbox("Prompt", others, key="wb_add_library")
            spec = _draft.prompt_library().load(name) if name else None
            if spec is not None:
                base = state.new_variant(
                    "model",
                    f"{spec.name} (library)",
                    Draft.of(spec),
                    model=spec.model or base.model,
                    temperature=spec.temperature,
                    max_tokens=spec.max_tokens,
                    rows_per_request=spec.rows_per_request,
                    reasoning_effort=spec.reasoning_effort,
                )
                st.caption(
                    "Another prompt over the same rows: compare the answers, their sources and the cost a row "
                    "(its fields must fit this file's columns)."
                )
        elif kind == "Another model":
            model = st.text_input("Model", value="gpt-4.1-mini", key="wb_add_model")
            base.model = model.strip() or base.model
            base.kind, base.label = "model", f"{draft.name} · {base.model}"
            if not models.model_info(base.model).supports_temperature:
                base.temperature = None
        elif kind == "Another effort":
            choices = [c for c in model_view.effort_choices(base.model) if c != model_view.AUTO]
            now = models.effort_for(base.model, base.reasoning_effort) or choices[0]
            other = next((c for c in ("medium", "low", "high") if c in choices and c != now), choices[-1])
            effort = st.selectbox(
                "Reasoning effort",
                choices,
                index=choices.index(other),
                key="wb_add_effort",
                format_func=model_view.EFFORT_WORDS.get,
            )
            base.reasoning_effort = effort
            base.kind, base.label = "model", f"{draft.name} · {base.model} · effort {effort}"
            st.caption(
                "The same prompt with more or less hidden thinking: compare the answers, the reasoning tokens "
                "(billed as output) and the answers cut short."
            )
        elif kind == "Another temperature":
            temp = st.number_input("Temperature", 0.0, 2.0, value=0.2, step=0.1, key="wb_add_temp")
            base.temperature = float(temp)
            base.kind, base.label = "model", f"{draft.name} · {base.model} · temperature {temp:g}"
        else:
            n = st.number_input("Rows per request", 2, 50, value=5, step=1, key="wb_add_pack")
            base.rows_per_request = int(n)
            base.kind, base.label = "model", f"{draft.name} · {int(n)} rows per request"
            st.caption("The same prompt, several rows in one request: compare the answers and the cost.")
        if st.button("Add and try", key="btn_wb_add", type="primary", disabled=conn.endpoint is None):
            _tries.add_variant(df, conn, row_ids, base)
            st.rerun()


# --- choosing --------------------------------------------------------------------------------------------


def use_variant(key: str) -> None:
    """Make a variant the run's prompt and model settings. The settings it was tried with become the
    prompt's own defaults, so the Run page shows them as the prompt's, not as typed by the user."""

    def change(w: Workspace) -> None:
        v = w.workbench.find(key)
        if v is None:
            return
        draft = copy.deepcopy(v.draft)
        draft.rows_per_request = v.rows_per_request
        draft.model, draft.temperature, draft.max_tokens = v.model, v.temperature, v.max_tokens
        draft.reasoning_effort = v.reasoning_effort or draft.reasoning_effort
        if v.kind == "version" and w.draft is not None:
            draft.version = w.draft.version  # saved again as the next version, never over another
        w.draft = draft
        for name, value in (
            ("model", v.model),
            ("temperature", v.temperature),
            ("max_tokens", v.max_tokens),
            ("reasoning_effort", draft.reasoning_effort),
        ):
            setattr(w.settings, name, value)
            setattr(w.settings, f"{name}_set", False)  # follows the prompt, which now says this
        w.workbench.chosen = v.key
        if v.run_id:
            w.sample_run_id = v.run_id

    _state.update(change)
    _tries.say("This variant is now the run's prompt. The Run page sends it.", ok=True)


def remove_variant(key: str) -> None:
    _state.update(lambda w: w.workbench.remove(key))


def rate(request_hash: str, key: str) -> None:
    value = st.session_state.get(key)
    vote = 0 if value is None else (1 if value == 1 else -1)
    _state.update(lambda w: w.workbench.rate(request_hash, vote=vote))


def note(request_hash: str, key: str) -> None:
    text = st.session_state.get(key) or ""
    _state.update(lambda w: w.workbench.rate(request_hash, note=text))


def add_example(row_id: int, answer: str, df: pd.DataFrame) -> None:
    """A liked answer becomes a few-shot example of the draft: its row's message, then the answer."""
    w = _state.ws()
    try:
        spec = tries.variant_spec(w.draft or Draft(), _tries.context(w))
    except ValueError as exc:
        _tries.say(str(exc))
        return
    cells = {str(k): "" if v is None else str(v) for k, v in df.loc[row_id].to_dict().items()}
    example = state.example_from(spec, cells, answer)
    if w.draft is not None and example in [tuple(e) for e in w.draft.examples]:
        _tries.say("That answer is already an example.")
        return
    _state.update(lambda w: w.draft.examples.append(example))
    _tries.say(
        f"Row {row_id}'s answer is now example {len(w.draft.examples) + 1}: try again to see what it changes.",
        ok=True,
    )


# --- drawing ---------------------------------------------------------------------------------------------


def header(
    v: Variant,
    totals: compare.VariantTotals,
    list_rows: int,
    *,
    stale: bool,
    elsewhere: bool,
    chosen: bool,
    packing: str | None = None,
    stopped: str | None = None,
) -> None:
    st.markdown(f"**{labels.md_escape(v.label)}**")
    st.caption(labels.md_escape(v.settings_text()))
    if chosen:
        st.caption(":material/check_circle: The run's prompt")
    if stopped:
        st.caption(":material/error: " + labels.md_escape(stopped))
    if stale:
        st.caption(f":material/history: The prompt changed since these answers: press Try ({TRY_SHORTCUT}).")
    if elsewhere:
        st.caption(":material/swap_vert: Tried on other rows: try every variant on these rows (above).")
    else:
        for line in workbench_view.totals_lines(
            totals,
            compare.project_cost(totals, list_rows),
            list_rows,
            max_tokens=v.max_tokens,
            effort=models.effort_for(v.model, v.reasoning_effort or v.draft.reasoning_effort),
        ):
            st.caption(line)
        if packing:
            st.caption(labels.md_escape(packing))
    st.button(
        "Use this",
        key=f"btn_use_{v.key}",
        on_click=use_variant,
        args=(v.key,),
        icon=":material/check:",
        help="Make this variant the run's prompt and its model settings the run's.",
        disabled=chosen,
    )
    st.button("Remove", key=f"btn_rm_{v.key}", on_click=remove_variant, args=(v.key,), type="tertiary")


def cell(
    v: Variant, c: compare.Cell, row: dict, df: pd.DataFrame, spec_checks, record_hash: str | None
) -> None:
    if c.text:
        st.text(c.text)  # model output: plain text, never HTML or Markdown
    elif c.status == "failed":
        st.text("(no answer)")
    st.caption(labels.md_escape(workbench_view.cell_caption(c)))
    if c.sources:
        st.caption("Sources")
        st.text(workbench_view.cell_sources(c))  # addresses as plain text: never rendered as links here
    problems = workbench_view.cell_problems(c, spec_checks, row)
    for problem in problems:
        st.caption(":warning: " + labels.md_escape(problem))
    if not c.text or not record_hash:
        return
    w = _state.ws()
    rating = w.workbench.rating(record_hash)
    key = f"fb_{v.key}_{c.row_id}"
    st.session_state[key] = None if rating.vote == 0 else (1 if rating.vote > 0 else 0)
    st.feedback("thumbs", key=key, on_change=rate, args=(record_hash, key))
    note_key = f"note_{v.key}_{c.row_id}"
    st.session_state[note_key] = rating.note
    st.text_input(
        "Note",
        key=note_key,
        on_change=note,
        args=(record_hash, note_key),
        placeholder="Why?",
        label_visibility="collapsed",
    )
    if rating.vote > 0:
        if problems:
            st.caption(
                "As an example it would teach the model what the checks above flag: edit it once added."
            )
        st.button(
            "Add as example",
            key=f"btn_ex_{v.key}_{c.row_id}",
            on_click=add_example,
            args=(c.row_id, c.text, df),
            icon=":material/school:",
        )


def matrix(df: pd.DataFrame, row_ids: list[int], draft_fp: str | None, running: set[str]) -> None:
    """The columns side by side, row by row; a column whose try is `running` is in the try panel until it ends."""
    w = _state.ws()
    shown = [v for v in w.workbench.variants if v.run_id and v.key not in running]
    if not shown:
        if not running:
            st.caption(f"Press Try ({TRY_SHORTCUT}) to answer these rows with the prompt as it stands.")
        return
    answers = {v.key: _tries.rows_of(v.run_id) for v in shown}
    hashes = {(k, r.row_id): r.request_hash for k, rows in answers.items() for r in rows}
    m = compare.build_matrix(row_ids, answers)
    differing = compare.differing_rows(m)
    a, b = st.columns([2, 3], vertical_alignment="center")
    _state.bind(
        a.toggle,
        "Only differing rows",
        "workbench.only_differing",
        key="wb_only_diff",
        disabled=len(shown) < 2,
    )
    b.caption(workbench_view.differing_text(len(differing), len(row_ids)) if len(shown) > 1 else "")
    ids = differing if w.workbench.only_differing and len(shown) > 1 else row_ids
    heads = st.columns(len(shown))
    all_totals = {v.key: compare.totals(m, v.key, v.model) for v in shown}
    for col, v in zip(heads, shown, strict=True):
        with col:
            header(
                v,
                all_totals[v.key],
                len(df),
                stale=w.workbench.stale(v, draft_fp),
                elsewhere=w.workbench.needs_try(v),
                chosen=w.workbench.chosen == v.key,
                packing=packing_note(v, shown, answers, all_totals),
                stopped=workbench_view.stopped_text(run_data.run_state(_state.store(), v.run_id)),
            )
    id_cols = live_table.id_columns([str(c) for c in df.columns], w.settings.id_columns)
    checks = {v.key: v.draft.checks for v in shown}
    for row_id in ids:
        if row_id not in df.index:
            continue
        row = {str(k): "" if x is None else str(x) for k, x in df.loc[row_id].to_dict().items()}
        with st.container(border=True):
            st.caption(labels.md_escape(workbench_view.row_title(row_id, row, id_cols)))
            cols = st.columns(len(shown))
            for col, v in zip(cols, shown, strict=True):
                with col:
                    cell(
                        v,
                        m.cells.get((v.key, row_id)) or compare.pending_cell(row_id),
                        row,
                        df,
                        checks[v.key],
                        hashes.get((v.key, row_id)),
                    )
    word_diff(m, shown, ids)


def packing_note(v: Variant, shown: list[Variant], answers: dict, all_totals: dict) -> str | None:
    """For a packed variant: the saving and the answers against the newest same-model unpacked one."""
    if not v.rows_per_request or v.rows_per_request < 2:
        return None
    alone = [u for u in shown if u.model == v.model and (u.rows_per_request or 1) == 1]
    if not alone:
        return None
    other = max(alone, key=lambda u: u.tried_at)
    same = prompt_draft.compare_packed(answers[other.key], answers[v.key])
    return workbench_view.packing_line(
        all_totals[v.key], all_totals[other.key], other.label, same.same_answers, same.answered_both
    )


def word_diff(m: compare.Matrix, shown: list[Variant], ids: list[int]) -> None:
    if len(shown) < 2:
        return
    w = _state.ws()
    with st.expander("Word-level difference between two variants", icon=":material/difference:"):
        keys = [v.key for v in shown]
        names = {v.key: v.label for v in shown}
        pair = [k for k in w.workbench.diff_pair if k in keys] or keys[-2:]
        if len(pair) < 2:
            pair = keys[-2:]
        a, b = st.columns(2)
        st.session_state["wb_diff_a"] = pair[0]
        st.session_state["wb_diff_b"] = pair[1]
        a.selectbox("From", keys, key="wb_diff_a", format_func=names.get, on_change=set_pair)
        b.selectbox("To", keys, key="wb_diff_b", format_func=names.get, on_change=set_pair)
        st.caption("[-removed-] and {+added+} words, from the first variant's answer to the second's.")
        for row_id in ids:
            x, y = m.cells.get((pair[0], row_id)), m.cells.get((pair[1], row_id))
            if x is None or y is None or not (x.text or y.text):
                continue
            st.caption(f"row {row_id}")
            st.text(compare.diff_text(x.text or "", y.text or ""))


def set_pair() -> None:
    ss = st.session_state
    pair = [ss.get("wb_diff_a"), ss.get("wb_diff_b")]
    _state.update(lambda w: setattr(w.workbench, "diff_pair", [k for k in pair if k]))


def workbench(df: pd.DataFrame, fits: bool) -> None:
    """The right half of the Prompt page."""
    st.subheader("Try it")
    conn = _connection.connection()
    row_ids = sample_chooser(df)
    w = _state.ws()
    current = _tries.draft_variant(w)
    draft_fp = tries.fingerprint_of(df, current, _tries.context(w), row_ids) if fits else None
    clicked = st.button(
        "Try on these rows",
        key="btn_try",
        type="primary",
        shortcut=TRY_SHORTCUT,
        disabled=conn.endpoint is None or not fits or not row_ids,
        help="Send the prompt as it stands for the sample rows; earlier answers stay beside the new ones.",
    )
    _connection.sending_caption(conn)
    if not fits:
        st.caption("Fit the prompt to the file's columns first (above).")
    if clicked:
        _tries.try_draft(df, conn, row_ids, draft_fp)
    replacement_offer(df, conn, row_ids, fits)
    add_variant_form(df, conn, row_ids)
    w = _state.ws()
    elsewhere = [v for v in w.workbench.variants if v.run_id and w.workbench.needs_try(v)]
    stopped = _tries.unfinished(w)
    if elsewhere and conn.endpoint is not None:
        st.info(f"{len(elsewhere)} column(s) were tried on other rows than this sample.")
        if st.button("Try every variant on these rows", key="btn_try_all"):
            _tries.try_again(df, conn, row_ids, elsewhere)
            st.rerun()
    elif stopped and conn.endpoint is not None:
        st.info(f"{len(stopped)} column(s) stopped before every row was answered.")
        if st.button("Finish them", key="btn_try_unfinished", help="Answers already paid are reused."):
            _tries.try_again(df, conn, row_ids, stopped)
            st.rerun()
    _state.flash(_tries.MSG)
    running = _tries.running_tries(_state.ws())
    if running:
        st.fragment(_tries.try_panel, run_every="500ms")(df, [v.key for v in running])
    matrix(df, row_ids, draft_fp, {v.key for v in running})
