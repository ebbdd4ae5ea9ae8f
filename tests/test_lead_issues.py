"""One table of cases per numbered point of issue 12, each with the message a sales-ops person reads.

Item 7 (the command line refuses ragged rows) is in tests/test_cli_leads.py; item 9 (exports) is
also covered in depth in tests/test_export.py.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import openpyxl
import pandas as pd
import pytest

from lib import export
from lib.leads import LeadFileError, read_leads
from tests import leadfiles as L


def table(lf) -> list[list[str]]:
    return [list(lf.df.columns), *lf.df.values.tolist()]


def plain_rows(n: int, sep: str = ",") -> list[list[str]]:
    return [[f"Person {i}", f"p{i}@example.com", "Boston"] for i in range(n)]


def with_one(word: str, n: int = 50) -> list[list[str]]:
    return [["Name", "Email", "City"], *plain_rows(n), ["Ann Lee", "ann@example.com", word]]


# ---- 1. single-byte files are not read as Chinese or Japanese ---------------------------------------

ENCODING_CASES = [
    # (id, rows, encoding written, delimiter, newline, encoding read, words in the warning)
    ("one São Paulo in 51 cp1252 rows", with_one("São Paulo"), "cp1252", ",", "\r\n", "cp1252",
     ["not certain", "'São Paulo' or 'Săo Paulo'", "choose the encoding"]),
    ("Åsa among ASCII", with_one("Åsa Berg"), "cp1252", ",", "\r\n", "cp1252", ["'Åsa Berg' or"]),
    ("Raúl among ASCII", with_one("Raúl Díaz"), "cp1252", ",", "\r\n", "cp1252",
     ["read as Windows Western (cp1252, Excel on Windows)"]),
    ("Kühne, pipe-separated", with_one("Kühne + Nagel"), "cp1252", "|", "\r\n", "cp1252", ["cp1252"]),
    ("email with an accent", with_one("josé@café.example"), "cp1252", ",", "\r\n", "cp1252", ["cp1252"]),
    ("Latin-1 fixture words", with_one("Ångström Ärzte Ðorđe"[:16]), "latin-1", ",", "\r\n", "cp1252", ["cp1252"]),
    ("real Cyrillic stays cp1251", [["Имя", "Компания"], ["Иван Петров", "Газпром"]], "cp1251", ",", "\r\n",
     "cp1251", ["read as cp1251"]),
    ("Central European names", [["Name", "City"], ["Łukasz Żółć", "Łódź"], ["Paweł Świątek", "Gdańsk"]],
     "cp1250", ",", "\r\n", "cp1250", ["Central European (cp1250)"]),
    ("DOS export", [["Name", "City"], ["Jürgen Müller", "Köln"], ["Zoë Brontë", "Séte"]], "cp850", ";", "\r\n",
     "cp850", ["DOS Western (cp850)"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rows", "written", "delim", "newline", "read_as", "words"), ENCODING_CASES,
                         ids=[c[0] for c in ENCODING_CASES])  # fmt: skip
def test_1_single_byte_files_read_with_the_right_letters(name, rows, written, delim, newline, read_as, words):
    data = L.csv_bytes(rows, delimiter=delim, encoding=written, newline=newline)
    lf = read_leads(data, "leads.csv")
    assert table(lf) == rows
    assert lf.encoding == read_as and lf.detected_encoding == read_as
    message = " ".join(lf.warnings)
    for word in words:
        assert word in message


def test_1_close_candidates_carry_the_cells_that_differ_and_the_user_can_choose() -> None:
    data = L.csv_bytes(with_one("São Paulo"), encoding="cp1252")
    lf = read_leads(data, "leads.csv")
    assert lf.encoding_uncertain
    previews = {c.name: c.preview for c in lf.encoding_candidates}
    assert previews["cp1252"] == [(52, "São Paulo")] and previews["cp1250"] == [(52, "Săo Paulo")]
    chosen = read_leads(data, "leads.csv", encoding="cp1250")
    assert chosen.df.iloc[-1]["City"] == "Săo Paulo"
    assert (chosen.encoding, chosen.detected_encoding) == ("cp1250", "cp1252")
    assert [c.name for c in chosen.encoding_candidates] == [c.name for c in lf.encoding_candidates]


def test_1_a_forced_encoding_that_does_not_fit_names_the_line() -> None:
    data = L.csv_bytes(with_one("Zoë"), encoding="cp1252")
    with pytest.raises(LeadFileError, match=r"can't be read as utf-8: byte 0xeb on line 52.*mac_roman"):
        read_leads(data, "leads.csv", encoding="utf-8")


# ---- 2. Excel for Mac "CSV (Macintosh)" -------------------------------------------------------------

MAC_CASES = [
    ("José Núñez", [["Name", "Email"], ["José Núñez", "jose@example.com"]]),
    ("Müller", [["Name", "Email"], ["Jan Müller", "jan@example.com"], ["Bob", "bob@example.com"]]),
    ("no ç or è", [["Name", "City"], ["Zoë Ørsted", "Zürich"], ["Ana", "Málaga"]]),
]


@pytest.mark.parametrize(("name", "rows"), MAC_CASES, ids=[c[0] for c in MAC_CASES])
def test_2_excel_for_mac_csv_reads_mac_roman(name, rows) -> None:
    lf = read_leads(L.csv_bytes(rows, encoding="mac_roman", newline="\r"), "mac.csv")
    assert table(lf) == rows
    assert lf.encoding == "mac_roman"
    assert "Mac Roman (Excel for Mac 'CSV (Macintosh)')" in " ".join(lf.warnings)


# ---- 3. XLSX display formats ------------------------------------------------------------------------

XLSX_FORMATS = [
    ("zip 00000", 2134, "00000", "02134"),
    ("zip+4", 21341234, "00000-0000", "02134-1234"),
    ("phone", 6175550100, "(###) ###-####", "(617) 555-0100"),
    ("phone with condition", 5550100, "[<=9999999]###-####;(###) ###-####", "555-0100"),
    ("percent", 0.15, "0%", "15%"),
    ("thousands", 1250000, "#,##0", "1,250,000"),
    ("money", 165500, '"$"#,##0.00', "$165,500.00"),
    ("money, locale tag", 1234.5, "[$€-407] #,##0.00", "€ 1,234.50"),
    ("negative in parentheses", -1250, "#,##0;(#,##0)", "(1,250)"),
    ("date iso", dt.datetime(2024, 12, 31, 13, 45), "yyyy-mm-dd", "2024-12-31"),
    ("Excel short date (id 14)", dt.datetime(2024, 12, 31), "mm-dd-yy", "12/31/2024"),
    ("date and time", dt.datetime(2024, 12, 31, 13, 45), "m/d/yyyy h:mm", "12/31/2024 13:45"),
    ("time AM/PM", dt.datetime(2024, 12, 31, 13, 45), "h:mm AM/PM", "1:45 PM"),
    ("month name", dt.datetime(2024, 1, 5), "mmmm d, yyyy", "January 5, 2024"),
    ("text @", "02134", "@", "02134"),
    ("General", 0.1, "General", "0.1"),
]


@pytest.mark.parametrize(("name", "value", "fmt", "shown"), XLSX_FORMATS, ids=[c[0] for c in XLSX_FORMATS])
def test_3_xlsx_cells_read_as_excel_shows_them(name, value, fmt, shown) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Value"])
    wb.active.append([value])
    wb.active["A2"].number_format = fmt
    buf = io.BytesIO()
    wb.save(buf)
    assert table(read_leads(buf.getvalue(), "f.xlsx")) == [["Value"], [shown]]


def test_3_formulas_keep_their_cached_value_and_a_formula_without_one_is_named() -> None:
    data = L.xlsx_bytes(
        {
            "Leads": [
                ["Name", "Score", "Double"],
                ["Ann", 2, L.Formula("B2*2", 4)],
                ["Bob", 3, L.Formula("B3*2", None)],
            ]
        }
    )
    lf = read_leads(data, "f.xlsx")
    assert table(lf) == [["Name", "Score", "Double"], ["Ann", "2", "4"], ["Bob", "3", ""]]
    assert any(
        "1 cell of sheet 'Leads' hold a formula that was never calculated (C3), so they are read as empty"
        in w
        for w in lf.warnings
    )


# ---- 4. report preambles and footers ----------------------------------------------------------------

FOOTER_CSV = (
    b'"Leads by Owner"\r\n\r\n"Name","Email","Company","Revenue"\r\n"Ann","ann@x.com","Acme","$100,000.00"\r\n'
    b'"Bob","bob@x.com","Globex","$65,500.00"\r\n\r\n"Grand Totals (2 records)","","","$165,500.00"\r\n\r\n'
    b'"Confidential Information - Do Not Distribute"\r\n"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\r\n'
    b'"Generated By:  Ann Admin  12/31/2024 1:45 PM"\r\n'
)
FOOTER_ROWS = [
    ["Leads by Owner"],
    [],
    ["Name", "Email", "Company", "Revenue"],
    ["Ann", "ann@x.com", "Acme", "$100,000.00"],
    ["Bob", "bob@x.com", "Globex", "$65,500.00"],
    [],
    ["Grand Totals (2 records)", "", "", "$165,500.00"],
    ["Confidential Information - Do Not Distribute"],
    ["Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."],
    ["Generated By:  Ann Admin  12/31/2024 1:45 PM"],
]
SET_ASIDE_CSV = [(1, "a title or note above the column names"), (7, "a report total"),
                 (9, "a confidentiality notice"), (10, "a copyright line"), (11, "a 'Generated by' note")]  # fmt: skip
SET_ASIDE_XLSX = [(1, "a title or note above the column names"), (7, "a report total"),
                  (8, "a confidentiality notice"), (9, "a copyright line"), (10, "a 'Generated by' note")]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "filename", "aside", "unit"),
    [
        ("csv", FOOTER_CSV, "r.csv", SET_ASIDE_CSV, "line"),
        ("xlsx", L.xlsx_bytes({"Report": FOOTER_ROWS}), "r.xlsx", SET_ASIDE_XLSX, "row"),
    ],
)
def test_4_report_titles_and_footers_are_set_aside_never_leads(name, data, filename, aside, unit) -> None:
    lf = read_leads(data, filename)
    assert table(lf) == [["Name", "Email", "Company", "Revenue"], ["Ann", "ann@x.com", "Acme", "$100,000.00"],
                         ["Bob", "bob@x.com", "Globex", "$65,500.00"]]  # fmt: skip
    assert [(s.line, s.reason) for s in lf.set_aside] == aside
    note = next(w for w in lf.warnings if w.startswith("Set aside"))
    assert note.startswith(f"Set aside 5 {unit}s that are not leads: {unit} 1 ")
    assert "(a report total)" in note


@pytest.mark.parametrize(
    "last",
    [
        ["Total Wine & More", "t@x.com", "Total Wine", "$1"],
        ["Copyright Clearance Center", "c@x.com", "CCC", "$2"],
        ["Confidential Couriers", "cc@x.com", "CC Ltd", "$3"],
    ],
    ids=["Total Wine", "Copyright Clearance Center", "Confidential Couriers"],
)
def test_4_leads_whose_names_start_like_a_footer_stay_leads(last) -> None:
    rows = [["Name", "Email", "Company", "Revenue"], ["Ann", "a@x.com", "Acme", "$1"], last]
    lf = read_leads(L.csv_bytes(rows), "l.csv")
    assert table(lf) == rows and lf.set_aside == []


# ---- 5. quotes that never close --------------------------------------------------------------------

QUOTE_CASES = [
    ("closes in a later value",
     b'Name,Email,Company\r\nAnn,ann@x.com,Acme\r\nBob,bob@x.com,"Big\r\nCat,cat@x.com,Initech\r\nDan,dan@x.com,"Dan Co\r\nEve,e@x.com,E\r\n',
     r'Line 3: a quote \("\) opened on this line is not closed before the next line, so lines 3 to 5 would be '
     r"merged into one cell and the rows on lines 4 to 5 would be lost\. Close the quote on line 3"),
    ("never closes", b'Name,Notes\r\nAnn,"never closed\r\nBob,fine\r\nCy,fine\r\n',
     r'Line 2: a quote \("\) opened on this line is never closed, so lines 2 to 4 would all become one cell'),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "message"), QUOTE_CASES, ids=[c[0] for c in QUOTE_CASES])
def test_5_an_unclosed_quote_is_refused_at_the_line_it_opens(name, data, message) -> None:
    with pytest.raises(LeadFileError, match=message):
        read_leads(data, "q.csv")


def test_5_a_quoted_line_break_that_closes_properly_is_kept() -> None:
    rows = [["Name", "Notes"], ["Ann", "line one\nline two, with a comma"], ["Bob", ""]]
    assert table(read_leads(L.csv_bytes(rows), "n.csv")) == rows


# ---- 6. header detection ---------------------------------------------------------------------------

HEADER_CASES = [
    ("a data row never wins by having more fields", b"Name,Email\r\nJohn Smith,john@acme.com,Acme, Inc.\r\n",
     r"^Line 2 has 4 fields but the header has 2 \(line 1\)\. A value probably contains an unquoted comma "
     r'\(like "Acme, Inc\."\)', [2]),
    ("most rows carry an unquoted comma: those are blamed, not the clean ones",
     b"Name,Email,Company\r\nAnn,a@x.com,Acme, Inc.\r\nBob,b@x.com,Acme, Inc.\r\nCy,c@x.com,Globex\r\nDi,d@x.com,Acme, Inc.\r\n",
     r"^Line 2 has 4 fields but the header has 3 \(line 1\)\. Also lines 3, 5\.", [2, 3, 5]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "message", "lines"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_6_the_real_header_is_kept_and_the_breaking_lines_are_named(name, data, message, lines) -> None:
    with pytest.raises(LeadFileError, match=message) as err:
        read_leads(data, "h.csv")
    assert [r.line for r in err.value.rejected] == lines


def test_6_a_title_line_above_the_header_is_still_passed_over() -> None:
    lf = read_leads(b"Leads export, May 2024\r\nName,Email,Zip\r\nAnn,a@x.com,02134\r\n", "t.csv")
    assert table(lf) == [["Name", "Email", "Zip"], ["Ann", "a@x.com", "02134"]]


# ---- 8. separators the reader does not know ---------------------------------------------------------

SEPARATOR_CASES = [
    ("colon", b"Name:Email:City\nAnn:a@x.com:Boston\nBob:b@x.com:Austin\n", ":",
     [["Name", "Email", "City"], ["Ann", "a@x.com", "Boston"], ["Bob", "b@x.com", "Austin"]],
     "The columns are separated by ':', an unusual separator"),
    ("tilde", b"Name~Email\nAnn~a@x.com\nBob~b@x.com\n", "~", [["Name", "Email"], ["Ann", "a@x.com"], ["Bob", "b@x.com"]],
     "separated by '~'"),
    ("plus", b"Name+Email\nAnn+a@x.com\nBob+b@x.com\n", "+", [["Name", "Email"], ["Ann", "a@x.com"], ["Bob", "b@x.com"]],
     "separated by '+'"),
    ("uneven colons: one column and a plain warning", b"Name:Email:City\nAnn:a@x.com\nBob:b@x.com:Austin:x\nCy\n", ",",
     [["Name:Email:City"], ["Ann:a@x.com"], ["Bob:b@x.com:Austin:x"], ["Cy"]],
     "One column found; the file may be separated by ':'."),
    ("URLs and times are no separator", b"Website,Time\nhttps://a.example,10:30\nhttps://b.example,11:00\n", ",",
     [["Website", "Time"], ["https://a.example", "10:30"], ["https://b.example", "11:00"]], None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "delim", "rows", "warning"), SEPARATOR_CASES,
                         ids=[c[0] for c in SEPARATOR_CASES])  # fmt: skip
def test_8_unusual_separators_are_detected_or_named(name, data, delim, rows, warning) -> None:
    lf = read_leads(data, "s.csv")
    assert (table(lf), lf.delimiter) == (rows, delim)
    found = [w for w in lf.warnings if "separat" in w]
    assert (found[0] if found else None) == (
        None if warning is None else next(w for w in found if warning in w)
    )


def test_header_only_stays_a_warning() -> None:
    lf = read_leads(b"Name,Email\r\n", "h.csv")
    assert table(lf) == [["Name", "Email"]] and lf.warnings == ["The file has column names but no rows."]


def test_xlsx_opens_on_the_first_sheet_holding_a_table() -> None:
    data = L.xlsx_bytes(
        {"Cover": [["Quarterly leads"], ["Prepared by Ann"]], "Leads": [["Name", "Email"], ["Ann", "a@x"]]}
    )
    lf = read_leads(data, "c.xlsx")
    assert lf.sheet == "Leads" and table(lf) == [["Name", "Email"], ["Ann", "a@x"]]
    assert "Sheet 'Cover' holds no table (only single notes) and was passed over." in lf.warnings


# ---- 9. exports change only what must change -------------------------------------------------------

EXPORT_CASES = [
    # (cell, CSV for a spreadsheet, CSV for a CRM, XLSX)
    ("+1 (555) 0123", "'+1 (555) 0123", "+1 (555) 0123", "+1 (555) 0123"),
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")", "=HYPERLINK(\"http://x\")", "=HYPERLINK(\"http://x\")"),
    ("-5", "-5", "-5", "-5"),
    ("@ann", "'@ann", "@ann", "@ann"),
    ("02134", "02134", "02134", "02134"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "spreadsheet", "crm", "xlsx"), EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES]
)
def test_9_exports_change_only_what_must_change(cell, spreadsheet, crm, xlsx) -> None:
    df = pd.DataFrame({"Phone": [cell], "cost_usd": [0.00011969999999999998]})
    sheet_csv = export.to_csv_bytes(df, "spreadsheet").decode("utf-8-sig").splitlines()
    crm_csv = export.to_csv_bytes(df, "crm").decode("utf-8-sig").splitlines()
    assert re.sub(r",0\.0001197$", "", sheet_csv[1]).strip('"').replace('""', '"') == spreadsheet
    assert re.sub(r",0\.0001197$", "", crm_csv[1]).strip('"').replace('""', '"') == crm
    ws = openpyxl.load_workbook(io.BytesIO(export.to_xlsx_bytes(df))).active
    assert (ws["A2"].value, ws["A2"].data_type, ws["B2"].value) == (xlsx, "s", 0.0001197)
    changes = export.csv_changes(df)
    assert (changes.spreadsheet, changes.crm) == (int(spreadsheet != cell), 0)


def test_xlsx_a_sparse_last_lead_stays_a_lead() -> None:
    """In a sheet, 'Bob' with nothing else looks like a one-cell note; only report patterns are set aside."""
    lf = read_leads(L.xlsx_bytes({"S": [["Name", "Email"], ["Ann", "a@x.com"], ["Bob"]]}), "s.xlsx")
    assert table(lf) == [["Name", "Email"], ["Ann", "a@x.com"], ["Bob", ""]] and lf.set_aside == []
