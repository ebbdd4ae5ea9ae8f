"""Property: any text in any cell survives read -> render -> run (local server) -> export -> read back.

The only change allowed is the documented formula guard: in CSV and XLSX a cell that would start with
= + - @ tab or CR carries one leading apostrophe (lib/export.py), and XLSX's own limits (a CR becomes a
line break, XML-illegal controls are dropped: `export._xlsx_text`). JSON keeps the raw text.
The reader's own properties (every table reads back exactly) are in tests/test_leads.py.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile

import openpyxl
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lib import engine, export
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import STATUS_COLUMNS, RunOptions, plan_run, results_frame
from lib.export import GUARD, guard_cell
from lib.leads import read_leads
from lib.prompts.templates import FIELD_CAP, PromptSpec, fence
from lib.sim import expected_reply
from lib.store import Store
from tests import leadfiles as L

# Any character but NUL (CSV cannot mean it; the reader removes it) and lone surrogates (not encodable).
CELL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=16)
# Header names as the reader keeps them: stripped, non-blank, no leading BOM (see tests/test_leads.py).
NAME = CELL.map(str.strip).filter(lambda s: s and not s.startswith("\ufeff"))
PLACEHOLDER_UNSAFE = set('{}"\n\\')  # such a header cannot be written as {{ Name }} (lib/templates.py)


def unguard(cell: str, original: str) -> str:
    """Undo the guard: strip exactly one apostrophe where guard_cell would have added one."""
    if guard_cell(original) != original:
        assert cell.startswith(GUARD), f"{original!r} left unguarded as {cell!r}"
        return cell[len(GUARD) :]
    return cell


@st.composite
def lead_tables(draw) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    # The guard may map "=a" and "'=a" to one header; a results column must not share an input's name.
    assume(len({guard_cell(h) for h in header}) == len(header))
    assume(not set(header) & {*STATUS_COLUMNS, "output"})
    rows = draw(st.lists(st.lists(CELL, min_size=len(header), max_size=len(header)), min_size=1, max_size=5))
    assume(any("".join(r).strip() for r in rows))  # rows of blanks only are not rows (documented)
    return header, rows


def template_for(header: list[str]) -> str:
    usable = [h for h in header if not set(h) & PLACEHOLDER_UNSAFE]
    return "Lead: " + " | ".join(f"{{{{ {h} }}}}" for h in usable) if usable else "Describe a lead."


def run_on_sim(sim, df: pd.DataFrame, spec: PromptSpec) -> tuple[engine.RunPlan, pd.DataFrame]:
    p = plan_run(df, spec, RunOptions(model="gpt-4o-mini", max_tokens=200), base_url=sim.url)
    with tempfile.TemporaryDirectory() as folder:
        job = engine.Job(p, endpoint=Endpoint(api_key="sk-test-roundtrip", base_url=sim.url),
                         store=Store(folder), settings=engine.RunSettings(workers=4, timeout_s=5),
                         governor=Governor()).start()  # fmt: skip
        assert job.wait(30)
        rows = job.rows()
        job.store.close()
    for row in rows:  # each row got the answer to its own, exactly rendered request
        body = next(i.body for i in p.items if i.row_id == row.row_id)
        assert row.status == "succeeded" and row.text == expected_reply(body["messages"], body["model"])
    return p, results_frame(p.inputs, rows, p.meta)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
@given(table=lead_tables())
def test_any_cell_text_survives_read_run_export_and_reading_back(sim, table):
    header, rows = table
    # The delimiter is given: a one-column file whose header holds ";" is ambiguous to any sniffer
    # (detection has its own property in tests/test_leads.py). Our export is re-read below without it.
    leads = read_leads(L.csv_bytes([header, *rows]), "leads.csv", delimiter=",")
    kept = [r for r in rows if "".join(r).strip()]
    assert [list(r) for r in leads.df.itertuples(index=False)] == kept  # the reader: exact text

    spec = PromptSpec(name="roundtrip", template=template_for(header))
    p, frame = run_on_sim(sim, leads.df, spec)
    # The renderer: every placeholder's cell, trimmed, inside its own fence, in template order.
    usable = [h for h in header if not set(h) & PLACEHOLDER_UNSAFE]
    for item in p.items:
        cells = p.inputs[item.row_id]
        user = item.body["messages"][-1]["content"]
        expected = " | ".join(fence(cells[h].strip(), FIELD_CAP) for h in usable)
        assert user == ("Lead: " + expected if usable else "Describe a lead.")

    width = len(header)
    # JSON: raw text, untouched.
    records = json.loads(export.export_bytes(frame, "json"))
    assert [[rec[h] for h in header] for rec in records] == kept

    # CSV, read with the csv module: the guard and nothing else.
    data = export.export_bytes(frame, "csv")
    table_back = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert table_back[0][:width] == [guard_cell(h) for h in header]
    assert [[unguard(c, o) for c, o in zip(r[:width], k, strict=True)] for r, k in zip(table_back[1:], kept, strict=True)] == kept  # fmt: skip

    # CSV, re-read through our own reader: the same.
    again = read_leads(data, "results.csv")
    assert list(again.df.columns[:width]) == [guard_cell(h) for h in header]
    back = [list(r)[:width] for r in again.df.itertuples(index=False)]
    assert [
        [unguard(c, o) for c, o in zip(r, k, strict=True)] for r, k in zip(back, kept, strict=True)
    ] == kept

    # CSV to import into a CRM: exact text, no guard at all.
    crm = export.export_bytes(frame, "csv", csv_for="crm")
    crm_back = list(csv.reader(io.StringIO(crm.decode("utf-8-sig"), newline="")))
    assert [r[:width] for r in crm_back] == [header, *kept]

    # XLSX: exact text (strings are never evaluated) within XLSX's documented limits, and no formula.
    sheet = openpyxl.load_workbook(io.BytesIO(export.export_bytes(frame, "xlsx"))).active
    values = [list(r)[:width] for r in sheet.iter_rows(values_only=True)]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    assert all(c.data_type == "s" for row in sheet.iter_rows() for c in row if isinstance(c.value, str))
    expected_xlsx = [[export._xlsx_text(v)[0] or None for v in r] for r in [header, *kept]]
    assert values == expected_xlsx
