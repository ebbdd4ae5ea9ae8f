"""Which rows of the file a sample tries: the first N, N random ones (seeded), row ids, or a simple filter.

Row ids are the lead table's index values (1 for the first data row, as the app shows them and as
lib/views/lead_view.sample_ids uses them). The choice is plain values, so a workspace keeps it as JSON, and
the same choice over the same file always gives the same rows: the sample stays fixed while variants change.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

How = Literal["first", "random", "ids", "filter"]
FilterOp = Literal["contains", "equals", "starts with", "is empty", "is not empty"]
FILTER_OPS: tuple[str, ...] = ("contains", "equals", "starts with", "is empty", "is not empty")
MAX_IDS = 100_000  # a typed range longer than this is a typo, not a sample


class SampleError(ValueError):
    """The rows asked for cannot be chosen: the message says why, in the user's words."""


@dataclass(frozen=True)
class SampleChoice:
    how: How = "first"
    n: int = 5  # first, random and filter: how many rows
    seed: int = 1  # random: the same seed gives the same rows
    ids: str = ""  # ids: as typed, e.g. "1, 5, 9-12"
    column: str = ""  # filter: the column looked at
    op: FilterOp = "contains"
    text: str = ""  # filter: what it is compared with (ignored by "is empty" / "is not empty")


def parse_row_ids(text: str) -> list[int]:
    """'1,5,9-12' -> [1, 5, 9, 10, 11, 12]: commas or spaces between, ranges with '-', repeats dropped."""
    parts = [p for p in re.split(r"[,;\s]+", text.replace("–", "-").strip()) if p]
    if not parts:
        raise SampleError("Type at least one row number, e.g. 1, 5, 9-12.")
    ids: list[int] = []
    for part in parts:
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise SampleError(f"'{part}' is not a row number: type numbers like 1, 5, 9-12.")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first < 1:
            raise SampleError("Row numbers start at 1.")
        if last < first:
            raise SampleError(f"'{part}' runs backwards: write the smaller number first ({last}-{first}).")
        if last - first + 1 + len(ids) > MAX_IDS:
            raise SampleError(f"'{part}' is too many rows for a sample (at most {MAX_IDS:,}).")
        ids.extend(range(first, last + 1))
    return list(dict.fromkeys(ids))


def choose_rows(df: pd.DataFrame, choice: SampleChoice) -> list[int]:
    """The row ids the choice names, in the order they are tried. Never [] silently: SampleError says why."""
    ids = [int(i) for i in df.index]
    if not ids:
        raise SampleError("The file has no rows to try.")
    if choice.how == "ids":
        wanted = parse_row_ids(choice.ids)
        present = set(ids)
        for row_id in wanted:
            if row_id not in present:
                raise SampleError(f"Row {row_id} is not in this file (rows {_span(ids)}).")
        return wanted
    if choice.n < 1:
        raise SampleError("Choose at least 1 row.")
    if choice.how == "first":
        return ids[: choice.n]
    if choice.how == "random":
        return sorted(random.Random(choice.seed).sample(ids, min(choice.n, len(ids))))
    if choice.how == "filter":
        return _filtered(df, choice)[: choice.n]
    raise SampleError(f"Unknown way to choose rows: '{choice.how}'.")


def _filtered(df: pd.DataFrame, choice: SampleChoice) -> list[int]:
    columns = [str(c) for c in df.columns]
    if choice.column not in columns:
        close = difflib.get_close_matches(choice.column, columns, n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SampleError(f"Column '{choice.column}' is not in this file.{hint}")
    if choice.op not in FILTER_OPS:
        raise SampleError(f"Unknown filter '{choice.op}': use one of {', '.join(FILTER_OPS)}.")
    values = df[df.columns[columns.index(choice.column)]].astype("string").fillna("")
    folded = values.str.casefold()
    needle = choice.text.casefold()
    if choice.op in ("contains", "equals", "starts with") and not choice.text:
        raise SampleError(f"Type the text to look for in {choice.column}.")
    if choice.op == "contains":
        mask = folded.str.contains(needle, regex=False)
    elif choice.op == "equals":
        mask = folded.str.strip() == needle.strip()
    elif choice.op == "starts with":
        mask = folded.str.startswith(needle)
    elif choice.op == "is empty":
        mask = values.str.strip() == ""
    else:
        mask = values.str.strip() != ""
    found = [int(i) for i in df.index[mask.fillna(False).to_numpy(dtype=bool)]]
    if not found:
        raise SampleError(f"No row has {_condition(choice)}.")
    return found


def _condition(choice: SampleChoice) -> str:
    """'Title containing 'VP'', 'an empty Title': the filter as the end of "No row has ..."."""
    if choice.op == "is empty":
        return f"an empty {choice.column}"
    if choice.op == "is not empty":
        return f"{choice.column} filled in"
    verb = {"contains": "containing", "equals": "equal to", "starts with": "starting with"}[choice.op]
    return f"{choice.column} {verb} '{choice.text}'"


def _span(ids: list[int]) -> str:
    return f"{min(ids)}–{max(ids)}" if len(ids) > 1 else str(ids[0])


def describe(choice: SampleChoice) -> str:
    """The choice in a few words: 'first 5 rows', '5 random rows (seed 1)', 'rows 1, 5, 9'."""
    if choice.how == "ids":
        try:
            ids = parse_row_ids(choice.ids)
        except SampleError:
            return f"rows {choice.ids.strip()}"
        return ("row " if len(ids) == 1 else "rows ") + _ranges(ids)
    rows = "row" if choice.n == 1 else f"{choice.n} rows"
    if choice.how == "random":
        return f"{choice.n} random {'row' if choice.n == 1 else 'rows'} (seed {choice.seed})"
    if choice.how == "filter":
        where = {
            "is empty": f"{choice.column} is empty",
            "is not empty": f"{choice.column} is not empty",
        }.get(choice.op, f"{choice.column} {choice.op} '{choice.text}'")
        return f"first {rows} where {where}"
    return f"first {rows}"


def _ranges(ids: list[int]) -> str:
    """1, 5, 9-12: runs of three or more consecutive ids written as a range."""
    parts: list[str] = []
    start = prev = ids[0]
    for row_id in [*ids[1:], None]:
        if row_id is not None and row_id == prev + 1:
            prev = row_id
            continue
        if prev - start >= 2:
            parts.append(f"{start}-{prev}")
        else:
            parts.extend(str(i) for i in range(start, prev + 1))
        if row_id is not None:
            start = prev = row_id
    return ", ".join(parts)
