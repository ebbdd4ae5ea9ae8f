"""The cost quote of the whole table (cached by table, prompt, options and sample) and its figures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.engine import runs
from lib.prompts.library import dump_spec
from lib.prompts.templates import PromptSpec
from lib.views import prompt_draft
from pages import _leads


@st.cache_data(max_entries=32, show_spinner="Counting tokens…")
def _quote(
    table_digest: str,
    spec_yaml: str,
    option_values: tuple,
    sample: tuple[int, ...],
    reasoning: tuple[int, ...],
    _df,
    _spec,
):
    model_name, max_tokens, temperature, empty, price, effort, max_tool_calls, searches = option_values
    options = runs.RunOptions(
        model=model_name,
        max_tokens=max_tokens,
        temperature=temperature,
        empty=empty,
        price=price,
        reasoning_effort=effort,
        max_tool_calls=max_tool_calls,
    )
    return prompt_draft.quote_table(_df, _spec, options, sample, reasoning, searches)


def quote(
    df: pd.DataFrame,
    spec: PromptSpec,
    options: runs.RunOptions,
    sample: tuple[int, ...] = (),
    reasoning: tuple[int, ...] = (),
    searches: tuple[int, ...] = (),
):
    """The cost quote for the whole table, cached by table, prompt, options and sample (with web research,
    `searches`: the sample's billed web search calls a row)."""
    values = (
        options.model,
        options.max_tokens,
        options.temperature,
        options.empty,
        options.price,
        options.reasoning_effort,
        options.max_tool_calls,
        tuple(searches),
    )
    return _quote(_leads.lead_digest(), dump_spec(spec), values, tuple(sample), tuple(reasoning), df, spec)


def quote_metrics(q) -> None:
    """The quote's figures, two to a row so no value is cut off."""
    items = list(prompt_draft.quote_lines(q).items())
    for i in range(0, len(items), 2):
        cols = st.columns(2)
        for col, (label, value) in zip(cols, items[i : i + 2], strict=False):
            col.metric(label, value)
