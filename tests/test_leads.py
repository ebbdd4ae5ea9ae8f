"""lib.leads: messy lead files in, exact text out, or an error a sales-ops person can act on."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import time
from dataclasses import dataclass, field

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lib.leads import LIMITS, LeadFileError, Limits, list_sheets, read_leads
from lib.leads.report_lines import footer_reason
from tests import leadfiles as L

# ---- helpers -----------------------------------------------------------------------------------


def assert_frame(lf, rows: list[list[str]], ids: list[int] | None = None) -> None:
    """The frame holds exactly `rows` (header first), every cell a str, ids 1..n unless given."""
    header, body = rows[0], rows[1:]
    df = lf.df
    assert list(df.columns) == header
    assert df.index.name == "row_id"
    assert list(df.index) == (ids if ids is not None else list(range(1, len(body) + 1)))
    assert all(str(t) == "string" for t in df.dtypes)
    assert not df.isna().any().any()
    assert df.values.tolist() == body


def csv_lines(*lines: str, newline: str = "\r\n") -> bytes:
    return (newline.join(lines) + newline).encode()


# ---- realistic exports: a table of cases -------------------------------------------------------


@dataclass
class Case:
    id: str
    data: bytes
    filename: str
    encoding: str | None
    delimiter: str | None
    rows: list[list[str]]
    preamble: int = 0
    footer: int = 0
    kwargs: dict = field(default_factory=dict)


APOLLO = L.apollo_rows(30)
CASES = [
    Case("apollo utf-8 comma", L.apollo_csv(30), "apollo.csv", "utf-8", ",", APOLLO),
    Case("hubspot utf-8 BOM", L.hubspot_csv(30), "hubspot.csv", "utf-8-sig", ",", L.hubspot_rows(30)),
    Case("salesforce cp1252 semicolon", L.salesforce_csv(30), "sf.csv", "cp1252", ";", L.salesforce_rows(30)),
    Case(
        "salesforce report footer",
        L.salesforce_csv(5, footer=True),
        "report.csv",
        "cp1252",
        ";",
        L.salesforce_rows(5),
        footer=3,
    ),
    Case(
        "linkedin notes preamble",
        L.linkedin_connections_csv(30),
        "Connections.csv",
        "utf-8",
        ",",
        L.linkedin_rows(30),
        preamble=L.LINKEDIN_PREAMBLE_LINES,
    ),
    Case(
        "linkedin with no connections",
        L.linkedin_connections_csv(0),
        "Connections.csv",
        "utf-8",
        ",",
        L.linkedin_rows(0),
        preamble=L.LINKEDIN_PREAMBLE_LINES,
    ),
    Case("excel unicode text utf-16 tab", L.excel_utf16_tab(30), "leads.txt", "utf-16", "\t", APOLLO),
    Case(
        "utf-16 big-endian BOM",
        codecs.BOM_UTF16_BE + L.csv_bytes(APOLLO, encoding="utf-16-be"),
        "be.csv",
        "utf-16",
        ",",
        APOLLO,
    ),
    Case("utf-16 without BOM", L.csv_bytes(APOLLO, encoding="utf-16-le"), "le.csv", "utf-16-le", ",", APOLLO),
    Case("pipe, LF endings", L.csv_bytes(APOLLO, delimiter="|", newline="\n"), "p.csv", "utf-8", "|", APOLLO),
    Case("tsv", L.csv_bytes(APOLLO, delimiter="\t"), "leads.tsv", "utf-8", "\t", APOLLO),
    Case("old mac CR endings", L.csv_bytes(APOLLO[:5], newline="\r"), "mac.csv", "utf-8", ",", APOLLO[:5]),
    Case(
        "every field quoted",
        L.csv_bytes(APOLLO, quoting=csv.QUOTE_ALL, delimiter=";"),
        "q.csv",
        "utf-8",
        ";",
        APOLLO,
    ),
    Case(
        "quoted newlines, delimiters, doubled quotes",
        L.quoted_newlines_csv(),
        "q.csv",
        "utf-8",
        ",",
        [
            ["First Name", "Notes", "Company"],
            ["Ann", "Met at SaaStr.\nLikes golf,\r\nhates cold calls", 'The "Best" Widgets'],
            ["Bob", "", "Acme, Inc."],
        ],
    ),
    Case(
        "zip codes, phones, NA-like text, inner spaces",
        L.zip_na_csv(),
        "z.csv",
        "utf-8",
        ",",
        [
            ["Name", "Zip", "Phone", "Industry", "Notes", "Revenue"],
            ["Ann", "02134", "+1 (555) 010-2000", "NA", "N/A", "0.10"],
            ["Bob", "00501", "0044 20 7946 0958", "None", "null", "1e3"],
            ["Cy", "07102", "", "NaN", "  two  spaces  ", "-0"],
        ],
    ),
    Case(
        "formula-looking cells stay text",
        L.formula_text_csv(),
        "f.csv",
        "utf-8",
        ",",
        [
            ["Name", "Website", "Phone", "Handle", "Delta"],
            ["Ann", '=HYPERLINK("http://evil.example","click")', "+1 555 010 2000", "@ann", "-2+3"],
            ["Bob", "=1+1", "+44 20 7946 0958", "@bob_smith", "\t=cmd"],
        ],
    ),
    Case(
        "prompt injection kept verbatim",
        L.injection_csv(),
        "i.csv",
        "utf-8",
        ",",
        [["First Name", "Company", "Notes"], ["Eve", "Evil Corp", L.INJECTION], ["Ann", "Acme", ""]],
    ),
    Case(
        "forced encoding and delimiter",
        L.salesforce_csv(3),
        "sf.csv",
        "cp1252",
        ";",
        L.salesforce_rows(3),
        kwargs={"encoding": "cp1252", "delimiter": ";"},
    ),
    Case(
        "cyrillic cp1251",
        L.csv_bytes(
            [["Имя", "Компания"], ["Иван Петров", "Газпром"], ["Ольга", "Яндекс"]], encoding="cp1251"
        ),
        "ru.csv",
        "cp1251",
        ",",
        [["Имя", "Компания"], ["Иван Петров", "Газпром"], ["Ольга", "Яндекс"]],
    ),
    Case(
        "title line and footer total",
        csv_lines("Leads export May 2024", "Name,Email,Zip", "Ann,a@x.com,02134", "Bob,b@x.com,", "Total: 2"),
        "t.csv",
        "utf-8",
        ",",
        [["Name", "Email", "Zip"], ["Ann", "a@x.com", "02134"], ["Bob", "b@x.com", ""]],
        preamble=1,
        footer=1,
    ),
    Case(
        "one column",
        csv_lines("Email", "a@x.com", "b@x.com"),
        "one.csv",
        "utf-8",
        ",",
        [["Email"], ["a@x.com"], ["b@x.com"]],
    ),
    Case(
        "data rows end with a delimiter, header does not",
        csv_lines("Name,Email", "Ann,a@x.com,", "Bob,b@x.com,"),
        "trail.csv",
        "utf-8",
        ",",
        [["Name", "Email"], ["Ann", "a@x.com"], ["Bob", "b@x.com"]],
    ),
    Case(
        "semicolon file with commas in values",
        csv_lines("Name;City;Revenue", "Ann;Boston, MA;1,5", "Bob;Paris;2,25", "Cy;Rome;3"),
        "eu.csv",
        "utf-8",
        ";",
        [
            ["Name", "City", "Revenue"],
            ["Ann", "Boston, MA", "1,5"],
            ["Bob", "Paris", "2,25"],
            ["Cy", "Rome", "3"],
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reads_real_world_exports_exactly(case: Case) -> None:
    lf = read_leads(case.data, case.filename, **case.kwargs)
    assert (lf.encoding, lf.delimiter) == (case.encoding, case.delimiter)
    assert (lf.skipped_preamble, lf.skipped_footer) == (case.preamble, case.footer)
    assert lf.rejected == [] and lf.sheet is None and lf.sheets == []
    assert_frame(lf, case.rows)


def test_forced_utf8_on_a_bom_file_still_drops_the_bom() -> None:
    lf = read_leads(L.bom_csv(), "b.csv", encoding="utf-8")
    assert list(lf.df.columns) == ["Email", "First Name"] and lf.encoding == "utf-8-sig"


def test_rereading_gives_the_same_row_ids() -> None:
    a = read_leads(L.ragged_csv(), "r.csv", ragged="skip")
    b = read_leads(L.ragged_csv(), "r.csv", ragged="skip")
    assert list(a.df.index) == list(b.df.index) == [1, 2, 4, 6]
    assert a.df.equals(b.df)


# ---- header names ------------------------------------------------------------------------------

HEADER_CASES = [
    (
        "duplicates, blank with data, spaces, empty unnamed column",
        L.duplicate_headers_csv(),
        ["First Name", "Email", "Email (2)", "Column 4", "Company"],
        {"First Name": " First Name ", "Email (2)": "Email", "Column 4": ""},
        ["Column 6"],
    ),
    (
        "generated name collides with a real one",
        csv_lines("Email,Email,Email (2),,Column 4", "a,b,c,d,e"),
        ["Email", "Email (3)", "Email (2)", "Column 4 (2)", "Column 4"],
        {"Email (3)": "Email", "Column 4 (2)": ""},
        [],
    ),
    (
        "excel trailing empty columns",
        csv_lines("Name,Email,,,", "Ann,a@x.com,,,", "Bob,b@x.com,,,"),
        ["Name", "Email"],
        {},
        ["Column 3", "Column 4", "Column 5"],
    ),
    (
        "header with trailing blanks, short rows",
        csv_lines("Name,Email,,", "Ann,a@x.com", "Bob,b@x.com"),
        ["Name", "Email"],
        {},
        ["Column 3", "Column 4"],
    ),
]


@pytest.mark.parametrize(
    ("data", "columns", "renamed", "dropped"), [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES]
)
def test_header_names(data: bytes, columns: list[str], renamed: dict, dropped: list[str]) -> None:
    lf = read_leads(data, "h.csv")
    assert list(lf.df.columns) == columns
    assert lf.renamed_headers == renamed
    assert list(lf.renamed_headers) == [c for c in columns if c in renamed]  # column order, stable
    assert lf.dropped_empty_columns == dropped
    assert lf.warnings  # each decision is reported


# ---- ragged rows -------------------------------------------------------------------------------


def test_ragged_rows_are_rejected_with_line_numbers() -> None:
    with pytest.raises(LeadFileError, match=r"Line 4 has 5 fields but the header has 4 .*Also line 6") as err:
        read_leads(L.ragged_csv(), "r.csv")
    assert "unquoted comma" in str(err.value) and "skip" in str(err.value)
    assert [r.line for r in err.value.rejected] == L.RAGGED_BAD_LINES


def test_ragged_rows_skipped_keep_ids_and_are_listed() -> None:
    lf = read_leads(L.ragged_csv(), "r.csv", ragged="skip")
    assert list(lf.df.index) == [1, 2, 4, 6]  # ids 3 and 5 belong to the rejected rows
    assert list(lf.df["First Name"]) == ["Ann", "Bob", "Di", "Flo"]
    assert [(r.line, r.reason, r.text) for r in lf.rejected] == [
        (4, "has 5 fields but the header has 4", "Cy,Young,Acme, Inc.,cy@acme.com"),
        (6, "has 3 fields but the header has 4", "Ed,Stone,ed@stone.com"),
    ]
    assert any("Left out 2 lines" in w for w in lf.warnings)


def test_line_numbers_count_physical_lines_across_quoted_newlines() -> None:
    data = csv_lines("Name,Notes,Company", 'Ann,"one\ntwo\nthree",Acme', "", "Bob,x,Globex,extra")
    lf = read_leads(data, "n.csv", ragged="skip")
    assert [r.line for r in lf.rejected] == [6]
    assert list(lf.df.index) == [1]


def test_blank_lines_and_empty_rows_are_not_rows() -> None:
    data = csv_lines("Name,Email", "", "Ann,a", ",", "  ,  ", "Bob,b", "")
    lf = read_leads(data, "b.csv")
    assert_frame(lf, [["Name", "Email"], ["Ann", "a"], ["Bob", "b"]])
    assert lf.rejected == []


def test_short_row_is_not_padded() -> None:
    with pytest.raises(LeadFileError, match="Line 3 has 2 fields but the header has 3"):
        read_leads(csv_lines("a,b,c", "1,2,3", "1,2"), "s.csv")


def test_extra_empty_fields_are_trimmed_not_rejected() -> None:
    lf = read_leads(csv_lines("a,b", "1,2,,", "3,4"), "x.csv")
    assert_frame(lf, [["a", "b"], ["1", "2"], ["3", "4"]])
    assert any("extra empty fields" in w for w in lf.warnings)


def test_rejected_text_is_capped() -> None:
    lf = read_leads(csv_lines("a,b", "1,2", "x," + "y" * 5000 + ",z"), "c.csv", ragged="skip")
    assert len(lf.rejected[0].text) <= 201


def test_unclosed_quote_is_refused_not_swallowed() -> None:
    data = csv_lines("Name,Notes", 'Ann,"never closed', *["Bob,fine"] * 30)
    with pytest.raises(
        LeadFileError, match=r'Line 2: a quote \("\) opened on this line is never closed.* 2 to 32'
    ):
        read_leads(data, "q.csv")


def test_quote_closed_far_away_shifts_fields_and_is_named() -> None:
    data = csv_lines("Name,Notes,Email", 'Ann,"runs on,a', *["Bob,fine,b"] * 30, 'Cy,ends here",c')
    with pytest.raises(LeadFileError, match=r'Line 2 \(a row running to line 33\).*quote \("\) on line 2'):
        read_leads(data, "q.csv")


# ---- empty, header-only, not-a-CSV -------------------------------------------------------------


def test_header_only_is_an_empty_frame_with_a_warning() -> None:
    lf = read_leads(b"First Name,Email,Zip\r\n", "h.csv")
    assert list(lf.df.columns) == ["First Name", "Email", "Zip"] and len(lf.df) == 0
    assert all(str(t) == "string" for t in lf.df.dtypes)
    assert "column names but no rows" in lf.warnings[-1]


def test_few_nul_characters_are_removed_with_a_warning() -> None:
    lf = read_leads(b"Name,Email\r\nAnn,a@x.com\x00\r\n", "n.csv")
    assert lf.df.loc[1, "Email"] == "a@x.com"
    assert any("NUL" in w for w in lf.warnings)


ERROR_CASES = [
    ("empty", b"", "x.csv", {}, "The file is empty"),
    ("only a BOM", codecs.BOM_UTF8, "x.csv", {}, "The file is empty"),
    ("only blank lines", b"\r\n  \r\n\r\n", "x.csv", {}, "The file is empty"),
    ("only delimiters", b",,,\r\n,,\r\n", "x.csv", {}, "The file is empty"),
    ("png renamed .csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "leads.csv", {}, "doesn't look like a CSV file"),
    ("xlsx renamed .csv", L.xlsx_bytes({"S": [["a"]]}), "leads.csv", {}, "rename it to end in .xlsx"),
    ("binary with NULs", bytes(range(256)) * 40, "leads.csv", {}, "doesn't look like a CSV file"),
    (
        "old .xls",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
        "leads.xls",
        {},
        "save it as an Excel Workbook",
    ),
    ("html named .xls", b"<html><table><tr><td>a</td></tr></table></html>", "r.xls", {}, "really a web page"),
    ("text named .xlsx", csv_lines("a,b", "1,2"), "leads.xlsx", {}, "rename it to .csv"),
    ("damaged .xlsx", b"PK\x03\x04" + bytes(100), "leads.xlsx", {}, "damaged"),
    (
        "encrypted .xlsx",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
        "leads.xlsx",
        {},
        "password-protected",
    ),
    ("zip that is no workbook", L.xlsx_bomb(1), "x.xlsx", {}, "can't be opened as an Excel workbook"),
    (
        "forced wrong encoding",
        L.salesforce_csv(3),
        "sf.csv",
        {"encoding": "utf-8"},
        "can't be read as utf-8.*line 2",
    ),
    ("unknown encoding", b"a\r\n", "x.csv", {"encoding": "klingon"}, "not an encoding"),
    ("unknown encoding, BOM file", L.bom_csv(), "x.csv", {"encoding": "klingon"}, "not an encoding"),
    ("xlsb", L.xlsx_bytes({"S": [["a"]]}), "leads.xlsb", {}, "Excel binary workbook"),
    ("bad delimiter", b"a\r\n", "x.csv", {"delimiter": "ab"}, "can't be used as a delimiter"),
    ("too many bytes", b"a,b\r\n" * 100, "x.csv", {"limits": Limits(max_bytes=100)}, "the limit is 0 MB"),
    ("too many rows", L.apollo_csv(50), "x.csv", {"limits": Limits(max_rows=40)}, "more than 40 rows"),
    ("too many columns", L.apollo_csv(5), "x.csv", {"limits": Limits(max_columns=10)}, "limit is 10"),
    ("too many cells", L.apollo_csv(50), "x.csv", {"limits": Limits(max_cells=100)}, "50 rows x 12 columns"),
    (
        "cell too long",
        csv_lines("Name,Notes", "Ann," + "x" * 60),
        "x.csv",
        {"limits": Limits(max_cell_chars=50)},
        "Line 2, column 'Notes': a value is 60 characters",
    ),
    (
        "xlsx expands too much",
        L.xlsx_bytes({"S": [["a"]]}),
        "x.xlsx",
        {"limits": Limits(max_xlsx_uncompressed=1000)},
        "too large to open safely",
    ),
    (
        "xlsx with too many parts",
        L.xlsx_bytes({"S": [["a"]]}),
        "x.xlsx",
        {"limits": Limits(max_xlsx_members=3)},
        "holds 9 parts",
    ),
    (
        "xlsx too many rows",
        L.xlsx_bytes({"S": [["a"], *[["x"]] * 30]}),
        "x.xlsx",
        {"limits": Limits(max_rows=20)},
        "limit",
    ),
    (
        "xlsx too many columns",
        L.xlsx_bytes({"S": [[f"c{i}" for i in range(30)]]}),
        "x.xlsx",
        {"limits": Limits(max_columns=20)},
        "30 columns; the limit is 20",
    ),
]


@pytest.mark.parametrize(
    ("data", "filename", "kwargs", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_refused_with_a_clear_message(data: bytes, filename: str, kwargs: dict, message: str) -> None:
    with pytest.raises(LeadFileError, match=message):
        read_leads(data, filename, **kwargs)


HOSTILE = [
    ("300,000 columns", lambda: L.wide_csv(300_000), "w.csv", "more than 500 columns"),
    ("runaway quote", lambda: L.runaway_quote_csv(4), "q.csv", "never closed"),
    ("xlsx bomb", lambda: L.xlsx_bomb(60), "b.xlsx", "compressed .* times"),
]


@pytest.mark.parametrize(
    ("make", "filename", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_files_are_refused_quickly(make, filename: str, message: str) -> None:
    data = make()
    start = time.perf_counter()
    with pytest.raises(LeadFileError, match=message):
        read_leads(data, filename)
    assert time.perf_counter() - start < 1.0


def test_limits_are_documented_defaults() -> None:
    assert (
        LIMITS.max_bytes == 200 * 1024 * 1024 and LIMITS.max_rows == 1_000_000 and LIMITS.max_columns == 500
    )


# ---- XLSX --------------------------------------------------------------------------------------

WORKBOOK = {
    "Summary": [],
    "Leads": [
        ["Leads export May 2024"],
        [],
        ["Zip", "Employees", "Score", "Created", "Active", "Doubled", "Label", "Website", None],
        ["02134", 2134, 0.1, dt.datetime(2024, 1, 5), True, L.Formula("B4*2", 4268), L.Formula('A4&"!"', "02134!"), '=HYPERLINK("x")'],
        [None] * 8,
        ["00501", 5.0, 0.1 + 0.2, dt.datetime(2024, 1, 5, 13, 45), False, L.Formula("B6*2", 10), "@me", "+1 555", "extra"],
        ["", 1e20, -0.0, dt.date(2023, 12, 31), None, L.Formula("NOW()", 45000.5), "  padded  ", "N/A"],
    ],
    "Other": [["Email"], ["a@x.com"]],
}  # fmt: skip


def test_xlsx_first_sheet_with_data_cells_as_excel_shows_them() -> None:
    lf = read_leads(L.xlsx_bytes(WORKBOOK), "leads.xlsx")
    assert (lf.sheet, lf.sheets, lf.encoding, lf.delimiter) == (
        "Leads",
        ["Summary", "Leads", "Other"],
        None,
        None,
    )
    assert lf.skipped_preamble == 2 and lf.skipped_footer == 0
    assert_frame(
        lf,
        [
            ["Zip", "Employees", "Score", "Created", "Active", "Doubled", "Label", "Website", "Column 9"],
            # openpyxl stores datetimes with the format yyyy-mm-dd h:mm:ss, which Excel shows as is.
            ["02134", "2134", "0.1", "2024-01-05 0:00:00", "TRUE", "4268", "02134!", '=HYPERLINK("x")', ""],
            ["00501", "5", "0.3", "2024-01-05 13:45:00", "FALSE", "10", "@me", "+1 555", "extra"],
            ["", "1e+20", "0", "2023-12-31", "", "45000.5", "  padded  ", "N/A", ""],
        ],
    )
    assert lf.renamed_headers == {"Column 9": ""}
    assert any("'Summary' is empty" in w for w in lf.warnings)


def test_xlsx_named_sheet_and_errors() -> None:
    data = L.xlsx_bytes(WORKBOOK)
    assert list_sheets(data) == ["Summary", "Leads", "Other"]
    assert_frame(read_leads(data, "l.xlsx", sheet="Other"), [["Email"], ["a@x.com"]])
    with pytest.raises(LeadFileError, match="no sheet called 'Nope'. The sheets are: Summary, Leads, Other"):
        read_leads(data, "l.xlsx", sheet="Nope")
    with pytest.raises(LeadFileError, match="Sheet 'Summary' is empty"):
        read_leads(data, "l.xlsx", sheet="Summary")
    with pytest.raises(LeadFileError, match="no sheet in this workbook has any data"):
        read_leads(L.xlsx_bytes({"A": [], "B": [[None, ""]]}), "e.xlsx")


def test_xlsx_header_only_and_duplicates() -> None:
    lf = read_leads(L.xlsx_bytes({"S": [["Email", "Email", " Name "]]}), "h.xlsx")
    assert list(lf.df.columns) == ["Email", "Email (2)", "Name"] and len(lf.df) == 0
    assert lf.renamed_headers == {"Email (2)": "Email", "Name": " Name "}


def test_reading_is_fast_enough() -> None:
    data = L.apollo_csv(20_000)
    start = time.perf_counter()
    lf = read_leads(data, "big.csv")
    assert len(lf.df) == 20_000
    assert time.perf_counter() - start < 3.0  # about 0.2 s here; guards against quadratic slips


# ---- property: any table written by the stdlib csv writer reads back exactly -------------------
# Excluded, and why: NUL (CSV has no way to mean it; the reader removes it), unpaired surrogates
# (not encodable), a U+FEFF at the very start (it is a BOM). Header names are non-blank, unique and
# without surrounding spaces (otherwise they are renamed, tested above). Rows whose cells are all
# empty or spaces are not data rows: they are dropped and get no id, so the model drops them too.
# A last row that reads as a report footer ("Total: 3", "Copyright 2024", one lone cell) is set aside
# by design (tested in tests/test_lead_issues.py), so the tables here end with a row that is not one.

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
NAME = TEXT.map(str.strip).filter(bool)


def _expected(rows: list[list[str]]) -> tuple[list[list[str]], list[int]]:
    kept = [r for r in rows if "".join(r).strip()]
    assume(not kept or not _footer_like(kept[-1]))
    return kept, list(range(1, len(kept) + 1))


def _footer_like(row: list[str]) -> bool:
    return footer_reason(row) is not None or (len(row) > 1 and sum(1 for c in row if c.strip()) == 1)


@st.composite
def tables(draw, cell=TEXT, name=NAME, max_cols: int = 6):
    header = draw(st.lists(name, min_size=1, max_size=max_cols, unique=True))
    assume(not header[0].startswith("\ufeff"))
    rows = draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), max_size=8))
    return header, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_property_any_csv_table_reads_back_exactly(table, delimiter: str, encoding: str) -> None:
    header, rows = table
    data = L.csv_bytes([header, *rows], delimiter=delimiter, encoding=encoding)
    assume(not any(data.startswith(m) for m in (b"PK", b"%PDF", b"GIF8")))
    lf = read_leads(data, "p.csv", delimiter=delimiter)
    kept, ids = _expected(rows)
    assert_frame(lf, [header, *kept], ids)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_property_delimiter_is_detected(data, delimiter: str) -> None:
    others = "".join(d for d in ",;\t|" if d != delimiter) + "\x00"
    cell = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=others), max_size=10)
    header, rows = data.draw(tables(cell=cell, name=cell.map(str.strip).filter(bool)))
    assume(len(header) >= 2)
    raw = L.csv_bytes([header, *rows], delimiter=delimiter)
    lf = read_leads(raw, "d.csv")
    assert lf.delimiter == delimiter
    kept, ids = _expected(rows)
    assert_frame(lf, [header, *kept], ids)


# Excel cannot store most C0 control characters, and XML turns a lone CR into LF.
XLSX_TEXT = st.text(
    st.characters(
        exclude_categories=("Cs",), exclude_characters="".join(chr(c) for c in range(32) if c not in (9, 10))
    ),
    max_size=10,
)


@settings(max_examples=25, deadline=None)
@given(table=tables(cell=XLSX_TEXT, name=XLSX_TEXT.map(str.strip).filter(bool), max_cols=4))
def test_property_any_xlsx_text_table_reads_back_exactly(table) -> None:
    header, rows = table
    lf = read_leads(L.xlsx_bytes({"Leads": [header, *rows]}), "p.xlsx")
    kept, ids = _expected(rows)
    assert_frame(lf, [header, *kept], ids)


def test_generator_files_are_deterministic() -> None:
    assert L.apollo_csv(10) == L.apollo_csv(10) and L.salesforce_csv(5) == L.salesforce_csv(5)
    assert pd.read_csv(io.BytesIO(L.apollo_csv(10)), dtype=str, keep_default_na=False).shape == (10, 12)
