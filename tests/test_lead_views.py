"""lib/views helpers for issue 12: the encoding choice with a preview, set-aside lines, the CSV export choice."""

from __future__ import annotations

import pandas as pd

from lib.leads import read_leads
from lib.views import export_choice, lead_view
from tests import leadfiles as L

SAO = [["Name", "City"], *[[f"P{i}", "Boston"] for i in range(5)], ["Ana", "São Paulo"]]


def test_encoding_options_and_preview_show_the_cells_that_differ() -> None:
    lead = read_leads(L.csv_bytes(SAO, encoding="cp1252"), "l.csv")
    assert lead_view.encoding_options(lead)[:2] == ["cp1252", "cp1250"]
    assert (
        lead_view.encoding_label("cp1252", lead.detected_encoding)
        == "Windows Western (cp1252, Excel on Windows) (detected)"
    )
    preview = lead_view.encoding_preview(lead)
    assert preview.loc[0, "line"] == 7
    assert preview.loc[0, "Windows Western (cp1252, Excel on Windows)"] == "São Paulo"
    assert preview.loc[0, "Windows Central European (cp1250)"] == "Săo Paulo"
    chosen = read_leads(L.csv_bytes(SAO, encoding="cp1252"), "l.csv", encoding="cp1250")
    assert "Encoding: Windows Central European (cp1250) (your choice)." in lead_view.detected_facts(chosen)


def test_utf8_file_has_no_encoding_preview() -> None:
    lead = read_leads(L.csv_bytes(SAO), "l.csv")
    assert lead_view.encoding_options(lead) == ["utf-8"] and lead_view.encoding_preview(lead).empty


def test_set_aside_frame_lists_report_lines() -> None:
    data = b"Leads report\r\nName,Email\r\nAnn,a@x.com\r\nGrand Totals (1 records),\r\n"
    frame = lead_view.set_aside_frame(read_leads(data, "r.csv"))
    assert frame.to_dict("records") == [
        {"line": 1, "text": "Leads report", "why": "a title or note above the column names"},
        {"line": 4, "text": "Grand Totals (1 records)", "why": "a report total"},
    ]


def test_csv_choices_say_what_each_changes() -> None:
    choices = export_choice.csv_choices(pd.DataFrame({"Phone": ["+1 (555) 0123", "-5", "ok"]}))
    assert choices["spreadsheet"] == (
        "For a spreadsheet (Excel, Google Sheets): 1 cell that a spreadsheet would run as a formula gets a "
        'leading apostrophe (e.g. "\'+1 (555) 0123").'
    )
    assert choices["crm"].startswith("To import into a CRM: every cell exactly as it is (changes nothing;")
    assert "nothing changes" in export_choice.csv_choices(pd.DataFrame({"a": ["x"]}))["spreadsheet"]
    assert export_choice.xlsx_note([]).startswith("Nothing: every cell is written as exact text")
