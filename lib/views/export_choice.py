"""What the Results page says about the CSV export choice: for a spreadsheet or to import into a CRM."""

from __future__ import annotations

import pandas as pd

from lib import export
from lib.leads.common import plural


def csv_choices(frame: pd.DataFrame) -> dict[str, str]:
    """Each CSV choice with what it changes in this table, in plain words."""
    changes = export.csv_changes(frame)
    examples = ", ".join(repr(e) for e in changes.examples[:3])
    if changes.spreadsheet:
        sheet = (
            f"For a spreadsheet (Excel, Google Sheets): {plural(changes.spreadsheet, 'cell')} that a spreadsheet "
            f"would run as a formula {'gets' if changes.spreadsheet == 1 else 'get'} a leading apostrophe "
            f"(e.g. {examples})."
        )
        crm = (
            "To import into a CRM: every cell exactly as it is (changes nothing; don't open this file in a "
            f"spreadsheet, where {plural(changes.spreadsheet, 'cell')} would run as formulas)."
        )
    else:
        sheet = (
            "For a spreadsheet (Excel, Google Sheets): no cell would run as a formula, so nothing changes."
        )
        crm = "To import into a CRM: every cell exactly as it is (changes nothing)."
    return {"spreadsheet": sheet, "crm": crm}


def xlsx_note(warnings: list[str]) -> str:
    """What the XLSX export changes: only Excel's own limits; text is never given an apostrophe."""
    if warnings:
        return "\n".join(warnings)
    return "Nothing: every cell is written as exact text, which Excel shows and never runs as a formula."
