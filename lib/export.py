"""Export a results table as CSV, XLSX or JSON bytes, with a formula-injection guard and atomic saves.

Decisions (see also the module constants):

- Formula guard (OWASP "CSV injection"), CSV only, and only where a spreadsheet would evaluate the cell:
  text or a header that starts with ``= + - @``, tab or carriage return gets a leading apostrophe, except
  a plain negative number such as "-5" or "-0.25" (a spreadsheet reads it as that number; nothing can
  run). "+1 555 0100" therefore leaves as "'+1 555 0100" in a CSV "for a spreadsheet" (the default).
  A CSV "to import into a CRM" (``csv_for="crm"``) keeps every cell's exact text: a CRM importer takes
  the apostrophe as part of the value. ``csv_changes()`` says how many cells each choice changes.
  The guard is idempotent; real numbers (int/float cells) are written as numbers and never touched.
- XLSX cells are exact text: every text cell is written as a string (``write_string``, formula, URL and
  number conversion off), which Excel never evaluates, so no apostrophe is added there.
- JSON keeps the raw text: it is read by programs, not spreadsheets, and a guard there would only corrupt data.
- Numbers: floats are written as clean decimals (15 significant digits, as Excel keeps them, no
  exponent in CSV): a cost of 0.00011969999999999998 leaves as 0.0001197.
- CSV: UTF-8 with a BOM (so Excel shows accents right), comma delimiter, minimal quoting, ``\\r\\n`` record
  ends (RFC 4180 and what Excel writes); line breaks inside a cell are kept exactly as they are.
- XLSX is written with xlsxwriter directly, every text cell through ``write_string`` with formula, URL and
  number conversion off: no live formulas, no hyperlinks (so no cells blanked after 65,530 links).
  Excel cells hold at most 32,767 characters: longer text is cut and ends with ``XLSX_TRUNCATION_MARKER``
  (the CSV and JSON exports keep it whole). XML cannot carry most control characters: in XLSX, ``\\r\\n``
  and a lone ``\\r`` become ``\\n`` (Excel's own in-cell line break) and the other C0 controls (tab and
  line feed excepted) and U+FFFE/U+FFFF are dropped. ``xlsx_warnings()`` lists those changes in plain words.
- Lone surrogates (undecodable bytes smuggled into a str) cannot be encoded in any format: they become U+FFFD.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import io
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xlsxwriter

log = logging.getLogger(__name__)

Format = Literal["csv", "xlsx", "json"]
CsvFor = Literal["spreadsheet", "crm"]
CSV_FOR_LABELS: dict[str, str] = {
    "spreadsheet": "for a spreadsheet (Excel, Google Sheets): cells that would run as formulas get an apostrophe",
    "crm": "to import into a CRM: every cell exactly as it is",
}

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection
GUARD = "'"

MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}

XLSX_CELL_LIMIT = 32_767  # Excel's limit, counted in UTF-16 code units
XLSX_TRUNCATION_MARKER = " [… cut at Excel's 32,767-character cell limit; the CSV/JSON export has it all]"
XLSX_MAX_ROWS = 1_048_576  # header included
XLSX_MAX_COLS = 16_384
XLSX_OPTIONS = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}
XLSX_MAX_WIDTH = 60
XLSX_MIN_WIDTH = 8
_WIDTH_SAMPLE_ROWS = 500  # widths come from a sample: exact widths are not worth a full pass
_SAFE_INT = 2**53  # beyond this Excel (15 significant digits) would change the number

_SURROGATES = re.compile("[\ud800-\udfff]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SHEET_ILLEGAL = re.compile(r"[\[\]:*?/\\]")
_STEM_ILLEGAL = re.compile(r"[^A-Za-z0-9._-]+")

Cell = str | int | float | bool | None


class ExportError(Exception):
    """An export could not be produced or saved; the message is meant for the user."""


# --- guard -------------------------------------------------------------------------------------------


_PLAIN_NEGATIVE = re.compile(r"-[0-9]+(\.[0-9]+)?")


def needs_guard(value: str) -> bool:
    """Would a spreadsheet opening a CSV evaluate this text as a formula?"""
    return value.startswith(FORMULA_PREFIXES) and not _PLAIN_NEGATIVE.fullmatch(value)


def guard_cell(value: str) -> str:
    """Prefix an apostrophe to text a spreadsheet would read as a formula; anything else is unchanged."""
    if needs_guard(value):
        return GUARD + value
    return value


@dataclass(frozen=True)
class CsvChanges:
    """What each CSV choice changes in a table: counts of cells (headers included) and a few examples."""

    spreadsheet: int
    crm: int
    examples: list[str] = field(default_factory=list)  # cells as the spreadsheet choice writes them


def csv_changes(df: pd.DataFrame, examples: int = 5) -> CsvChanges:
    """How many cells the guard changes in a CSV "for a spreadsheet" (a CRM CSV changes none)."""
    count, shown = 0, []
    texts = [_header(label) for label in df.columns]
    for column in _column_values(df):
        texts.extend(v for v in column if isinstance(v, str))
    for text in texts:
        if needs_guard(_fix_surrogates(text)):
            count += 1
            if len(shown) < examples:
                shown.append(GUARD + text)
    return CsvChanges(spreadsheet=count, crm=0, examples=shown)


def _guard_any(value: Any) -> Any:
    return guard_cell(value) if isinstance(value, str) else value


def _header(label: Any) -> str:
    if isinstance(label, tuple):  # MultiIndex columns
        return " / ".join(str(part) for part in label)
    return _fix_surrogates(label) if isinstance(label, str) else str(label)


def guard_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell and every header guarded; numbers, None and NaN stay as they are."""
    columns = []
    for position in range(df.shape[1]):
        series = df.iloc[:, position]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            values = [_guard_any(v) for v in series.tolist()]
            dtype = series.dtype if pd.api.types.is_string_dtype(series.dtype) else object
            series = pd.Series(values, index=df.index, dtype=dtype)
        columns.append(series)
    headers = [guard_cell(_header(label)) for label in df.columns]
    if not columns:
        return pd.DataFrame(index=df.index, columns=headers)
    guarded = pd.concat(columns, axis=1, ignore_index=True)
    guarded.columns = headers
    return guarded


