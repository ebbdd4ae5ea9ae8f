"""`python -m lib run|check` and lead files (issue 12): ragged rows refused unless --skip-bad-rows, --encoding,
--csv-for, and every generated CRM export (tests/crm_exports.py) through a real run to the export."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from lib.store import Store
from tests import crm_exports as C
from tests import leadfiles as L
from tests.test_cli import cli, summary

RAGGED = L.ragged_csv()  # an unquoted comma on line 4, a short line 6


@pytest.mark.parametrize("command", ["run", "check"])
def test_ragged_rows_are_refused_with_exit_2_and_their_lines(sim, tmp_path, command):
    source = tmp_path / "ragged.csv"
    source.write_bytes(RAGGED)
    extra = ["--output", str(tmp_path / "o.csv")] if command == "run" else []
    proc = cli(
        command, str(source), *extra, "--template", "Hi {{ First Name }}", sim_url=sim.url, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: ragged.csv: Line 4 has 5 fields but the header has 4 (line 1). Also line 6." in proc.stderr
    assert "Or run again with --skip-bad-rows to leave those lines out." in proc.stderr
    assert sim.ledger() == [] and not (tmp_path / "o.csv").exists()


def test_skip_bad_rows_lists_them_on_stderr_and_in_the_summary(sim, tmp_path):
    source = tmp_path / "ragged.csv"
    source.write_bytes(RAGGED)
    out = tmp_path / "o.csv"
    proc = cli("run", str(source), "--output", str(out), "--template", "Hi {{ First Name }}", "--skip-bad-rows",
               "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "skipped line 4: has 5 fields but the header has 4: Cy,Young,Acme, Inc.,cy@acme.com" in proc.stderr
    assert "skipped line 6: has 3 fields but the header has 4: Ed,Stone,ed@stone.com" in proc.stderr
    result = summary(proc)
    assert [(r["line"], r["reason"]) for r in result["rejected_lines"]] == [
        (4, "has 5 fields but the header has 4"),
        (6, "has 3 fields but the header has 4"),
    ]
    assert result["rows"] == 4 and result["succeeded"] == 4
    first_names = [r[0] for r in csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig")))][1:]
    assert first_names == ["Ann", "Bob", "Di", "Flo"]


def test_encoding_is_chosen_on_the_command_line_and_kept_with_the_run(sim, tmp_path):
    source = tmp_path / "leads.csv"
    source.write_bytes(L.csv_bytes([["Name", "City"], ["Ana", "São Paulo"]], encoding="cp1252"))
    checked = cli("check", str(source), "--template", "{{ City }}", sim_url=None, key=None, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    detected = summary(checked)
    assert (detected["encoding"], detected["encoding_uncertain"]) == ("cp1252", True)
    assert "note: The file is not UTF-8 and its encoding is not certain" in checked.stderr

    out = tmp_path / "o.json"
    data = tmp_path / "data"
    proc = cli("run", str(source), "--output", str(out), "--template", "{{ City }}", "--encoding", "cp1250",
               "--data-dir", str(data), "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert (result["encoding"], result["detected_encoding"]) == ("cp1250", "cp1252")
    assert '"City": "Săo Paulo"' in out.read_text("utf-8")
    store = Store(data)
    (record,) = store.runs()
    assert (record.meta["input_encoding"], record.meta["input_encoding_chosen"]) == ("cp1250", True)
    store.close()


def test_an_unknown_encoding_name_is_a_clear_error(sim, tmp_path):
    source = tmp_path / "leads.csv"
    source.write_bytes(b"Name\r\nAnn\r\n")
    proc = cli("check", str(source), "--template", "{{ Name }}", "--encoding", "klingon", sim_url=None, key=None,
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert "'klingon' is not an encoding this app knows" in proc.stderr


@pytest.mark.parametrize(
    ("csv_for", "phone", "guarded"), [("spreadsheet", "'+1 (555) 0123", 2), ("crm", "+1 (555) 0123", 0)]
)
def test_csv_for_a_spreadsheet_or_a_crm(sim, tmp_path, csv_for, phone, guarded):
    source = tmp_path / "leads.csv"
    source.write_bytes(L.csv_bytes([["Name", "Phone"], ["Ann", "+1 (555) 0123"], ["Bob", "=1+1"]]))
    out = tmp_path / "o.csv"
    proc = cli("run", str(source), "--output", str(out), "--template", "{{ Name }}", "--csv-for", csv_for,
               "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert rows[1][1] == phone
    assert rows[2][1] == ("'=1+1" if csv_for == "spreadsheet" else "=1+1")
    assert (summary(proc)["csv_for"], summary(proc)["cells_guarded"]) == (csv_for, guarded)


@pytest.mark.parametrize("export", C.all_exports(), ids=lambda e: e.name)
def test_crm_exports_run_to_an_export_with_their_exact_text(sim, tmp_path, export):
    source = tmp_path / export.filename
    source.write_bytes(export.data)
    out_csv, out_xlsx = tmp_path / "o.csv", tmp_path / "o.xlsx"
    args = ("--template", "Write to {{ " + export.header[0] + " }}.", "--quiet")
    for out, extra in ((out_csv, ("--csv-for", "crm")), (out_xlsx, ())):
        proc = cli("run", str(source), "--output", str(out), *args, *extra, sim_url=sim.url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        result = summary(proc)
        assert result["rows"] == len(export.rows) and result["succeeded"] == len(export.rows)
        assert [(s["line"], s["reason"]) for s in result["set_aside_lines"]] == export.set_aside
    width = len(export.header)
    got_csv = list(csv.reader(io.StringIO(out_csv.read_bytes().decode("utf-8-sig"), newline="")))
    assert [r[:width] for r in got_csv] == [export.header, *export.rows]
    sheet = openpyxl.load_workbook(out_xlsx).active
    got_xlsx = [["" if v is None else v for v in r][:width] for r in sheet.iter_rows(values_only=True)]
    # XLSX keeps text exactly; a CR inside a cell becomes Excel's line break "\n" (lib/export.py).
    assert got_xlsx == [
        [c.replace("\r\n", "\n").replace("\r", "\n") for c in r] for r in [export.header, *export.rows]
    ]
