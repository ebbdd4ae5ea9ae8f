"""Exports: formula guard in CSV/XLSX, no links or blanked cells in XLSX, round trips, atomic files."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import os
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lib import export
from lib.export import ExportError, guard_cell

# --- helpers -----------------------------------------------------------------------------------------


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> openpyxl.worksheet.worksheet.Worksheet:
    return openpyxl.load_workbook(io.BytesIO(data)).active


def xlsx_values(data: bytes) -> list[list[object]]:
    return [list(row) for row in read_xlsx(data).iter_rows(values_only=True)]


def assert_inert(sheet) -> None:
    """No formula cells and no hyperlinks anywhere in the sheet."""
    assert not sheet._hyperlinks
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
            assert cell.hyperlink is None, cell.coordinate


# --- guard -------------------------------------------------------------------------------------------

DANGEROUS = ["=1+1", "+1 555 0100", "-2+3", "@SUM(A1:A2)", "\tcmd", "\rcmd", '=HYPERLINK("http://x","y")',
             "-", "-1.2.3", "--5", "-5 apples", "+5"]  # fmt: skip
# A plain negative number is read by a spreadsheet as that number: nothing runs, so it is not guarded.
HARMLESS = ["Acme", "", " =not first", "'=already", "a=b", "1-2", "https://example.com", "Zoë", "-5", "-0.25"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_guard_cell_prefixes_formula_starts(value):
    assert guard_cell(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_guard_cell_leaves_other_text(value):
    assert guard_cell(value) == value


@pytest.mark.parametrize("value", DANGEROUS + HARMLESS)
def test_guard_is_idempotent(value):
    assert guard_cell(guard_cell(value)) == guard_cell(value)


def test_guard_frame_covers_cells_and_headers_but_not_numbers():
    df = pd.DataFrame({"=Name": ["=cmd", "ok", None], "Cost": [-1.5, 2.0, float("nan")], "N": [-3, 0, 4]})
    guarded = export.guard_frame(df)
    assert list(guarded.columns) == ["'=Name", "Cost", "N"]
    assert guarded.iloc[:, 0].tolist()[:2] == ["'=cmd", "ok"]
    assert pd.isna(guarded.iloc[2, 0])
    assert guarded["Cost"].tolist()[:2] == [-1.5, 2.0] and guarded["N"].tolist() == [-3, 0, 4]
    assert df.columns[0] == "=Name" and df.iloc[0, 0] == "=cmd"  # input untouched


# --- CSV ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", DANGEROUS + HARMLESS)
def test_csv_guards_each_cell(value):
    df = pd.DataFrame({"col": [value]})
    assert read_csv(export.to_csv_bytes(df)) == [["col"], [guard_cell(value)]]


def test_csv_header_guarded_and_format():
    df = pd.DataFrame({"=HEAD": ["a", "b"], "Note": ["x,y", 'say "hi"\nbye']})
    data = export.to_csv_bytes(df)
    assert data.split(b"\r\n")[0] == b"\xef\xbb\xbf'=HEAD,Note"
    assert data.endswith(b"\r\n")
    assert read_csv(data) == [["'=HEAD", "Note"], ["a", "x,y"], ["b", 'say "hi"\nbye']]


def test_csv_numbers_and_missing_values():
    df = pd.DataFrame({"n": [-3, 4], "f": [-0.25, float("nan")], "s": pd.Series(["-x", None], dtype="str")})
    assert read_csv(export.to_csv_bytes(df)) == [["n", "f", "s"], ["-3", "-0.25", "'-x"], ["4", "", ""]]


def test_csv_non_ascii_round_trip():
    values = ["Zoë Müller", "東京", "Ørsted A/S", "emoji 🚀", "Ελληνικά"]
    df = pd.DataFrame({"Société": values})
    assert read_csv(export.to_csv_bytes(df)) == [["Société"]] + [[v] for v in values]


def test_csv_equals_csv_of_guarded_frame():
    df = pd.DataFrame({"=a": ["=1", "-2", "ok"], "b": [1, 2, 3]})
    assert export.to_csv_bytes(df) == export.to_csv_bytes(export.guard_frame(df))


def test_csv_does_not_write_index():
    df = pd.DataFrame({"a": ["x"]}, index=["row-id-7"])
    assert read_csv(export.to_csv_bytes(df)) == [["a"], ["x"]]


cell_text = st.text(max_size=40)


@st.composite
def text_tables(draw, cells=cell_text, max_cols=4, max_rows=6):
    """(headers, rows) of arbitrary text, every row as wide as the header."""
    width = draw(st.integers(1, max_cols))
    row = st.lists(cells, min_size=width, max_size=width)
    return draw(row), draw(st.lists(row, max_size=max_rows))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=text_tables(), dtype=st.sampled_from([object, "str"]))  # plain objects and pandas' string dtype
def test_csv_property_reads_back_guarded(table, dtype):
    headers, rows = table
    df = pd.DataFrame(rows, columns=headers, dtype=dtype) if rows else pd.DataFrame(columns=headers)
    got = read_csv(export.to_csv_bytes(df))
    assert got == [[guard_cell(h) for h in headers]] + [[guard_cell(v) for v in row] for row in rows]


# --- XLSX --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", DANGEROUS + HARMLESS)
def test_xlsx_keeps_exact_text_and_has_no_formulas(value):
    """XLSX text cells are strings, which Excel never evaluates: exact text, no apostrophe, no formula."""
    df = pd.DataFrame({"col": [value]})
    sheet = read_xlsx(export.to_xlsx_bytes(df))
    assert_inert(sheet)
    expected = value.replace("\r", "\n") or None  # XLSX line breaks are "\n"; "" is a blank
    assert (sheet["A1"].value, sheet["A2"].value) == ("col", expected)
    if expected is not None:
        assert sheet["A2"].data_type == "s"


def test_xlsx_header_exact_bold_frozen_and_sized():
    df = pd.DataFrame({"=HEAD": ["a"], "Long": ["x" * 500], "n": [3]})
    sheet = read_xlsx(export.to_xlsx_bytes(df, sheet_name="Leads"))
    assert [c.value for c in sheet[1]] == ["=HEAD", "Long", "n"]
    assert sheet["A1"].data_type == "s"
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width <= export.XLSX_MAX_WIDTH + 1
    assert sheet.column_dimensions["A"].width >= export.XLSX_MIN_WIDTH
    assert sheet["C2"].value == 3 and sheet["C2"].data_type == "n"


def test_xlsx_70000_urls_all_present_as_text():
    n = 70_000
    urls = [f"https://www.linkedin.com/in/lead-{i}" for i in range(n)]
    df = pd.DataFrame({"Person Linkedin Url": urls, "Formula": ["=1+1"] * n})
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx_bytes(df)), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    assert len(rows) == n + 1
    assert [r[0] for r in rows[1:]] == urls  # nothing blanked after 65,530 links
    assert {r[1] for r in rows[1:]} == {"=1+1"}  # text, not a formula (no <f> below)
    with zipfile.ZipFile(io.BytesIO(export.to_xlsx_bytes(df.head(10)))) as archive:
        names = archive.namelist()
        assert not any("rels" in name and "sheet1" in name for name in names)  # no hyperlink relations
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_xlsx_non_ascii_round_trip():
    values = ["Zoë Müller", "東京", "emoji 🚀", "  spaces kept  ", "line\nbreak", "\tlead"]
    df = pd.DataFrame({"Société": values})
    assert xlsx_values(export.to_xlsx_bytes(df)) == [["Société"]] + [[v] for v in values]


def test_xlsx_types_numbers_bools_missing():
    df = pd.DataFrame(
        {"int": [1, -2], "float": [0.5, float("nan")], "bool": [True, False], "big": [2**60, 1]},
    )
    assert xlsx_values(export.to_xlsx_bytes(df)) == [
        ["int", "float", "bool", "big"],
        [1, 0.5, True, str(2**60)],  # beyond 2**53 as text: Excel would round the digits
        [-2, None, False, 1],
    ]


def test_xlsx_escape_lookalike_text_survives():
    """Literal "_x0041_" must not be read back as "A" (xlsxwriter escapes it as _x005F_x0041_)."""
    df = pd.DataFrame({"a": ["_x0041_", "tag _x000D_ here"]})
    data = export.to_xlsx_bytes(df)
    assert xlsx_values(data)[1:] == [["_x0041_"], ["tag _x000D_ here"]]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"_x005F_x0041_" in archive.read("xl/sharedStrings.xml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\r\nb", "a\nb"),  # Windows line break -> Excel's in-cell break
        ("a\rb", "a\nb"),
        ("bell\x07 nul\x00 vt\x0b ff\x0c esc\x1b", "bell nul vt ff esc"),  # XML cannot carry these
        ("non\ufffechar\uffff", "nonchar"),
        ("lone \udc80 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_xlsx_control_characters(value, expected):
    df = pd.DataFrame({"a": [value]}, dtype=object)  # pandas' Arrow strings cannot hold a lone surrogate
    assert xlsx_values(export.to_xlsx_bytes(df))[1] == [expected]


def test_xlsx_warnings_name_the_changed_cells():
    df = pd.DataFrame({"Bio": ["fine", "bad\x01char", "x" * 40_000], "n": [1, 2, 3]})
    notes = export.xlsx_warnings(df)
    assert len(notes) == 2
    assert notes[0].startswith("row 2, column 'Bio'") and "control characters" in notes[0]
    assert notes[1].startswith("row 3, column 'Bio'") and "40,000" in notes[1]
    assert export.xlsx_warnings(pd.DataFrame({"a": ["ok"]})) == []
    many = pd.DataFrame({"a": ["\x01"] * 30})
    assert export.xlsx_warnings(many, limit=5)[-1] == "… and 25 more."


@pytest.mark.parametrize("extra", ["", "🚀"])  # astral characters count double in Excel's limit
def test_xlsx_cell_limit_cuts_with_marker(extra):
    long = extra + "x" * 40_000
    value = xlsx_values(export.to_xlsx_bytes(pd.DataFrame({"a": [long]})))[1][0]
    assert value.endswith(export.XLSX_TRUNCATION_MARKER)
    assert value.startswith(extra + "xxx")
    assert len(value.encode("utf-16-le")) // 2 <= export.XLSX_CELL_LIMIT
    ok = "y" * export.XLSX_CELL_LIMIT  # exactly at the limit: untouched
    assert xlsx_values(export.to_xlsx_bytes(pd.DataFrame({"a": [ok]})))[1][0] == ok


def test_xlsx_too_many_rows_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 3)
    with pytest.raises(ExportError, match="Export as CSV"):
        export.to_xlsx_bytes(pd.DataFrame({"a": ["1", "2", "3"]}))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Leads", "Leads"),
        ("", "Leads"),
        ("a/b\\c[d]e:f*g?h", "a_b_c_d_e_f_g_h"),
        ("'quoted'", "quoted"),
        ("x" * 40, "x" * 31),
        ("History", "History_"),
    ],
)
def test_sheet_name_sanitised(name, expected):
    assert export.sanitize_sheet_name(name) == expected
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx_bytes(pd.DataFrame({"a": [1]}), name)))
    assert book.sheetnames == [expected]


def test_empty_frames_export():
    for df in (pd.DataFrame(), pd.DataFrame(columns=["a", "b"])):
        assert read_csv(export.to_csv_bytes(df)) in ([[]], [["a", "b"]])
        assert xlsx_values(export.to_xlsx_bytes(df)) in ([], [["a", "b"]])
        assert json.loads(export.to_json_bytes(df)) == []


xml_safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff"
                           + "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A))),
    max_size=30,
)  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(xml_safe_text, min_size=3, max_size=3), min_size=1, max_size=8))
def test_xlsx_property_reads_back_exactly_and_inert(rows):
    # openpyxl's reader deletes every "x005F_" (its shortcut for Excel's escaped "_"), so text that
    # literally contains it does not survive openpyxl (Excel reads it right); excluded here.
    assume(not any("x005F_" in v for row in rows for v in row))
    df = pd.DataFrame(rows, columns=["a", "b", "c"], dtype=object)
    sheet = read_xlsx(export.to_xlsx_bytes(df))
    got = [
        [sheet.cell(r, c).value or "" for c in (1, 2, 3)] for r in range(2, len(rows) + 2)
    ]  # "" is a blank
    assert got == rows
    assert_inert(sheet)


# --- JSON --------------------------------------------------------------------------------------------


def test_json_round_trip_keeps_raw_text():
    df = pd.DataFrame(
        {
            "Name": ["=1+1", "Zoë 🚀", None],
            "n": [1, 2, 3],
            "cost": [0.5, float("nan"), 1e-6],
            "ok": [True, False, True],
        }
    )
    data = export.to_json_bytes(df)
    assert "Zoë 🚀".encode() in data  # not \u-escaped
    assert json.loads(data) == [
        {"Name": "=1+1", "n": 1, "cost": 0.5, "ok": True},
        {"Name": "Zoë 🚀", "n": 2, "cost": None, "ok": False},
        {"Name": None, "n": 3, "cost": 1e-6, "ok": True},
    ]


def test_json_duplicate_columns_are_kept():
    df = pd.DataFrame([["a", "b", "c"]], columns=["x", "x", "x"])
    assert json.loads(export.to_json_bytes(df)) == [{"x": "a", "x (2)": "b", "x (3)": "c"}]


def test_json_dates_and_nested_values():
    df = pd.DataFrame(
        {"when": [pd.Timestamp("2026-11-24T10:15:02Z"), pd.NaT], "tags": [["a", "b"], {"k": 1}]}
    )
    assert json.loads(export.to_json_bytes(df)) == [
        {"when": "2026-11-24T10:15:02+00:00", "tags": '["a", "b"]'},
        {"when": None, "tags": '{"k": 1}'},
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_bytes_dispatch_and_media_types(fmt):
    df = pd.DataFrame({"a": ["x"]})
    assert export.export_bytes(df, fmt) == getattr(export, f"to_{fmt}_bytes")(df)
    assert fmt in export.MEDIA_TYPES


def test_export_bytes_rejects_unknown_format():
    with pytest.raises(ValueError, match="unknown export format"):
        export.export_bytes(pd.DataFrame(), "pdf")  # type: ignore[arg-type]


# --- files -------------------------------------------------------------------------------------------


def test_write_atomic_writes_and_replaces(tmp_path):
    target = tmp_path / "out.csv"
    assert export.write_atomic(target, b"one") == target
    export.write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_write_atomic_new_file_is_not_private_only(tmp_path):
    target = export.write_atomic(tmp_path / "out.csv", b"x")
    assert target.stat().st_mode & 0o044  # mkstemp's 0600 would hide it from the group/others


def test_write_atomic_missing_parent(tmp_path):
    target = tmp_path / "missing" / "out.csv"
    with pytest.raises(ExportError, match="does not exist"):
        export.write_atomic(target, b"x")
    assert not target.parent.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_write_atomic_read_only_directory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="permission"):
            export.write_atomic(folder / "out.csv", b"x")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o700)


def _raise(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("os.replace", errno.EACCES, "No permission"),
        ("os.replace", errno.EXDEV, "Could not save"),
        ("os.fsync", errno.ENOSPC, "Not enough disk space"),
        ("tempfile.mkstemp", errno.EACCES, "No permission"),
        ("tempfile.mkstemp", errno.EROFS, "read-only"),
    ],
)
def test_write_atomic_failures_leave_old_file_and_no_temp(tmp_path, monkeypatch, target, code, message):
    final = tmp_path / "out.csv"
    final.write_bytes(b"previous export")
    monkeypatch.setattr(target, _raise(code))
    with pytest.raises(ExportError, match=message) as info:
        export.write_atomic(final, b"new data")
    assert "new data" not in str(info.value)
    assert final.read_bytes() == b"previous export"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_write_atomic_failure_leaves_no_new_file(tmp_path, monkeypatch):
    monkeypatch.setattr("os.fsync", _raise(errno.ENOSPC))
    with pytest.raises(ExportError):
        export.write_atomic(tmp_path / "new.xlsx", b"x" * 100_000)
    assert os.listdir(tmp_path) == []


def test_write_atomic_interrupt_cleans_up_and_propagates(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.write_atomic(tmp_path / "out.json", b"[]")
    assert os.listdir(tmp_path) == []


NOW = dt.datetime(2026, 11, 24, 10, 15, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("stem", "fmt", "name"),
    [
        ("icebreaker", "csv", "icebreaker-20261124-101502.csv"),
        ("Icebreaker v2 (short)", "xlsx", "Icebreaker-v2-short-20261124-101502.xlsx"),
        ("../../etc/passwd", "json", "etc-passwd-20261124-101502.json"),
        ("..", "csv", "export-20261124-101502.csv"),
        ("Café/Société", "csv", "Cafe-Societe-20261124-101502.csv"),
        ("C:\\Windows\\x", "csv", "C-Windows-x-20261124-101502.csv"),
        (".hidden", "csv", "hidden-20261124-101502.csv"),
        ("", "csv", "export-20261124-101502.csv"),
    ],
)
def test_save_copy_names(data_dir, stem, fmt, name):
    df = pd.DataFrame({"a": ["=x"]})
    path = export.save_copy(df, data_dir, stem, fmt, now=NOW)
    assert path == data_dir / name
    assert path.read_bytes() == export.export_bytes(df, fmt)


def test_save_copy_same_second_does_not_overwrite(data_dir):
    df = pd.DataFrame({"a": ["1"]})
    first = export.save_copy(df, data_dir, "run", "csv", now=NOW)
    second = export.save_copy(df, data_dir, "run", "csv", now=NOW)
    assert (first.name, second.name) == ("run-20261124-101502.csv", "run-20261124-101502-2.csv")


def test_save_copy_local_time_is_stamped_in_utc(data_dir):
    local = dt.datetime(2026, 11, 24, 11, 15, 2, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert export.save_copy(pd.DataFrame(), data_dir, "r", "json", now=local).name == "r-20261124-101502.json"


def test_save_copy_creates_directory_and_uses_utc_now(tmp_path):
    path = export.save_copy(pd.DataFrame({"a": [1]}), tmp_path / "results" / "sub", "r", "csv")
    stamp = path.stem.removeprefix("r-")
    taken = dt.datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - taken).total_seconds()) < 60
    assert path.parent == tmp_path / "results" / "sub"


def test_save_copy_stays_inside_directory(data_dir):
    path = export.save_copy(pd.DataFrame(), data_dir, "../../../../tmp/evil", "csv", now=NOW)
    assert path.resolve().parent == data_dir.resolve()
    assert Path(path).name.startswith("tmp-evil-")


# --- CSV for a spreadsheet or for a CRM; clean decimals ---------------------------------------------

CHOICE_TABLE = pd.DataFrame(
    {"=Head": ["+1 (555) 0123", "-5", "@ann", "Acme"], "Cost": [0.00011969999999999998, 1e-05, 2.5, None]}
)


@pytest.mark.parametrize(
    ("csv_for", "expected"),
    [
        (
            "spreadsheet",
            [["'=Head", "Cost"], ["'+1 (555) 0123", "0.0001197"], ["-5", "0.00001"], ["'@ann", "2.5"], ["Acme", ""]],
        ),
        (
            "crm",
            [["=Head", "Cost"], ["+1 (555) 0123", "0.0001197"], ["-5", "0.00001"], ["@ann", "2.5"], ["Acme", ""]],
        ),
    ],
)  # fmt: skip
def test_csv_choice_guards_for_a_spreadsheet_and_keeps_exact_text_for_a_crm(csv_for, expected):
    assert read_csv(export.to_csv_bytes(CHOICE_TABLE, csv_for)) == expected
    assert export.export_bytes(CHOICE_TABLE, "csv", csv_for=csv_for) == export.to_csv_bytes(
        CHOICE_TABLE, csv_for
    )


def test_csv_changes_counts_what_each_choice_changes():
    changes = export.csv_changes(CHOICE_TABLE)
    assert (changes.spreadsheet, changes.crm) == (3, 0)  # the header, the phone, the handle; "-5" stays
    assert changes.examples == ["'=Head", "'+1 (555) 0123", "'@ann"]
    assert export.csv_changes(pd.DataFrame({"a": ["x", "-3"]})).spreadsheet == 0


def test_csv_for_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="spreadsheet' or 'crm"):
        export.to_csv_bytes(CHOICE_TABLE, "excel")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "csv_text"),
    [
        (0.00011969999999999998, "0.0001197"),
        (0.1 + 0.2, "0.3"),
        (1.5e-07, "0.00000015"),
        (12.0, "12.0"),
        (3, "3"),
    ],
)
def test_money_and_tokens_are_clean_decimals_in_every_format(value, csv_text):
    df = pd.DataFrame({"cost_usd": [value]})
    assert read_csv(export.to_csv_bytes(df))[1] == [csv_text]
    assert json.loads(export.to_json_bytes(df))[0]["cost_usd"] == float(csv_text)
    assert xlsx_values(export.to_xlsx_bytes(df))[1][0] == float(csv_text)  # exactly: no binary noise


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=text_tables())
def test_csv_for_a_spreadsheet_has_no_cell_a_spreadsheet_would_evaluate(table):
    headers, rows = table
    df = pd.DataFrame(rows, columns=headers, dtype=object) if rows else pd.DataFrame(columns=headers)
    cells = [c for row in read_csv(export.to_csv_bytes(df)) for c in row]
    live = [
        c
        for c in cells
        if c.startswith(export.FORMULA_PREFIXES) and not re.fullmatch(r"-[0-9]+(\.[0-9]+)?", c)
    ]
    assert live == []
    # And the CRM choice gives back exactly what went in.
    assert read_csv(export.to_csv_bytes(df, "crm")) == [headers, *rows]
