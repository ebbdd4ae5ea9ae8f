"""The side-by-side table of a compare, as a file holds it: the sample's input columns, then each variant's
answer column(s), then, for a variant with failed or flagged rows, its notes. Pure: lib objects in, a frame out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lib.engine.runs import unique_names
from lib.prompts import templates
from lib.store import RowRecord
from lib.views.live_table import TEXT
from lib.workbench.variants import VariantRun

ROW_ID = "row_id"


def answer_columns(run: VariantRun) -> list[str]:
    """A variant's answer column names before de-duplication: its name, or 'name: field' per output field."""
    columns = run.variant.spec.output_columns
    if not templates.is_structured(run.variant.spec):
        return [run.variant.name]
    return [f"{run.variant.name}: {c}" for c in columns]


def _answers(run: VariantRun, row: RowRecord | None) -> list[str]:
    spec = run.variant.spec
    if row is None or row.text is None:
        return [""] * len(answer_columns(run))
    if not templates.is_structured(spec):
        return [row.text]
    parsed = templates.parse_output(spec, row.text)
    if parsed.error:  # the answer is not the asked-for JSON: keep all of it in the first column
        return [row.text] + [""] * (len(spec.output_columns) - 1)
    return [parsed.values.get(c, "") for c in spec.output_columns]


def _note(row: RowRecord | None) -> str:
    if row is None or row.status == "pending":
        return "Not answered."
    return row.error or ""


def side_by_side(inputs: pd.DataFrame, row_ids: Sequence[int], runs: Sequence[VariantRun]) -> pd.DataFrame:
    """One line per sample row (in `row_ids` order): row_id, the input cells as text, each variant's answer."""
    input_columns = [str(c) for c in inputs.columns]
    wanted: list[str] = [ROW_ID]
    per_run: list[tuple[list[str], str | None]] = []
    for run in runs:
        by_id = {r.row_id: r for r in run.rows}
        noted = any(_note(by_id.get(i)) for i in row_ids)
        names = answer_columns(run)
        note = f"{run.variant.name}: note" if noted else None
        per_run.append((names, note))
        wanted += names + ([note] if note else [])
    renamed = unique_names(wanted, input_columns)  # an answer never overwrites an input column
    data: dict[str, list] = {renamed[ROW_ID]: [int(i) for i in row_ids]}
    frame = inputs.loc[list(row_ids)]
    for column, original in zip(input_columns, inputs.columns, strict=True):
        data[column] = ["" if pd.isna(v) else str(v) for v in frame[original].tolist()]
    for run, (names, note) in zip(runs, per_run, strict=True):
        by_id = {r.row_id: r for r in run.rows}
        values = [_answers(run, by_id.get(i)) for i in row_ids]
        for k, name in enumerate(names):
            data[renamed[name]] = [v[k] for v in values]
        if note:
            data[renamed[note]] = [_note(by_id.get(i)) for i in row_ids]
    out = pd.DataFrame(data)
    return out.astype({c: TEXT for c in out.columns if c != renamed[ROW_ID]})
