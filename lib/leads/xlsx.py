"""XLSX bytes -> LeadFile: zip-bomb checks before parsing, sheet choice, cells as the text Excel shows."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator

import openpyxl

from lib.leads.common import MB, LeadFile, LeadFileError, Limits, plural
from lib.leads.table import build_table, mode_count

SAVE_AS = (
    "Open it in Excel and save it as an Excel Workbook (.xlsx) or as 'CSV UTF-8', then upload that file."
)
SAMPLE_ROWS = 1000


def refuse_xls(data: bytes) -> LeadFileError:
    """The error for an old binary .xls (or an HTML page some CRMs name .xls)."""
    if data.lstrip()[:1] == b"<":
        return LeadFileError(f"This .xls file is really a web page (some CRMs export that way). {SAVE_AS}")
    return LeadFileError(f"Old Excel .xls files can't be read. {SAVE_AS}")


def check_zip(data: bytes, limits: Limits) -> None:
    """Refuse non-zips and zip bombs from the central directory alone, before any XML is inflated.

    zipfile stops inflating a member at its declared size (and then fails the CRC check), so a
    member that lies about its size cannot expand beyond what is checked here.
    """
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise LeadFileError(
            "This file is an old Excel .xls file or a password-protected workbook, which can't be read. "
            "Remove the password (File > Info > Protect Workbook) and " + SAVE_AS[0].lower() + SAVE_AS[1:]
        )
    if not data.startswith(b"PK"):
        raise LeadFileError(
            "This file is named .xlsx but isn't an Excel workbook"
            + (
                " (it looks like text: if it is a CSV file, rename it to .csv)"
                if _looks_like_text(data)
                else ""
            )
            + f". {SAVE_AS}"
        )
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise LeadFileError(
            f"This Excel file is damaged or incomplete and can't be opened. {SAVE_AS}"
        ) from None
    if len(infos) > limits.max_xlsx_members:
        raise _bomb(f"it holds {len(infos):,} parts")
    total = sum(i.file_size for i in infos)
    if total > limits.max_xlsx_uncompressed:
        raise _bomb(
            f"it would expand to {total / MB:,.0f} MB (limit {limits.max_xlsx_uncompressed / MB:,.0f} MB)"
        )
    for i in infos:
        if i.file_size > limits.xlsx_ratio_floor and i.file_size > limits.max_xlsx_ratio * max(
            i.compress_size, 1
        ):
            raise _bomb(f"'{i.filename}' is compressed {i.file_size // max(i.compress_size, 1):,} times")


def _bomb(detail: str) -> LeadFileError:
    return LeadFileError(
        f"This Excel file is too large to open safely: {detail}. Delete unused sheets, rows and "
        "formatting, or save the sheet you need as CSV and upload that."
    )


def _looks_like_text(data: bytes) -> bool:
    head = data[:2048]
    return (
        bool(head)
        and b"\x00" not in head
        and sum(32 <= b < 127 or b in (9, 10, 13) for b in head) > 0.9 * len(head)
    )


def open_workbook(data: bytes, limits: Limits):
    """openpyxl workbook in read-only mode with cached formula values, after the zip checks."""
    check_zip(data, limits)
    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, XML and zip errors for broken files
        raise LeadFileError(
            f"This file can't be opened as an Excel workbook ({type(exc).__name__}). {SAVE_AS}"
        ) from None


def list_sheets(data: bytes, limits: Limits) -> list[str]:
    wb = open_workbook(data, limits)
    try:
        return [ws.title for ws in wb.worksheets]
    finally:
        wb.close()


def cell_text(value: object) -> str:
    """The text a cell shows in Excel's General format; dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Excel keeps 15 significant digits; repr would show binary noise like 0.30000000000000004.
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _rows(ws, sheet: str, limits: Limits) -> Iterator[list[str]]:
    """Each sheet row (from row 1, gaps included) as text with trailing empty cells cut."""
    # The stored dimension can be wrong (some generators write A1); read what is really there.
    ws.reset_dimensions()
    for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
        if number > limits.max_rows + 10_000:
            raise LeadFileError(
                f"Sheet '{sheet}' has more than {limits.max_rows:,} rows, the limit. Split it into smaller files."
            )
        cells = [cell_text(v) for v in values]
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) > limits.max_columns:
            raise LeadFileError(
                f"Row {number:,} of sheet '{sheet}' has values in {len(cells):,} columns; the limit is "
                f"{limits.max_columns:,}. Delete the columns you don't need and upload it again."
            )
        yield cells


def _blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def read_xlsx(data: bytes, sheet: str | None, limits: Limits) -> LeadFile:
    """Read one sheet of an .xlsx into a LeadFile (see lib.leads.read_leads for the contract)."""
    wb = open_workbook(data, limits)
    try:
        names = [ws.title for ws in wb.worksheets]
        if sheet is not None and sheet not in names:
            raise LeadFileError(f"There is no sheet called '{sheet}'. The sheets are: {', '.join(names)}.")
        warnings: list[str] = []
        chosen, rows = None, []
        for ws in wb.worksheets:
            if sheet is not None and ws.title != sheet:
                continue
            rows = list(_rows(ws, ws.title, limits))
            if any(not _blank(r) for r in rows):
                chosen = ws.title
                break
            if sheet is not None:
                raise LeadFileError(f"Sheet '{sheet}' is empty. Choose another sheet: {', '.join(names)}.")
            warnings.append(f"Sheet '{ws.title}' is empty and was passed over.")
        if chosen is None:
            raise LeadFileError("The file is empty: no sheet in this workbook has any data.")
    finally:
        wb.close()
    if len(names) > 1:
        warnings.append(f"Read sheet '{chosen}' of {len(names)}: {', '.join(names)}.")
    return _sheet_to_leadfile(rows, chosen, names, warnings, limits)


def _sheet_to_leadfile(
    rows: list[list[str]], sheet: str, names: list[str], warnings: list[str], limits: Limits
):
    nonblank = [i for i, r in enumerate(rows) if not _blank(r)]
    m = mode_count([len(rows[i]) for i in nonblank[:SAMPLE_ROWS]])
    # Title rows above the header ("Leads export, May") fill fewer cells than the table's usual width.
    hi = next(i for i in nonblank if len(rows[i]) >= m)
    body = [i for i in nonblank if i > hi]
    width = max(len(rows[i]) for i in [hi, *body])
    if len(body) > limits.max_rows:
        raise LeadFileError(
            f"Sheet '{sheet}' has {len(body):,} rows; the limit is {limits.max_rows:,}. Split it."
        )
    header = rows[hi] + [""] * (width - len(rows[hi]))
    table_rows = [rows[i] + [""] * (width - len(rows[i])) for i in body]
    ids = list(range(1, len(body) + 1))
    table = build_table(header, table_rows, ids, [i + 1 for i in body], "row", limits)
    empty_rows = sum(1 for i in range(hi + 1, len(rows)) if rows[i] and _blank(rows[i]))
    if hi:
        warnings.append(f"Skipped {plural(hi, 'row')} above the column names (found on row {hi + 1:,}).")
    if empty_rows:
        warnings.append(f"Skipped {plural(empty_rows, 'empty row')}.")
    if not body:
        warnings.append("The sheet has column names but no rows.")
    return LeadFile(
        df=table.df,
        encoding=None,
        delimiter=None,
        renamed_headers=table.renamed_headers,
        rejected=[],
        skipped_preamble=hi,
        skipped_footer=0,
        dropped_empty_columns=table.dropped_empty_columns,
        sheet=sheet,
        sheets=names,
        warnings=warnings + table.warnings,
    )
