"""The run page's live grid: updated in place row by row, it must always equal a grid built from scratch."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.cost.pricing import Usage
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.templates import PromptSpec
from lib.store import RowRecord
from lib.views.live_table import LiveTable

SCHEMA = {
    "type": "object",
    "properties": {"industry": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["industry", "confidence"],
}


def make_plan(n: int, spec: PromptSpec):
    df = pd.DataFrame(
        {"Company": [f"Co {i}" for i in range(1, n + 1)], "Zip": [f"0{i:04d}" for i in range(1, n + 1)]}
    )
    df.index = pd.RangeIndex(1, n + 1, name="row_id")
    return plan_run(df, spec, RunOptions(model="gpt-4o-mini", max_tokens=50), base_url="http://x.invalid/v1")


def answered(row_id: int, text: str, status: str = "succeeded", flags=()) -> RowRecord:
    return RowRecord(row_id, status, text, flags=tuple(flags), usage=Usage(10, 5), cost_usd=0.0001)


PLAIN = PromptSpec(name="plain", template="Hi {{ Company }}")
STRUCTURED = PromptSpec(name="structured", template="Classify {{ Company }}", json_schema=SCHEMA)

# Each step: rows that change (row id -> record or None for back to pending) and the edits after it.
STEPS = [
    ({1: "a", 2: "b"}, {}),
    ({3: "c"}, {2: {"OUT": "edited b"}}),
    ({2: "b again"}, {2: {"OUT": "edited b"}}),  # an answer arriving on an edited row keeps the edit
    ({4: "d", 5: None}, {}),  # the edit is taken back: the answer shows again
    ({}, {1: {"OUT": "e1"}, 3: {"OUT": "e3"}}),
    ({1: "failed"}, {3: {"OUT": "e3"}}),
]


@pytest.mark.parametrize(
    ("spec", "render"),
    [
        (PLAIN, lambda text: text),
        (STRUCTURED, lambda text: f'{{"industry": "{text}", "confidence": 0.5}}'),
    ],
    ids=["plain", "structured"],
)
def test_incremental_grid_equals_a_fresh_build(spec, render):
    plan = make_plan(6, spec)
    column = spec.output_columns[0]
    live = LiveTable(plan.inputs, plan.meta)
    rows = {i: RowRecord(i) for i in plan.inputs}
    live.build(list(rows.values()), {}, 0)
    for version, (changes, edits) in enumerate(STEPS, start=1):
        for row_id, text in changes.items():
            if text is None:
                rows[row_id] = RowRecord(row_id)
            elif text == "failed":
                rows[row_id] = RowRecord(row_id, "failed", error="boom", retryable=True)
            else:
                rows[row_id] = answered(row_id, render(text))
        edits = {i: {column if c == "OUT" else c: v for c, v in cells.items()} for i, cells in edits.items()}
        got = live.build(list(rows.values()), edits, version)
        fresh = LiveTable(plan.inputs, plan.meta).build(list(rows.values()), edits, version)
        pd.testing.assert_frame_equal(got, fresh)
    assert live.frame.loc[3, column] == "e3" and live.frame.loc[1, "enrich_status"] == "failed"
    assert live.frame["Zip"].tolist() == [f"0{i:04d}" for i in range(1, 7)]  # inputs untouched


def test_same_version_returns_the_cached_frame():
    plan = make_plan(3, PLAIN)
    live = LiveTable(plan.inputs, plan.meta)
    first = live.build([answered(1, "x")], {}, 7)
    assert live.build([answered(1, "something else")], {}, 7) is first


def test_a_users_price_flows_into_the_quote_the_plan_and_a_resumed_plan(data_dir):
    from lib.cost.pricing import Price
    from lib.engine.runs import resume_plan
    from lib.store import Store
    from lib.views import prompt_draft

    df = pd.DataFrame({"Company": ["Acme", "Globex"]}, index=pd.RangeIndex(1, 3, name="row_id"))
    price = Price(1.0, 0.5, 2.0)
    for given, expect in ((None, None), (price, price)):
        options = RunOptions(model="my-local-llama", max_tokens=50, price=given)
        quoted = prompt_draft.quote_table(df, PLAIN, options)
        assert (quoted.cost_high is not None) == (expect is not None)
        plan = plan_run(df, PLAIN, options, base_url="http://x.invalid/v1", run_id=f"r-{given is not None}")
        assert plan.price == expect
        Store(data_dir).create_run(plan.run_id, dict(plan.meta), [])
        assert resume_plan(Store(data_dir), plan.run_id).price == expect  # a resumed run is priced alike
