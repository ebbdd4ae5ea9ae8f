"""Types and limits shared by the lead-file readers (see lib/leads/__init__.py for the public API)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lib.leads.decode_types import EncodingCandidate

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Ceilings that keep a hostile or accidental upload from exhausting the server; each refusal says which."""

    # Same as Streamlit's default server.maxUploadSize, so the app and the CLI refuse the same files.
    max_bytes: int = 200 * MB
    # Data rows after the header; far beyond a sensible single run, below Excel's 1,048,576.
    max_rows: int = 1_000_000
    # Real exports have 10-150 columns; Apollo's widest is about 80.
    max_columns: int = 500
    # rows x columns actually kept: bounds memory (about 60-100 bytes per cell as Python text).
    max_cells: int = 20_000_000
    # Characters in one cell. Excel itself stops at 32,767; notes fields from CRMs can be longer.
    max_cell_chars: int = 100_000
    # .xlsx is a zip of XML: declared uncompressed size of all members, and of any one member ...
    max_xlsx_uncompressed: int = 1024 * MB
    # ... and the compression ratio of any member larger than xlsx_ratio_floor (small XML parts
    # of real workbooks legitimately compress 50-100x; a bomb is large AND extreme).
    max_xlsx_ratio: int = 200
    xlsx_ratio_floor: int = 10 * MB
    max_xlsx_members: int = 10_000


LIMITS = Limits()

# Rejected lines keep only this much raw text: enough to recognise the row, bounded for the UI.
REJECTED_TEXT_CHARS = 200


class LeadFileError(Exception):
    """A lead file that cannot be read; the message is written for a sales-ops person.

    `rejected` carries the offending lines when the problem is ragged rows, so a UI can list them.
    """

    def __init__(self, message: str, *, rejected: list[RejectedLine] | None = None) -> None:
        super().__init__(message)
        self.rejected: list[RejectedLine] = list(rejected or [])


@dataclass(frozen=True)
class RejectedLine:
    """A row left out of the frame: its 1-based physical line (CSV) or sheet row (XLSX) and why."""

    line: int
    reason: str
    text: str


@dataclass(frozen=True)
class SetAsideLine:
    """A line that is not a lead (report title, 'Grand Totals', copyright) and was left out of the table."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class LeadFile:
    """A lead list read as text, plus everything the reader decided on the user's behalf."""

    df: pd.DataFrame
    encoding: str | None
    delimiter: str | None
    renamed_headers: dict[str, str] = field(default_factory=dict)
    rejected: list[RejectedLine] = field(default_factory=list)
    skipped_preamble: int = 0
    skipped_footer: int = 0
    dropped_empty_columns: list[str] = field(default_factory=list)
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What detection chose (equal to `encoding` unless the caller forced one), and every reading that
    # gives other text, each with a preview of the cells it changes, for a page to offer as a choice.
    detected_encoding: str | None = None
    encoding_candidates: list[EncodingCandidate] = field(default_factory=list)
    encoding_uncertain: bool = False
    set_aside: list[SetAsideLine] = field(default_factory=list)


def cap_text(text: str, limit: int = REJECTED_TEXT_CHARS) -> str:
    """Shorten text for display, marking the cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 line', '3 lines' with thousands separators."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
