"""Rows of text -> the DataFrame of a LeadFile: header names, empty columns, cell limits, row ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lib.leads.common import LeadFileError, Limits, plural

# Every cell is a Python str; "string" (pd.StringDtype, pd.NA as its missing value, which we never
# produce) rejects non-text assignments and is what Streamlit's editor wants for text columns.
TEXT_DTYPE = "string"


@dataclass
class Table:
    df: pd.DataFrame
    renamed_headers: dict[str, str]
    dropped_empty_columns: list[str]
    warnings: list[str]


def mode_count(counts: Sequence[int]) -> int:
    """The dominant field count of a run of records, robust to a short preamble and a footer.

    Most frequent count, ties to the larger one. When that is 1 (one-column files, or a preamble of
    one-field lines longer than the body, e.g. LinkedIn's notes above a header with no rows), the
    multi-field records win if they start within the first 10 records and nothing but one-field
    lines (a footer) follows them.
    """
    if not counts:
        return 0
    freq = Counter(counts)
    best = max(freq, key=lambda c: (freq[c], c))
    if best != 1:
        return best
    first = next((i for i, c in enumerate(counts) if c > 1), None)
    if first is None or first >= 10:
        return 1
    tail = list(counts[first:])
    while tail and tail[-1] == 1:
        tail.pop()
    if all(c > 1 for c in tail):
        sub = Counter(tail)
        return max(sub, key=lambda c: (sub[c], c))
    return 1


def column_names(header: Sequence[str]) -> list[str]:
    """Strip names, name blanks 'Column N' (1-based position), number duplicates 'Email (2)'."""
    stripped = [h.strip() for h in header]
    reserved = set()
    for name in stripped:
        if name:
            reserved.add(name)
    names: list[str] = []
    used: set[str] = set()
    for pos, name in enumerate(stripped, start=1):
        base = name or f"Column {pos}"
        candidate = base
        # A real column already called "Email (2)" or "Column 5" keeps its name; the generated one moves on.
        k = 1
        while candidate in used or (candidate != name and candidate in reserved):
            k += 1
            candidate = f"{base} ({k})"
        used.add(candidate)
        names.append(candidate)
    return names


def _check_cells(
    columns: list[tuple[str, ...]], names: list[str], where: list[int], unit: str, limits: Limits
):
    for name, col in zip(names, columns, strict=True):
        if col and max(map(len, col)) > limits.max_cell_chars:
            pos = next(i for i, cell in enumerate(col) if len(cell) > limits.max_cell_chars)
            raise LeadFileError(
                f"{unit.capitalize()} {where[pos]:,}, column '{name}': a value is {len(col[pos]):,} characters long; "
                f"the limit is {limits.max_cell_chars:,}. "
                + (
                    'This usually means a quote (") opened on that line is never closed. '
                    if unit == "line"
                    else ""
                )
                + "Fix or shorten that cell and upload the file again."
            )


def build_table(
    header: Sequence[str], rows: list[list[str]], ids: list[int], where: list[int], unit: str, limits: Limits
) -> Table:
    """Name the columns, drop blank-and-empty ones, enforce cell limits, build the frame.

    `rows` must all be as long as `header`; `where` gives each row's line (CSV) or sheet row (XLSX)
    for error messages, `unit` says which.
    """
    names = column_names(header)
    columns: list[tuple[str, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    keep = [i for i, h in enumerate(header) if h.strip() or any(columns[i])]
    kept = set(keep)
    dropped = [names[i] for i in range(len(header)) if i not in kept]
    if len(keep) > limits.max_columns:
        raise LeadFileError(
            f"The file has {len(keep):,} columns; the limit is {limits.max_columns:,}. "
            "Delete the columns you don't need and upload it again."
        )
    if len(keep) * len(rows) > limits.max_cells:
        raise LeadFileError(
            f"The file has {len(rows):,} rows x {len(keep):,} columns = {len(keep) * len(rows):,} cells; "
            f"the limit is {limits.max_cells:,}. Delete columns you don't need or split the file."
        )
    kept_names = [names[i] for i in keep]
    kept_cols = [columns[i] for i in keep]
    _check_cells(kept_cols, kept_names, where, unit, limits)
    renamed = {names[i]: header[i] for i in keep if names[i] != header[i]}
    index = pd.Index(ids, dtype="int64", name="row_id")
    df = pd.DataFrame(
        {
            name: pd.array(list(col), dtype=TEXT_DTYPE)
            for name, col in zip(kept_names, kept_cols, strict=True)
        },
        index=index,
    )
    if not keep:
        df = pd.DataFrame(index=index)
    warnings = _naming_warnings(header, names, keep, dropped)
    return Table(df, renamed, dropped, warnings)


def _naming_warnings(
    header: Sequence[str], names: list[str], keep: list[int], dropped: list[str]
) -> list[str]:
    out: list[str] = []
    spaced = [names[i] for i in keep if header[i].strip() and header[i] != header[i].strip()]
    if spaced:
        out.append("Removed spaces around column names: " + ", ".join(f"'{n}'" for n in spaced) + ".")
    dups = [f"'{names[i]}'" for i in keep if header[i].strip() and names[i] != header[i].strip()]
    if dups:
        out.append("Columns with the same name were numbered: " + ", ".join(dups) + ".")
    blanks = [f"'{names[i]}'" for i in keep if not header[i].strip()]
    if blanks:
        out.append("Columns without a name were called " + ", ".join(blanks) + ".")
    if dropped:
        out.append(f"Left out {plural(len(dropped), 'empty column')} without a name ({', '.join(dropped)}).")
    return out
