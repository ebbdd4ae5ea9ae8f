"""Lead files from real sources read as exact text: csv-spectrum, cases modelled on clevercsv, frictionless
and csvkit fixtures, generated CRM exports (tests/crm_exports.py), and property tests for encodings and
XLSX number formats."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lib.leads import LeadFileError, read_leads
from tests import crm_exports as C
from tests import leadfiles as L

SPECTRUM = Path(__file__).parent / "fixtures" / "csv-spectrum"
# Upstream's expected JSON for this file names another phone number than its CSV holds.
SPECTRUM_UPSTREAM_ERRATA = {"location_coordinates": {"Contact Phone Number": "2095257564"}}


def table(lf) -> list[list[str]]:
    return [list(lf.df.columns), *lf.df.values.tolist()]


# ---- csv-spectrum (npm, BSD-2-Clause, vendored with its expected JSON) ----------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv")))
def test_csv_spectrum_reads_as_its_expected_json(name: str) -> None:
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text("utf-8"))
    expected = [expected] if isinstance(expected, dict) else expected
    for record in expected:
        record.update(SPECTRUM_UPSTREAM_ERRATA.get(name, {}))
    lf = read_leads((SPECTRUM / "csvs" / f"{name}.csv").read_bytes(), f"{name}.csv")
    got = [dict(zip(lf.df.columns, row, strict=True)) for row in lf.df.values.tolist()]
    assert got == expected
    assert lf.set_aside == [] and lf.rejected == []


# ---- modelled on clevercsv's, frictionless's and csvkit's fixtures ---------------------------------
# clevercsv (tests/test_unit/test_detect*.py, inline cases): dialects with decimal commas, quoted
# delimiters, pipes. frictionless-py (data/*.csv): latin-1, BOM, CJK in UTF-8, extra and missing cells.
# csvkit (examples/*.csv): test_latin1.csv, test_skip_lines.csv, mac_newlines.csv, bad.csv, blanks.

MODELLED = [
    # (id, bytes, filename, kwargs, expected table, expected encoding, expected delimiter)
    ("clevercsv semicolon with decimal commas", b"a;b;c\r\n7,5;Mark;3\r\n1,25;Ann;4\r\n", "c.csv", {},
     [["a", "b", "c"], ["7,5", "Mark", "3"], ["1,25", "Ann", "4"]], "utf-8", ";"),
    ("clevercsv quoted delimiters", b'name,notes\r\n"Lee, Ann","says ""hi"", often"\r\n"Bo",x\r\n', "c.csv", {},
     [["name", "notes"], ["Lee, Ann", 'says "hi", often'], ["Bo", "x"]], "utf-8", ","),
    ("clevercsv pipes with commas inside", b"id|company\n1|Acme, Inc.\n2|Globex, LLC\n", "c.csv", {},
     [["id", "company"], ["1", "Acme, Inc."], ["2", "Globex, LLC"]], "utf-8", "|"),
    ("frictionless table.csv with CJK", "id,name\n1,english\n2,中国人\n".encode(), "t.csv", {},
     [["id", "name"], ["1", "english"], ["2", "中国人"]], "utf-8", ","),
    ("frictionless latin1 ©", "id,name\n1,english\n2,©\n".encode("latin-1"), "t.csv", {},
     [["id", "name"], ["1", "english"], ["2", "©"]], "cp1252", ","),
    ("frictionless bom.csv", "\ufeffid,name\n1,english\n2,中国人\n".encode(), "t.csv", {},
     [["id", "name"], ["1", "english"], ["2", "中国人"]], "utf-8-sig", ","),
    ("csvkit test_latin1.csv", "a,b,c\n1,2,3\n4,5,©\n".encode("latin-1"), "k.csv", {},
     [["a", "b", "c"], ["1", "2", "3"], ["4", "5", "©"]], "cp1252", ","),
    ("csvkit test_skip_lines.csv", b"qwe\nasd\n\na,b,c\n1,2,3\n", "k.csv", {},
     [["a", "b", "c"], ["1", "2", "3"]], "utf-8", ","),
    ("csvkit mac_newlines.csv", b"a,b,c\r1,2,3\r\"Once upon\ra time\",5,6\r", "k.csv", {},
     [["a", "b", "c"], ["1", "2", "3"], ["Once upon\ra time", "5", "6"]], "utf-8", ","),
    ("csvkit blanks.csv keeps empty and NA text", b"a,b,c,d,e,f\n,NA,N/A,NONE,NULL,.\n", "k.csv", {},
     [["a", "b", "c", "d", "e", "f"], ["", "NA", "N/A", "NONE", "NULL", "."]], "utf-8", ","),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "filename", "kwargs", "expected", "encoding", "delimiter"), MODELLED,
                         ids=[m[0] for m in MODELLED])  # fmt: skip
def test_cases_modelled_on_public_fixtures(
    name, data, filename, kwargs, expected, encoding, delimiter
) -> None:
    lf = read_leads(data, filename, **kwargs)
    assert table(lf) == expected
    assert (lf.encoding, lf.delimiter) == (encoding, delimiter)


def test_csvkit_bad_csv_is_refused_naming_the_lines_and_skipped_on_request() -> None:
    """Modelled on csvkit's examples/bad.csv: one row too long, one too short."""
    data = b"column_a,column_b,column_c\n1,27,\n2,Dan,1,extra\n3,short\n4,ok,ok\n"
    with pytest.raises(LeadFileError, match=r"Line 3 has 4 fields but the header has 3.*Also line 4") as err:
        read_leads(data, "bad.csv")
    assert [r.line for r in err.value.rejected] == [3, 4]
    lf = read_leads(data, "bad.csv", ragged="skip")
    assert table(lf) == [["column_a", "column_b", "column_c"], ["1", "27", ""], ["4", "ok", "ok"]]
    assert list(lf.df.index) == [1, 4]