# --- cell normalisation ------------------------------------------------------------------------------


def _fix_surrogates(text: str) -> str:
    return _SURROGATES.sub("\ufffd", text)


def _plain(value: Any) -> Cell:
    """One cell as None, bool, int, finite float or text; dates become ISO text, containers JSON text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return _fix_surrogates(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        return clean_float(number) if math.isfinite(number) else str(number)  # "inf": no blank, no crash
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list | tuple):
        return _fix_surrogates(json.dumps(value, ensure_ascii=False, default=str))
    return _fix_surrogates(str(value))


def clean_float(number: float) -> float:
    """The float with 15 significant digits, as Excel keeps it: 0.00011969999999999998 -> 0.0001197."""
    return float(format(number, ".15g"))


def decimal_text(number: float) -> str:
    """A clean float as a plain decimal, never an exponent: 1.197e-05 -> '0.00001197'."""
    text = repr(clean_float(number))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _column_values(df: pd.DataFrame) -> list[list[Any]]:
    # Column-wise tolist() is far cheaper than per-row access on a wide frame.
    return [df.iloc[:, position].tolist() for position in range(df.shape[1])]


def _rows(df: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    columns = _column_values(df)
    if not columns:
        yield from (() for _ in range(len(df)))
        return
    yield from zip(*columns, strict=True)


def _csv_cell(value: Any, guard: bool) -> str:
    cell = _plain(value)
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, float):
        return decimal_text(cell)
    if isinstance(cell, str):
        return guard_cell(cell) if guard else cell
    return str(cell)


# --- CSV ---------------------------------------------------------------------------------------------


def to_csv_bytes(df: pd.DataFrame, csv_for: CsvFor = "spreadsheet") -> bytes:
    """UTF-8 CSV with BOM, comma-delimited, minimal quoting, ``\\r\\n`` record ends, no index.

    ``csv_for="spreadsheet"`` guards cells a spreadsheet would evaluate; ``"crm"`` keeps exact text.
    """
    if csv_for not in CSV_FOR_LABELS:
        raise ValueError(f"csv_for must be 'spreadsheet' or 'crm', not {csv_for!r}")
    guard = csv_for == "spreadsheet"
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=",", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    headers = [_header(label) for label in df.columns]
    writer.writerow([guard_cell(h) for h in headers] if guard else headers)
    for row in _rows(df):
        writer.writerow([_csv_cell(v, guard) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX --------------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_cut(text: str, units: int) -> str:
    """The longest prefix of ``text`` that fits in ``units`` UTF-16 code units (never half a pair)."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def _xlsx_text(text: str) -> tuple[str, list[str]]:
    """Text as an XLSX cell can hold it, and plain-language notes on anything changed."""
    notes = []
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _XML_ILLEGAL.search(text):
        text = _XML_ILLEGAL.sub("", text)
        notes.append("invisible control characters were removed")
    # len() is a lower bound of the UTF-16 length, so most cells skip the exact count.
    if len(text) * 2 > XLSX_CELL_LIMIT and _utf16_len(text) > XLSX_CELL_LIMIT:
        original = len(text)
        text = _utf16_cut(text, XLSX_CELL_LIMIT - _utf16_len(XLSX_TRUNCATION_MARKER)) + XLSX_TRUNCATION_MARKER
        notes.append(f"text of {original:,} characters was cut to Excel's 32,767-character limit")
    return text, notes


