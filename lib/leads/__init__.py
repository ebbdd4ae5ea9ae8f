"""Read lead lists (CSV from any CRM or Excel, XLSX) into a DataFrame of text, with clear errors.

Contract of `read_leads` (the app and the CLI rely on it):

* Cells: every cell is a Python str exactly as in the file, in columns of pandas' "string" dtype
  (pd.StringDtype; it never holds <NA>: an empty cell is ""). "02134", "+1 (555) 010-2000",
  "NA", "null", " spaced " stay as written. XLSX number cells become the text Excel shows in General
  format (2134 -> "2134", 0.1 -> "0.1"), dates ISO ("2024-01-05", "2024-01-05 13:45:00"),
  TRUE/FALSE, formulas their cached value (no cached value -> "").
* Row ids: the index "row_id" numbers data rows 1, 2, 3... in file order. Blank lines and rows whose
  cells are all empty are not data rows and get no id. Rejected rows keep their ids (which are then
  missing from the frame): ids are never renumbered, so re-reading a file gives the same ids.
* Lines: RejectedLine.line, skipped_preamble and skipped_footer count physical lines of the decoded
  text (\\n, \\r\\n or \\r), as a text editor shows them; for XLSX, sheet rows.
* Header: the first record whose field count reaches the dominant count of the body; lines above it
  are the preamble. Trailing one-field lines (when the header has several) are the footer. XLSX has
  no footer detection (a sparse last row looks the same as a "Total" row there).
* Names: stripped of surrounding spaces; blanks become "Column N" (N = 1-based position in the
  file); duplicates "Email (2)", "Email (3)". Columns with a blank name and no values are dropped.
  `renamed_headers` maps each new name to the original, in column order.
* Ragged rows: a row with more fields than the header (unless the extras are empty) or fewer (unless
  only unnamed trailing columns are missing) is rejected: `ragged="reject"` raises LeadFileError
  naming the lines; `ragged="skip"` leaves them out and lists them in `rejected`.
* Header only: not an error; an empty frame with the columns and a warning.
* NUL characters are removed (with a warning): CSV has no way to mean them and they break prompts.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import Literal

from lib.leads.common import LIMITS, LeadFile, LeadFileError, Limits, RejectedLine
from lib.leads.csv_reader import read_csv
from lib.leads.table import TEXT_DTYPE
from lib.leads.xlsx import list_sheets as _list_sheets
from lib.leads.xlsx import read_xlsx, refuse_xls

__all__ = [
    "LIMITS",
    "TEXT_DTYPE",
    "LeadFile",
    "LeadFileError",
    "Limits",
    "RejectedLine",
    "list_sheets",
    "read_leads",
]

XLSX_SUFFIXES = (".xlsx", ".xlsm")
OTHER_SPREADSHEETS = {
    ".xlsb": "an Excel binary workbook (.xlsb)",
    ".ods": "an OpenDocument spreadsheet (.ods)",
    ".numbers": "an Apple Numbers file",
}


def read_leads(
    data: bytes,
    filename: str,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    ragged: Literal["reject", "skip"] = "reject",
    limits: Limits = LIMITS,
) -> LeadFile:
    """Read a CSV/TSV/TXT or XLSX lead list; the file type comes from the name's extension.

    `sheet` picks an XLSX sheet (default: the first with data); `encoding` and `delimiter` override
    detection for CSV; `limits` exists for tests and for operators who need other ceilings.
    """
    if ragged not in ("reject", "skip"):
        raise ValueError(f"ragged must be 'reject' or 'skip', not {ragged!r}")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise LeadFileError(
            f"{delimiter!r} can't be used as a delimiter: choose one character such as , ; | or tab."
        )
    if len(data) > limits.max_bytes:
        raise LeadFileError(
            f"The file is {len(data) / 1024 / 1024:,.0f} MB; the limit is {limits.max_bytes / 1024 / 1024:,.0f} MB. "
            "Split it into smaller files or delete columns you don't need."
        )
    if not data:
        raise LeadFileError("The file is empty: it has no content at all (0 bytes).")
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".xls":
        raise refuse_xls(data)
    if suffix in OTHER_SPREADSHEETS:
        raise LeadFileError(
            f"This is {OTHER_SPREADSHEETS[suffix]}, which can't be read. Save it as an Excel Workbook (.xlsx) "
            "or as 'CSV UTF-8', then upload that file."
        )
    with _no_cyclic_gc():
        if suffix in XLSX_SUFFIXES:
            return read_xlsx(data, sheet, limits)
        return read_csv(data, filename, encoding, delimiter, ragged, limits)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while millions of cells are allocated.

    Reading creates no reference cycles, but the allocations trigger repeated full collections over
    the growing row lists: with the collector on, 100,000 rows take about twice as long.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def list_sheets(data: bytes, *, limits: Limits = LIMITS) -> list[str]:
    """Worksheet names of an .xlsx, in workbook order (chart sheets excluded)."""
    if len(data) > limits.max_bytes:
        raise LeadFileError(f"The file is larger than {limits.max_bytes / 1024 / 1024:,.0f} MB, the limit.")
    return _list_sheets(data, limits)