# ---- CRM exports, generated with their exact text ---------------------------------------------------


@pytest.mark.parametrize("export", C.all_exports(), ids=lambda e: e.name)
def test_crm_exports_read_exactly_with_report_lines_set_aside(export: C.CrmExport) -> None:
    lf = read_leads(export.data, export.filename)
    assert table(lf) == [export.header, *export.rows]
    assert lf.encoding == export.encoding
    assert [(s.line, s.reason) for s in lf.set_aside] == export.set_aside
    assert not lf.rejected and not lf.encoding_uncertain


# ---- property: accented names in every common encoding read back exactly ---------------------------

NAMES = st.tuples(st.sampled_from(C.ACCENTED_FIRST), st.sampled_from(C.ACCENTED_LAST)).map(" ".join)
ENCODINGS = ["cp1252", "iso8859-15", "mac_roman", "utf-8", "utf-8-sig", "utf-16"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAMES, min_size=1, max_size=12),
    encoding=st.sampled_from(ENCODINGS),
    plain=st.integers(0, 40),
)
def test_property_accented_names_read_back_exactly_in_every_encoding(names, encoding, plain) -> None:
    """Excel for Mac writes Mac Roman with CR line ends; every other tool here ends lines with CRLF."""
    rows = [["Name", "Email"]] + [[f"Lead {i}", f"lead{i}@example.com"] for i in range(plain)]
    rows += [[n, f"p{i}@example.com"] for i, n in enumerate(names)]
    newline = "\r" if encoding == "mac_roman" else "\r\n"
    assume(all(n.encode(encoding, errors="ignore").decode(encoding) == n for n in names))  # ’ is not Latin-9
    lf = read_leads(L.csv_bytes(rows, encoding=encoding, newline=newline), "names.csv")
    assert table(lf) == rows


# ---- property: XLSX cells with common number formats read back as Excel shows them -----------------
# The expected text is computed by Python's own formatting, independently of lib/leads/numfmt.py.

FORMATS = {
    "00000": (st.integers(0, 99_999), lambda v: f"{v:05d}"),
    "#,##0": (st.integers(0, 10**12), lambda v: f"{v:,}"),
    "#,##0.00": (st.integers(0, 10**9), lambda v: f"{v / 100:,.2f}"),  # cents, so no binary halfway cases
    "0%": (st.integers(0, 1000), lambda v: f"{v}%"),
    "0.00": (st.integers(-(10**6), 10**6), lambda v: f"{v / 100:.2f}"),
    "(###) ###-####": (st.integers(2_000_000_000, 9_999_999_999), lambda v: f"({str(v)[:3]}) {str(v)[3:6]}-{str(v)[6:]}"),
    "yyyy-mm-dd": (st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)), lambda v: v.isoformat()),
    "m/d/yyyy": (st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)), lambda v: f"{v.month}/{v.day}/{v.year}"),
    "h:mm AM/PM": (st.times(), lambda v: f"{v.hour % 12 or 12}:{v.minute:02d} {'PM' if v.hour >= 12 else 'AM'}"),
    "@": (st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8), lambda v: v),
}  # fmt: skip


def _stored(fmt: str, value):
    """What the workbook stores: percentages and money as their fraction, times without seconds' drift."""
    if fmt == "0%":
        return value / 100
    if fmt in ("#,##0.00", "0.00"):
        return value / 100
    if fmt == "h:mm AM/PM":
        return value.replace(second=0, microsecond=0)
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.sampled_from(sorted(FORMATS)).flatmap(lambda f: FORMATS[f][0].map(lambda v: (f, v))),
                      min_size=1, max_size=10))  # fmt: skip
def test_property_xlsx_number_formats_read_as_excel_shows_them(cells) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Format", "Value"])
    expected = [["Format", "Value"]]
    for fmt, value in cells:
        stored = _stored(fmt, value)
        ws.append([fmt, stored])
        ws.cell(ws.max_row, 2).number_format = fmt
        shown = FORMATS[fmt][1](stored if fmt == "h:mm AM/PM" else value)
        expected.append([fmt, shown])
    buf = io.BytesIO()
    wb.save(buf)
    assert table(read_leads(buf.getvalue(), "f.xlsx")) == expected