def sanitize_sheet_name(name: str, default: str = "Leads") -> str:
    """A name Excel accepts: no []:*?/\\, no leading/trailing apostrophe, 1-31 characters, not "History"."""
    cleaned = _SHEET_ILLEGAL.sub("_", _XML_ILLEGAL.sub("", _fix_surrogates(name or "")))
    cleaned = cleaned.strip().strip("'")[:31].strip().strip("'")
    if not cleaned:
        return default
    if cleaned.casefold() == "history":  # reserved by Excel
        cleaned = cleaned + "_"
    return cleaned


def _check_xlsx_size(df: pd.DataFrame) -> None:
    if len(df) + 1 > XLSX_MAX_ROWS:
        raise ExportError(
            f"Excel sheets hold at most {XLSX_MAX_ROWS - 1:,} rows and this table has {len(df):,}. "
            "Export as CSV instead."
        )
    if df.shape[1] > XLSX_MAX_COLS:
        raise ExportError(
            f"Excel sheets hold at most {XLSX_MAX_COLS:,} columns and this table has {df.shape[1]:,}. "
            "Export as CSV instead."
        )


def _display_width(value: Cell) -> int:
    if value is None:
        return 0
    text = value if isinstance(value, str) else str(value)
    return max((len(line) for line in text.split("\n")), default=0)


def _write_xlsx_cell(sheet: Any, row: int, col: int, value: Cell, fmt: Any = None) -> tuple[Cell, int]:
    """Write one cell; returns what was written (for column widths) and how many changes it needed."""
    if value is None:
        return None, 0
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
        return value, 0
    if isinstance(value, int) and abs(value) >= _SAFE_INT:
        value = str(value)  # as text, so Excel does not round the last digits away
    if isinstance(value, int | float):
        sheet.write_number(row, col, value, fmt)
        return value, 0
    text, notes = _xlsx_text(value)
    # An empty string is left as a blank cell (xlsxwriter skips it anyway); -1 means outside the sheet.
    if text and sheet.write_string(row, col, text, fmt) == -1:
        raise ExportError("The table does not fit in an Excel sheet. Export as CSV instead.")
    return text, len(notes)


def to_xlsx_bytes(df: pd.DataFrame, sheet_name: str = "Leads") -> bytes:
    """One-sheet XLSX: text cells as exact strings (never evaluated), numbers as numbers, bold frozen
    header, capped widths."""
    _check_xlsx_size(df)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, XLSX_OPTIONS)
    sheet = workbook.add_worksheet(sanitize_sheet_name(sheet_name))
    bold = workbook.add_format({"bold": True})
    widths, changed = [], 0
    for col, label in enumerate(df.columns):
        written, notes = _write_xlsx_cell(sheet, 0, col, _header(label), bold)
        widths.append(_display_width(written))
        changed += notes
    for row, values in enumerate(_rows(df), start=1):
        for col, raw in enumerate(values):
            written, notes = _write_xlsx_cell(sheet, row, col, _plain(raw))
            changed += notes
            if row <= _WIDTH_SAMPLE_ROWS:
                widths[col] = max(widths[col], _display_width(written))
    for col, width in enumerate(widths):
        sheet.set_column(col, col, min(max(width + 2, XLSX_MIN_WIDTH), XLSX_MAX_WIDTH))
    sheet.freeze_panes(1, 0)
    if df.shape[1]:
        sheet.autofilter(0, 0, len(df), df.shape[1] - 1)
    workbook.close()
    if changed:
        log.warning("XLSX export changed %d cell(s) to fit Excel; see export.xlsx_warnings()", changed)
    return buffer.getvalue()


