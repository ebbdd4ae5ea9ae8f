"""`python -m lib compare` end to end: real subprocesses against the local server."""

from __future__ import annotations

import openpyxl
import pytest

from lib.cost.pricing import Usage, cost, price_for
from lib.store import Store
from tests.leadfiles import APOLLO_COLUMNS, apollo_csv
from tests.test_cli import cli, read_output, summary

OPENER = "Write a short opener for {{ First Name }} at {{ Company }}."
OTHER = "Say hello to {{ First Name }}, {{ Title }}."
STRUCTURED = """\
name: Scored opener
version: 1
model: gpt-4o-mini
max_tokens: 60
output_columns: [line, score]
template: 'Opener and a 1-5 fit score for {{ First Name }} at {{ Company }}.'
"""


@pytest.fixture
def leads_csv(tmp_path):
    path = tmp_path / "apollo.csv"
    path.write_bytes(apollo_csv(60))
    return path


def compare(tmp_path, leads_csv, sim, *args):
    return cli("compare", str(leads_csv), "--data-dir", str(tmp_path / "results"), *args,
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip


def billed_usd(sim) -> float:
    return sum(
        cost(Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"]), price_for(e["model"]))
        for e in sim.ledger()
    )


def test_costs_and_tokens_are_what_the_server_billed(sim, tmp_path, leads_csv):
    proc = compare(tmp_path, leads_csv, sim, "--prompt", "icebreaker", "--template", OPENER, "--rows", "4")
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert (result["rows"], result["row_ids"], result["list_rows"]) == (4, [1, 2, 3, 4], 60)
    assert result["rows_differing"] == 4 == len(result["differing_row_ids"])
    a, b = result["variants"]
    assert (a["name"], b["name"]) == ("Icebreaker", "template")
    assert [v["requests_sent"] for v in (a, b)] == [4, 4] and sim.stats()["billed"] == 8
    assert a["cost_usd"] + b["cost_usd"] == pytest.approx(billed_usd(sim), rel=1e-9)
    for v in (a, b):
        assert v["answered"] == 4 and v["failed"] == 0 and v["same_as"] is None
        assert v["mean_latency_s"] is not None and v["list_cost_usd"] == pytest.approx(v["cost_usd"] * 15)
    assert a["prompt_tokens"] + b["prompt_tokens"] == sum(e["prompt_tokens"] for e in sim.ledger())
    assert a["completion_tokens"] + b["completion_tokens"] == sum(
        e["completion_tokens"] for e in sim.ledger()
    )


def test_an_identical_variant_sends_nothing_more_and_a_repeat_sends_nothing(sim, tmp_path, leads_csv):
    args = ("--template", OPENER, "--template", OPENER, "--name", "copy", "--rows", "3")
    first = summary(compare(tmp_path, leads_csv, sim, *args))
    original, copy = first["variants"]
    assert (copy["name"], copy["same_as"], copy["requests_sent"], copy["reused_rows"]) == (
        "copy",
        "template",
        0,
        3,
    )
    assert copy["cost_usd"] == 0 and original["cost_usd"] > 0 and first["rows_differing"] == 0
    assert copy["list_cost_usd"] == pytest.approx(original["list_cost_usd"])  # projected on the paid cost
    assert sim.stats()["billed"] == 3
    again = compare(tmp_path, leads_csv, sim, *args)
    assert again.returncode == 0, again.stderr
    repeat = summary(again)
    assert sim.stats()["billed"] == 3  # the answers were paid for already
    assert [v["requests_sent"] for v in repeat["variants"]] == [0, 0]
    assert [v["cost_usd"] for v in repeat["variants"]] == [0, 0]
    assert repeat["variants"][0]["reused_rows"] == 3 and repeat["variants"][0]["mean_latency_s"] is None


def test_row_ids_choose_the_rows_in_the_order_given(sim, tmp_path, leads_csv):
    out = tmp_path / "side.csv"
    proc = compare(
        tmp_path, leads_csv, sim, "--template", OPENER, "--row-ids", "7,2,10-11", "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert summary(proc)["row_ids"] == [7, 2, 10, 11]
    rows = read_output(out)
    assert [r["row_id"] for r in rows] == ["7", "2", "10", "11"]
    assert sorted(int(e["row_id"]) for e in sim.ledger()) == [2, 7, 10, 11]
    source = read_output(leads_csv)
    assert [r["First Name"] for r in rows] == [source[i - 1]["First Name"] for i in (7, 2, 10, 11)]


@pytest.mark.parametrize(("rows", "expected"), [("2", [1, 2]), ("500", list(range(1, 61)))])
def test_rows_takes_the_first_n(sim, tmp_path, leads_csv, rows, expected):
    proc = compare(tmp_path, leads_csv, sim, "--template", OPENER, "--rows", rows, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert summary(proc)["row_ids"] == expected
    asked = {int(e["row_id"]) for e in sim.ledger()}
    assert asked <= set(expected) and sim.stats()["billed"] == len(asked)  # a duplicate lead is asked once


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", OPENER, "--row-ids", "1,x"], "--row-ids: 'x' is not a row number"),
        (["--template", OPENER, "--row-ids", "999"], "--row-ids: Row 999 is not in this file (rows 1–60)."),
        (["--template", OPENER, "--row-ids", "5-2"], "runs backwards"),
        (["--template", OPENER, "--rows", "0"], "--rows must be a whole number of at least 1"),
        (["--rows", "3"], "Give at least one --prompt NAME or --template TEXT"),
        (["--name", "a", "--template", OPENER], "--name names one variant"),
        (
            ["--template", OPENER, "--template", "Hi {{ Titel }}"],
            "Variant 'template (2)': There is no column",
        ),
        (["--template", OPENER, "--output", "x.pdf"], "--output must end in .csv, .xlsx or .json"),
        (["--prompt", "no-such-prompt"], "no-such-prompt"),
    ],
)
def test_bad_input_is_a_plain_error_and_sends_nothing(sim, tmp_path, leads_csv, args, message):
    proc = compare(tmp_path, leads_csv, sim, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert sim.stats()["billed"] == 0


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_the_table_has_the_inputs_then_one_answer_column_per_variant(sim, tmp_path, leads_csv, suffix):
    prompt = tmp_path / "scored.yaml"
    prompt.write_text(STRUCTURED, "utf-8")
    out = tmp_path / f"side{suffix}"
    # --model before any variant is the default; after a variant it is that variant's own.
    proc = compare(tmp_path, leads_csv, sim, "--model", "gpt-4o", "--prompt", str(prompt), "--model", "gpt-4o-mini",
                   "--template", OPENER, "--template", OTHER, "--temperature", "0.5", "--rows", "3",
                   "--output", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    names = [v["name"] for v in result["variants"]]
    assert names == [
        "Scored opener · gpt-4o-mini",
        "template · gpt-4o · t=default",
        "template · gpt-4o · t=0.5",
    ]
    assert [v["model"] for v in result["variants"]] == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]
    assert {e["model"] for e in sim.ledger()} == {"gpt-4o-mini", "gpt-4o"}
    rows = read_output(out)
    assert list(rows[0]) == [
        "row_id",
        *APOLLO_COLUMNS,
        f"{names[0]}: line",
        f"{names[0]}: score",
        names[1],
        names[2],
    ]
    assert all(r[names[1]].startswith("SIM[") and r[f"{names[0]}: line"] for r in rows)
    assert sum(v["cost_usd"] for v in result["variants"]) == pytest.approx(billed_usd(sim), rel=1e-9)


def test_without_output_a_readable_table_goes_to_stderr_and_json_last_on_stdout(sim, tmp_path, leads_csv):
    proc = compare(tmp_path, leads_csv, sim, "--template", OPENER, "--template", OTHER, "--rows", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and summary(proc)["output"] is None
    assert "row 1 · First Name:" in proc.stderr and "(answers differ)" in proc.stderr
    assert "diff" in proc.stderr and "[-" in proc.stderr and "{+" in proc.stderr


def test_a_slow_variant_shows_its_latency(sim, tmp_path, leads_csv):
    slow = OPENER + " [[sim:latency=300]]"
    result = summary(
        compare(tmp_path, leads_csv, sim, "--template", OPENER, "--template", slow, "--rows", "2")
    )
    fast, slow_one = result["variants"]
    assert slow_one["mean_latency_s"] >= 0.3 > fast["mean_latency_s"]


def test_a_variant_whose_every_row_failed_exits_non_zero(sim, tmp_path, leads_csv):
    out = tmp_path / "side.csv"
    broken = OPENER + " [[sim:context_length]]"
    proc = compare(tmp_path, leads_csv, sim, "--template", OPENER, "--template", broken, "--name", "broken",
                   "--rows", "3", "--output", str(out))  # fmt: skip
    assert proc.returncode == 3
    result = summary(proc)
    assert result["reason"].startswith(
        "Variant 'broken': every row failed; the first error: This row's prompt is too long"
    )
    assert result["variants"][1]["failed"] == 3 and result["variants"][0]["answered"] == 3
    rows = read_output(out)  # the table is still written, the errors in the variant's note column
    assert all(r["broken"] == "" and "too long" in r["broken: note"] for r in rows)


@pytest.mark.parametrize(("suffix", "cell"), [(".xlsx", "=1+1"), (".csv", "'=1+1")])
def test_lead_text_that_looks_like_a_formula_stays_text(sim, tmp_path, suffix, cell):
    leads = tmp_path / "formula.csv"
    leads.write_text("First Name,Company,Title\nAnn,Acme,=1+1\n", "utf-8")
    out = tmp_path / f"side{suffix}"
    proc = compare(tmp_path, leads, sim, "--template", OTHER, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert read_output(out)[0]["Title"] == cell
    if suffix == ".xlsx":
        sheet = openpyxl.load_workbook(out).active
        assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


@pytest.fixture
def hubspot_csv_path(tmp_path):
    from tests.leadfiles import hubspot_csv

    path = tmp_path / "hubspot.csv"
    path.write_bytes(hubspot_csv(12))
    return path


def test_map_fits_a_library_prompt_to_the_files_columns(sim, tmp_path, hubspot_csv_path):
    """The icebreaker reads Title and Company; HubSpot says Job Title and Company Name."""
    out = tmp_path / "side.csv"
    proc = compare(
        tmp_path, hubspot_csv_path, sim,
        "--prompt", "icebreaker", "--template", "Hello {{ First Name }} of {{ Company }}.",
        "--map", "Title=Job Title", "--map", "Company=Company Name", "--rows", "3", "--output", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert [v["answered"] for v in result["variants"]] == [3, 3]
    rows = read_output(out)
    assert len(rows) == 3
    for row in rows:
        assert row["Icebreaker"].startswith("SIM[") and row["template"].startswith("SIM[")
    store = Store(tmp_path / "results")
    try:
        runs = {r.meta.get("variant"): r for r in store.runs()}
        bodies = store.requests(runs["Icebreaker"].run_id)
    finally:
        store.close()
    job_titles = {r["Job Title"] for r in rows}
    assert all(
        any(f"Title: <data>{t}</data>" in b["messages"][-1]["content"] for t in job_titles)
        for b in bodies.values()
    )
    assert runs["Icebreaker"].meta["prompt_mapping"] == {"Title": "Job Title", "Company": "Company Name"}


@pytest.mark.parametrize(
    ("maps", "message"),
    [
        (["Company"], "--map needs PLACEHOLDER=COLUMN, got 'Company'"),
        (["Company=Company Name", "Company=Email"], "names the placeholder 'Company' twice"),
        (["Company=Firm"], "There is no column named 'Firm'"),
        (["Company=Company Name", "Nope=Email"], "no variant's prompt has the placeholder 'Nope'"),
    ],
)
def test_a_bad_map_is_a_plain_error_and_sends_nothing(sim, tmp_path, hubspot_csv_path, maps, message):
    args = [a for m in maps for a in ("--map", m)]
    proc = compare(tmp_path, hubspot_csv_path, sim, "--template", "Hi {{ Company }}", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert sim.stats()["billed"] == 0
