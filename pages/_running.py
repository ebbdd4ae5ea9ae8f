"""Every page's title, with the line under it that says what this workspace has going on
("Running: Icebreaker on 1,500 rows · 42% · $0.21 · open"), redrawn every two seconds while it goes.
The words are lib.views.running's; this module only draws them."""

from __future__ import annotations

import streamlit as st

from lib import engine
from lib.views import labels, running
from pages import _state

EVERY = "2s"


def title(text: str, page: str) -> None:
    """The page's title and, under it, the workspace's going jobs (nothing when none goes)."""
    st.title(text)
    items = running.going(_state.ws(), engine.get_job, _state.store())
    if items:
        st.fragment(_lines, run_every=EVERY)(tuple(items), page)


def _lines(items: tuple[running.Going, ...], here: str) -> None:
    """Thin, because fragments are: the lines of the jobs that were going when the page was drawn."""
    for item in running.lines(items, engine.get_job):
        text, link = st.columns([6, 1], vertical_alignment="center")
        text.caption(labels.md_escape(item.text))
        if item.page != here:
            with link:
                _state.page_link(item.page, "open", ":material/open_in_new:")
