"""The review queue's pure parts: flagged answers first, a count per quality check, each row's reason.

A row is in the queue while its `enrich_flags` holds a `quality:<check>` flag; a reviewer's Accept turns
those into `accepted:<check>` (lib.engine.runs.reviewed), which nothing here counts as flagged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lib.prompts.checks import ACCEPTED, QUALITY

CHECK_LABELS = {
    "placeholder": "left-over placeholder",
    "too_long": "too long",
    "banned_phrase": "banned phrase",
    "missing_mention": "missing mention",
    "repeated_opener": "repeated opener",
}
REVIEW_VIEW = "Needs review"
LIVE_QUEUE_ROWS = 5  # the live panel lists this many flagged rows with an Accept button; Results has all
REORDER_EVERY_S = 10.0  # while a run goes, the live table's flagged-first order is refreshed this often


def _flags(cell: object) -> list[str]:
    return [f.strip() for f in str(cell or "").split(",") if f.strip()]


def label(check: str) -> str:
    """'too_long' -> 'too long'; a check this module does not know is shown by its own name."""
    return CHECK_LABELS.get(check, check.replace("_", " "))


def is_quality_flagged(flags: str) -> bool:
    """An `enrich_flags` cell ("truncated,quality:too_long") holds a quality flag not yet accepted."""
    return any(f.startswith(QUALITY) for f in _flags(flags))


def is_accepted(flags: str) -> bool:
    """A reviewer kept this flagged answer as it is."""
    return any(f.startswith(ACCEPTED) for f in _flags(flags))


def checks_of(flags: str) -> list[str]:
    """The quality checks an `enrich_flags` cell names, as labels: ['too long', 'banned phrase']."""
    return [label(f.removeprefix(QUALITY)) for f in _flags(flags) if f.startswith(QUALITY)]


def flagged_first(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> pd.DataFrame:
    """The results with quality-flagged rows first, each group in its original order."""
    if flags_column not in frame.columns or frame.empty:
        return frame
    flagged = _flagged_mask(frame[flags_column])
    return pd.concat([frame[flagged], frame[~flagged]])


def _flagged_mask(flags: pd.Series) -> pd.Series:
    """is_quality_flagged over a column, vectorised (the live panel asks twice a second); an accepted
    flag reads 'accepted:…', so 'quality:' is found only where a check still flags the row."""
    return flags.fillna("").astype(str).str.contains(QUALITY, regex=False)


def counts(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> dict[str, int]:
    """{check: rows flagged by it and not accepted}, the most frequent first; each row once per check."""
    if flags_column not in frame.columns:
        return {}
    found: Counter[str] = Counter()
    for cell in frame[flags_column]:
        found.update({f.removeprefix(QUALITY) for f in _flags(cell) if f.startswith(QUALITY)})
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def counts_text(counts: Mapping[str, int]) -> str:
    """{"too_long": 12, "banned_phrase": 3} -> 'too long: 12 · banned phrase: 3'; '' when nothing is flagged."""
    return " · ".join(f"{label(check)}: {n:,}" for check, n in counts.items() if n)


def _flag_cells(frame: pd.DataFrame) -> pd.Series:
    return frame["enrich_flags"] if "enrich_flags" in frame.columns else pd.Series([], dtype=object)


def waiting(frame: pd.DataFrame) -> int:
    """Rows flagged by a quality check and not accepted: the queue's length."""
    return int(_flagged_mask(_flag_cells(frame)).sum())


def summary_text(frame: pd.DataFrame) -> str:
    """'14 rows need review (too long: 12 · banned phrase: 3) · 2 accepted', or that none do."""
    waiting_rows = waiting(frame)
    accepted = int(_flag_cells(frame).map(is_accepted).sum())
    kept = f" · {accepted:,} accepted" if accepted else ""
    if not waiting_rows:
        return f"No answer needs review{kept}."
    row_word = "row needs" if waiting_rows == 1 else "rows need"
    return f"{waiting_rows:,} {row_word} review ({counts_text(counts(frame))}){kept}"


