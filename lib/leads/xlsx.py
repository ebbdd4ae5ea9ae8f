"""XLSX bytes -> LeadFile: zip-bomb checks before parsing, sheet choice, cells as the text Excel shows
(each cell's number format applied by lib.leads.numfmt), formulas' cached values, report lines set aside."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

import openpyxl
from openpyxl.cell.read_only import ReadOnlyCell

from lib.leads.common import MB, LeadFile, LeadFileError, Limits, plural
from lib.leads.header import find_header
from lib.leads.numfmt import format_value, general
from lib.leads.report_lines import footer_start, set_aside_lines, set_aside_warning
from lib.leads.table import build_table

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
    return general(value)


_FORMULA_NO_VALUE = re.compile(
    rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]+[0-9]+)"[^>]*>\s*<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*'
    rb"(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)


def formulas_without_value(wb, ws, limit: int = 1000) -> list[str]:
    """Cells of `ws` holding a formula that was never calculated (no cached value): read as empty.

    The sheet's XML is scanned in chunks (it can be hundreds of MB); a chunk ends at the last cell end
    so no cell is cut in two.
    """
    try:
        src = wb._archive.open(ws._worksheet_path)
    except (AttributeError, KeyError, OSError):
        return []
    found: list[str] = []
    carry = b""
    with src:
        while len(found) < limit:
            chunk = src.read(1 << 20)
            data = carry + chunk
            # 'c>' ends '</c>' and '</x:c>'; a cut elsewhere could only miss one uncalculated formula.
            cut = len(data) if not chunk else data.rfind(b"c>") + 2
            body, carry = data[:cut], data[cut:]
            if b"<f" in body or b":f" in body:
                found.extend(m.group(1).decode() for m in _FORMULA_NO_VALUE.finditer(body))
            if not chunk:
                break
    return found[:limit]


def _parsed_rows(ws) -> Iterator[tuple[int, list[dict]]]:
    """(sheet row, cells as openpyxl's parser gives them: column, value, style_id).

    openpyxl's read-only iter_rows wraps every cell in an object only to hand back its value and
    style; reading the parser directly halves the time of a formatted sheet. Falls back to iter_rows
    if openpyxl's internals change.
    """
    try:
        from openpyxl.worksheet._reader import WorkSheetParser

        wb = ws.parent
        src = ws._get_source()
        parser = WorkSheetParser(
            src,
            ws._shared_strings,
            data_only=wb.data_only,
            epoch=wb.epoch,
            date_formats=wb._date_formats,
            timedelta_formats=wb._timedelta_formats,
        )
    except (AttributeError, ImportError, TypeError):
        for number, row in enumerate(ws.iter_rows(), start=1):
            yield (
                number,
                [
                    {"column": c.column, "value": c.value, "style_id": getattr(c, "_style_id", 0)}
                    for c in row
                    if c.value is not None
                ],
            )
        return
    with src:
        yield from parser.parse()


def _rows(ws, sheet: str, limits: Limits) -> Iterator[list[str]]:
    """Each sheet row (from row 1, gaps included) as the text Excel shows, trailing empty cells cut."""
    formats: dict[int, str] = {}
    expected = 1
    for number, parsed in _parsed_rows(ws):
        if number > limits.max_rows + 10_000:
            raise LeadFileError(
                f"Sheet '{sheet}' has more than {limits.max_rows:,} rows, the limit. Split it into smaller files."
            )
        while expected < number:  # rows the file leaves out are empty rows
            expected += 1
            yield []
        expected = number + 1
        cells: list[str] = []
        for cell in parsed:
            value = cell["value"]
            if value is None:
                continue
            column = cell["column"]
            if isinstance(value, str):
                text = value
            else:
                style = cell.get("style_id") or 0
                code = formats.get(style)
                if code is None:
                    code = formats[style] = _number_format(ws, style)
                text = format_value(value, code)
            if len(cells) < column - 1:
                cells.extend([""] * (column - 1 - len(cells)))
            cells.append(text)
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) > limits.max_columns:
            raise LeadFileError(
                f"Row {number:,} of sheet '{sheet}' has values in {len(cells):,} columns; the limit is "
                f"{limits.max_columns:,}. Delete the columns you don't need and upload it again."
            )
        yield cells


def _number_format(ws, style_id: int) -> str:
    try:
        return ReadOnlyCell(ws, 0, 0, None, "n", style_id).number_format or "General"
    except (AttributeError, IndexError, KeyError):
        return "General"


def _blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def _has_table(rows: list[list[str]]) -> bool:
    """A row with two or more filled cells: a sheet of one title line or notes holds no table."""
    return any(sum(1 for c in r if c.strip()) >= 2 for r in rows)


def read_xlsx(data: bytes, sheet: str | None, limits: Limits) -> LeadFile:
    """Read one sheet of an .xlsx into a LeadFile (see lib.leads.read_leads for the contract)."""
    wb = open_workbook(data, limits)
    try:
        names = [ws.title for ws in wb.worksheets]
        if sheet is not None and sheet not in names:
            raise LeadFileError(f"There is no sheet called '{sheet}'. The sheets are: {', '.join(names)}.")
        warnings: list[str] = []
        chosen, rows, fallback = None, [], None
        uncalculated: list[str] = []
        for ws in wb.worksheets:
            if sheet is not None and ws.title != sheet:
                continue
            sheet_rows = list(_rows(ws, ws.title, limits))
            empty = not any(not _blank(r) for r in sheet_rows)
            if sheet is not None:
                if empty:
                    raise LeadFileError(
                        f"Sheet '{sheet}' is empty. Choose another sheet: {', '.join(names)}."
                    )
                chosen, rows = ws.title, sheet_rows
            elif empty:
                warnings.append(f"Sheet '{ws.title}' is empty and was passed over.")
                continue
            elif not _has_table(sheet_rows):
                fallback = fallback or (ws.title, sheet_rows, ws)
                warnings.append(f"Sheet '{ws.title}' holds no table (only single notes) and was passed over.")
                continue
            else:
                chosen, rows = ws.title, sheet_rows
            uncalculated = formulas_without_value(wb, ws)
            break
        if chosen is None and fallback is not None:
            chosen, rows = fallback[0], fallback[1]
            uncalculated = formulas_without_value(wb, fallback[2])
            warnings = [w for w in warnings if f"'{chosen}' holds no table" not in w]
        if chosen is None:
            raise LeadFileError("The file is empty: no sheet in this workbook has any data.")
    finally:
        wb.close()
    if len(names) > 1:
        warnings.append(f"Read sheet '{chosen}' of {len(names)}: {', '.join(names)}.")
    if uncalculated:
        shown = ", ".join(uncalculated[:5]) + (" ..." if len(uncalculated) > 5 else "")
        warnings.append(
            f"{plural(len(uncalculated), 'cell')} of sheet '{chosen}' hold a formula that was never calculated "
            f"({shown}), so they are read as empty. Open the file in Excel, let it calculate, save it and "
            "upload it again."
        )
    return _sheet_to_leadfile(rows, chosen, names, warnings, limits)


def _sheet_to_leadfile(
    rows: list[list[str]], sheet: str, names: list[str], warnings: list[str], limits: Limits
):
    nonblank = [i for i, r in enumerate(rows) if not _blank(r)]
    # Title rows above the header ("Leads export, May") fill fewer cells than the table's usual width.
    hi = find_header(rows, nonblank, SAMPLE_ROWS)
    # A sparse last row ('Bob' and nothing else) looks like a one-cell footer line in a sheet, where
    # trailing empty cells leave no trace: only report-line patterns are set aside here.
    fi = footer_start(rows, nonblank, hi, len(rows[hi]), lone_cells=False)
    body = [i for i in nonblank if hi < i < fi]
    width = max(len(rows[i]) for i in [hi, *body])
    if len(body) > limits.max_rows:
        raise LeadFileError(
            f"Sheet '{sheet}' has {len(body):,} rows; the limit is {limits.max_rows:,}. Split it."
        )
    header = rows[hi] + [""] * (width - len(rows[hi]))
    table_rows = [rows[i] + [""] * (width - len(rows[i])) for i in body]
    ids = list(range(1, len(body) + 1))
    table = build_table(header, table_rows, ids, [i + 1 for i in body], "row", limits)
    empty_rows = sum(1 for i in range(hi + 1, fi) if rows[i] and _blank(rows[i]))
    set_aside = set_aside_lines(
        [(i + 1, rows[i], " | ".join(c for c in rows[i] if c)) for i in range(hi)], footer=False
    ) + set_aside_lines(
        [(i + 1, rows[i], " | ".join(c for c in rows[i] if c)) for i in range(fi, len(rows))], footer=True
    )
    if note := set_aside_warning(set_aside, unit="row"):
        warnings.append(note)
    if empty_rows:
        warnings.append(f"Skipped {plural(empty_rows, 'empty row')}.")
    if not body:
        warnings.append("The sheet has column names but no rows.")
    footer = (nonblank[-1] - fi + 1) if fi < len(rows) and nonblank[-1] >= fi else 0
    return LeadFile(
        df=table.df,
        encoding=None,
        delimiter=None,
        renamed_headers=table.renamed_headers,
        rejected=[],
        skipped_preamble=hi,
        skipped_footer=footer,
        dropped_empty_columns=table.dropped_empty_columns,
        sheet=sheet,
        sheets=names,
        warnings=warnings + table.warnings,
        set_aside=set_aside,
    )
