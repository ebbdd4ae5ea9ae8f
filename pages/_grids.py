"""Grids with the answers in view: identifying columns pinned, then the answers; one row read in full;
the choice of identifying columns (kept in the workspace)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from lib.store import RowRecord
from lib.views import live_table
from pages import _state


def grid_layout(
    frame: pd.DataFrame, outputs: list[str], after: list[str] | None = None
) -> tuple[list[str], dict]:
    """(column order, column config) for st.dataframe / st.data_editor (lib.views.live_table.grid_layout);
    `after`: a research run's columns (sources, web_search_calls, answer_shared), right after the answers."""
    after = after or []
    layout = live_table.grid_layout(frame.columns, outputs, _state.ws().settings.id_columns, after)
    config: dict = {"_index": st.column_config.NumberColumn("row", disabled=True, pinned=True, width="small")}
    for c in layout.ids:
        config[c] = st.column_config.TextColumn(c, pinned=True)
    for c in layout.answers:
        config[c] = st.column_config.TextColumn(c, width="large", pinned=layout.pin_answers)
    for c in after:
        if c in frame.columns and str(frame[c].dtype) in ("string", "object"):
            config[c] = st.column_config.TextColumn(c, width="medium", disabled=True)
    return layout.order, config


def row_sources(rows: Mapping[int, RowRecord], ids: list[int], key: str) -> None:
    """The pages one row's answer cites (web research): title, address (a link) and the cited words."""
    cited = [i for i in ids if rows.get(i) is not None and rows[i].sources]
    with st.expander("Sources of one row", icon=":material/link:"):
        if not cited:
            st.caption("No answer here cites a source yet.")
            return
        row_id = st.selectbox("Row", cited, key=key, format_func=lambda i: f"row {i}")
        if row_id is None:
            return
        sources = rows[row_id].sources
        st.caption(f"Row {row_id} cites {len(sources)} page{'s' if len(sources) != 1 else ''}:")
        st.dataframe(
            pd.DataFrame(
                {
                    "title": [s.title for s in sources],
                    "address": [s.url for s in sources],
                    "cited for": [s.quote for s in sources],
                },
                dtype="string",
            ),
            hide_index=True,
            key=f"{key}_table",
            column_config={"address": st.column_config.LinkColumn("address", width="large")},
        )


def row_detail(frame: pd.DataFrame, outputs: list[str], key: str) -> None:
    """One row in full (long answers are cut in the grid), as plain text."""
    if frame.empty:
        return
    with st.expander("Read one row in full", icon=":material/article:"):
        ids = [int(i) for i in frame.index]
        row_id = st.number_input("Row", min_value=min(ids), max_value=max(ids), value=ids[0], step=1, key=key)
        if row_id not in frame.index:
            st.caption(f"Row {row_id} is not in this table (filtered out or never read).")
            return
        row = frame.loc[row_id]
        for c in [*outputs, *[c for c in frame.columns if c not in outputs]]:
            value = row[c]
            if isinstance(value, str) and value:
                st.caption(c)
                st.text(value)  # plain text: lead text and answers are never rendered as HTML or Markdown


def id_column_picker(columns: list[str]) -> None:
    """Which columns identify a lead in the grids (kept in the workspace)."""
    current = live_table.id_columns(columns, _state.ws().settings.id_columns)
    st.session_state["w_id_columns"] = current

    def write() -> None:
        chosen = list(st.session_state.get("w_id_columns") or [])
        _state.update(lambda w: w.set_setting("id_columns", chosen))

    st.multiselect(
        "Columns shown before the answers",
        columns,
        key="w_id_columns",
        on_change=write,
        max_selections=live_table.MAX_ID_COLUMNS,
        help="They stay pinned on the left of every grid, so you can tell which lead an answer is for.",
    )