def queue(frame: pd.DataFrame, outputs: Sequence[str], ids: Sequence[str] = ()) -> pd.DataFrame:
    """The flagged, not accepted rows (in their order), as the queue shows them: who, which checks, why,
    and the answer. `ids` are the columns that say which lead a row is."""
    if "enrich_flags" not in frame.columns or frame.empty:
        return pd.DataFrame(columns=[*ids, "checks", "reason", *outputs])
    waiting = frame[frame["enrich_flags"].map(is_quality_flagged)]
    shown = pd.DataFrame(index=waiting.index)
    for column in [*ids, *outputs]:
        if column in waiting.columns:
            shown[column] = waiting[column]
    shown.insert(
        len([c for c in ids if c in waiting.columns]),
        "checks",
        waiting["enrich_flags"].map(lambda cell: ", ".join(checks_of(cell))),
    )
    shown.insert(shown.columns.get_loc("checks") + 1, "reason", waiting["enrich_error"].fillna(""))
    return shown.astype("string")


def row_label(frame: pd.DataFrame, row_id: int, ids: Sequence[str] = ()) -> str:
    """'Row 7 · Acme · too long, banned phrase': a queue row in a picker (plain text, never markdown)."""
    row = frame.loc[row_id]
    who = [str(row[c]) for c in ids if c in frame.columns and str(row[c]).strip()]
    found = checks_of(row.get("enrich_flags", ""))
    return " · ".join([f"Row {row_id}", *who[:2], *([", ".join(found)] if found else [])])


def live_order(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> list[int]:
    """The live table's row order: flagged, not accepted rows first, each group in the run's order."""
    return live_view(frame, flags_column)[0]


def live_view(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> tuple[list[int], pd.DataFrame]:
    """(row order, the frame in that order): the frame itself when nothing is flagged."""
    positions = _flagged_first_positions(frame, flags_column)
    if positions is None:
        return [int(i) for i in frame.index], frame
    shown = frame.take(positions)
    return [int(i) for i in shown.index], shown


def _flagged_first_positions(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> np.ndarray | None:
    """Row positions, flagged rows first (None: nothing flagged, the run's order). By position (`take`),
    which costs a third of a reindex by label on a 50,000-row grid."""
    if flags_column not in frame.columns or frame.empty:
        return None
    flagged = _flagged_mask(frame[flags_column]).to_numpy()
    if not flagged.any():
        return None
    return np.concatenate([np.flatnonzero(flagged), np.flatnonzero(~flagged)])


class LiveOrder:
    """The live table's row order, kept for `every_s` while a run goes.

    Each new order gets a new editor key, and a new key remounts the grid (its scroll position, a cell
    being typed in): re-sorting on every redraw of a long run would remount it twice a second. So while
    the run goes the order is refreshed every `every_s` seconds, at once after the user's own change (an
    accept, an edit: `stamp` changes), and on every draw once the run has stopped.
    """

    def __init__(self, every_s: float = REORDER_EVERY_S) -> None:
        self.every_s = every_s
        self._positions: np.ndarray | None = None
        self._rows = -1
        self._at = float("-inf")
        self._stamp: object = None

    def view(
        self, frame: pd.DataFrame, *, live: bool, stamp: object, now: float
    ) -> tuple[list[int], pd.DataFrame]:
        """(row order, the frame in it) for this redraw."""
        due = not live or stamp != self._stamp or now - self._at >= self.every_s or len(frame) != self._rows
        if due:
            self._positions = _flagged_first_positions(frame)
            self._rows, self._at, self._stamp = len(frame), now, stamp
        if self._positions is None:
            return [int(i) for i in frame.index], frame
        shown = frame.take(self._positions)
        return [int(i) for i in shown.index], shown


def editor_key(run_id: str, order: Sequence[int], natural: Sequence[int]) -> str:
    """The live editor's widget key for this row order.

    A data_editor keeps its edits by row position, so the same key over a new order would lay a typed
    edit on another row. Each order gets its own key (edits are copied onto the job as they are made, and
    the grid is drawn from the job's edits, so a new key loses none); the run's own order keeps the plain
    key the tests and earlier sessions use.
    """
    if list(order) == list(natural):
        return f"editor_{run_id}"
    digest = hashlib.blake2b(",".join(map(str, order)).encode(), digest_size=6).hexdigest()
    return f"editor_{run_id}_{digest}"