def xlsx_warnings(df: pd.DataFrame, limit: int = 20) -> list[str]:
    """Plain-language notes on every cell the XLSX export has to change (cut or cleaned), at most ``limit``."""
    labels = [_header(label) for label in df.columns]
    found = [("header", col, label) for col, label in enumerate(labels)]
    found = [(where, col, note) for where, col, text in found for note in _xlsx_text(text)[1]]
    for row, values in enumerate(_rows(df), start=1):
        for col, raw in enumerate(values):
            value = _plain(raw)
            if isinstance(value, str):
                found.extend((f"row {row}", col, note) for note in _xlsx_text(value)[1])
    messages = [f"{where}, column {labels[col]!r}: {note} (XLSX only)." for where, col, note in found[:limit]]
    if len(found) > limit:
        messages.append(f"… and {len(found) - limit:,} more.")
    return messages


# --- JSON --------------------------------------------------------------------------------------------


def _unique_keys(labels: Sequence[str]) -> list[str]:
    """Column names as JSON keys; a repeated name gets " (2)", " (3)" so no column is silently dropped."""
    seen: set[str] = set()
    keys = []
    for label in labels:
        key, n = label, 1
        while key in seen:
            n += 1
            key = f"{label} ({n})"
        seen.add(key)
        keys.append(key)
    return keys


def to_json_bytes(df: pd.DataFrame) -> bytes:
    """A UTF-8 JSON array of row objects ``{column: value}``; raw text, unguarded; missing values are null."""
    keys = _unique_keys([_header(label) for label in df.columns])
    records = [dict(zip(keys, (_plain(v) for v in row), strict=True)) for row in _rows(df)]
    return json.dumps(records, ensure_ascii=False, allow_nan=False).encode("utf-8")


def export_bytes(df: pd.DataFrame, fmt: Format, *, csv_for: CsvFor = "spreadsheet") -> bytes:
    """The table in the chosen format (``csv_for`` matters only for CSV)."""
    if fmt == "csv":
        return to_csv_bytes(df, csv_for)
    if fmt == "xlsx":
        return to_xlsx_bytes(df)
    if fmt == "json":
        return to_json_bytes(df)
    raise ValueError(f"unknown export format {fmt!r}; expected one of {sorted(MEDIA_TYPES)}")


# --- files -------------------------------------------------------------------------------------------


def _os_error_message(exc: OSError, path: Path) -> str:
    name, folder = path.name, path.parent
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"Not enough disk space to save {name}. Free some space and try again."
    if code in (errno.EACCES, errno.EPERM):
        return f"No permission to save {name} in {folder}."
    if code == errno.EROFS:
        return f"Cannot save {name}: the folder {folder} is read-only."
    if code in (errno.ENOENT, errno.ENOTDIR):
        return f"Cannot save {name}: the folder {folder} does not exist."
    if code == errno.EISDIR:
        return f"Cannot save {name}: a folder of that name is in the way."
    return f"Could not save {name}: {exc.strerror or exc}."


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads; Linux exposes it here.
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in lines if line.startswith("Umask:")).split()[1], 8)
    return 0o022


def _final_mode(path: Path) -> int:
    """Keep the mode of a file being replaced; a new file gets the usual 0666 minus umask, not mkstemp's 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and the file is already in place.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all-or-nothing: temp file in the same folder, fsync, rename.

    On failure the temp file is removed, any earlier file under ``path`` is left as it was, and an
    ExportError with a plain message is raised.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:60]}.", suffix=".tmp")
    except OSError as exc:
        raise ExportError(_os_error_message(exc, path)) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ExportError(_os_error_message(exc, path)) from exc
        raise
    _fsync_dir(path.parent)
    return path


def safe_stem(stem: str, default: str = "export") -> str:
    """A file-name stem with only ASCII letters, digits, ".", "_" and "-": no folders, no hidden files."""
    ascii_text = unicodedata.normalize("NFKD", stem or "").encode("ascii", "ignore").decode("ascii")
    cleaned = _STEM_ILLEGAL.sub("-", ascii_text).strip(".-_")[:80].strip(".-_")
    return cleaned or default


def save_copy(
    df: pd.DataFrame,
    directory: Path,
    stem: str,
    fmt: Format,
    *,
    now: dt.datetime | None = None,
    csv_for: CsvFor = "spreadsheet",
) -> Path:
    """Save a timestamped copy, e.g. ``results/icebreaker-20261124-101502.csv`` (UTC), atomically.

    A second copy within the same second gets ``-2``, ``-3``... rather than replacing the first.
    """
    data = export_bytes(
        df, fmt, csv_for=csv_for
    )  # before touching the disk: a bad table fails with nothing written
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(_os_error_message(exc, directory / "x")) from exc
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    base = f"{safe_stem(stem)}-{moment:%Y%m%d-%H%M%S}"
    path = directory / f"{base}.{fmt}"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{base}-{n}.{fmt}"
    return write_atomic(path, data)
