"""The Prompt page's "fit to this file" table: each placeholder, the column it reads, confirmed in one click.

The suggestions and the statuses are lib/prompts/mapping.py's; the choice is kept in the workspace
(`mapping`), not in the prompt, so the library prompt keeps its own names for the next file.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.prompts import mapping
from lib.prompts.templates import PromptSpec
from lib.views import labels
from lib.views.workbench_view import SEND_EMPTY
from lib.workbench.tries import with_choices
from lib.workspace import Workspace
from pages import _state

STATUS_ICON = {
    "matches": "✓",
    "mapped": "✓",
    "suggested": "?",
    "optional, sent empty": "○",
    "missing": "✗",
}


def table(fit: mapping.Fit, w: Workspace) -> pd.DataFrame:
    rows = []
    for r in fit.rows:
        chosen = w.mapping.get(r.placeholder)
        status, note = r.status, r.note
        if chosen == "":
            column, status, note = SEND_EMPTY, "optional, sent empty", "Sent empty, as you chose."
        else:
            column = chosen or r.column or ""
        if status == "optional, sent empty" and not column:
            column = SEND_EMPTY
        rows.append(
            {
                "Placeholder": r.placeholder,
                "Column in this file": column,
                "Status": f"{STATUS_ICON.get(status, '')} {status}",
                "Note": note,
            }
        )
    return pd.DataFrame(rows, columns=["Placeholder", "Column in this file", "Status", "Note"])


def _edited(key: str, frame: pd.DataFrame) -> dict[str, str]:
    """The placeholders whose column the user changed in the table, and the column chosen."""
    edited = (st.session_state.get(key) or {}).get("edited_rows", {})
    return {
        frame["Placeholder"].iloc[int(index)]: change["Column in this file"] or SEND_EMPTY
        for index, change in edited.items()
        if "Column in this file" in change
    }


def keep_edits(key: str, frame: pd.DataFrame) -> None:
    """A column changed in the table is the user's choice at once (its status follows); the suggestions
    still wait for "Use these columns"."""
    _save(_edited(key, frame))


def confirm(key: str, frame: pd.DataFrame) -> None:
    """'Use these columns': the table as shown, with the user's changes, becomes the workspace's mapping."""
    chosen = dict(zip(frame["Placeholder"], frame["Column in this file"], strict=True))
    chosen.update(_edited(key, frame))
    _save(chosen)
    st.session_state.pop(FIT_OPEN, None)


def _save(chosen: dict[str, str]) -> None:

    def change(w: Workspace) -> None:
        new = dict(w.mapping)
        for placeholder, column in chosen.items():
            if column == SEND_EMPTY:
                new[placeholder] = ""
            elif column and column != placeholder:
                new[placeholder] = column
            else:
                new.pop(placeholder, None)
        w.mapping = new

    if chosen:
        _state.update(change)


FIT_OPEN = "fit_open"  # "Change the columns" was pressed: show the table although the prompt fits


def reopen() -> None:
    st.session_state[FIT_OPEN] = True


def fit_section(spec: PromptSpec, columns: list[str]) -> bool:
    """The mapping table when a placeholder is not a column of this file; True when the prompt fits."""
    w = _state.ws()
    fit = mapping.fit(with_choices(spec, w.mapping), columns, w.mapping)
    chose_empty = {p for p, c in w.mapping.items() if c == ""}
    open_rows = [
        r for r in fit.rows if r.status in ("missing", "suggested") and r.placeholder not in chose_empty
    ]
    needs = [r for r in open_rows if r.status == "missing" or not r.optional]  # what blocks a try
    if not open_rows and not st.session_state.get(FIT_OPEN):
        names = set(mapping.spec_placeholders(spec))
        used = {
            p: c for p, c in w.mapping.items() if p in names
        }  # entries of an earlier template don't count
        if used:
            moved = ", ".join(f"{p} → {c or SEND_EMPTY}" for p, c in used.items())
            st.caption(f"Fitted to this file: {labels.md_escape(moved)}.")
            st.button("Change the columns", key="btn_fit_reset", on_click=reopen)
        else:
            st.success("Every placeholder matches a column.", icon=":material/check:")
        for note_text in fit.example_notes:
            st.caption(":material/info: " + labels.md_escape(note_text))
        return not needs
    with st.container(border=True):
        st.markdown("**Fit the prompt to this file**")
        if open_rows:
            fields = (
                "1 field of this prompt has"
                if len(open_rows) == 1
                else f"{len(open_rows)} fields of this prompt have"
            )
            st.caption(
                f"{fields} another name in this file, or none. Check the suggested columns (pick another in "
                "the table if one is wrong), then use them."
            )
        else:
            st.caption("Pick another column in the table to change what a placeholder reads.")
        frame = table(fit, w)
        key = f"fit_{abs(hash((tuple(frame['Placeholder']), tuple(frame['Column in this file']))))}"
        st.data_editor(
            frame,
            key=key,
            hide_index=True,
            disabled=["Placeholder", "Status", "Note"],
            column_config={
                "Column in this file": st.column_config.SelectboxColumn(
                    options=[*columns, SEND_EMPTY], required=False
                )
            },
            width="stretch",
            on_change=keep_edits,
            args=(key, frame),
        )
        st.button(
            "Use these columns",
            key="btn_fit_use",
            type="primary",
            on_click=confirm,
            args=(key, frame),
        )
        for note_text in fit.example_notes:
            st.caption(":material/info: " + labels.md_escape(note_text))
    return not needs
