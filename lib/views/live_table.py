"""The results grid: an incremental live table of a run, edits laid over it, filters, export names."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath

import pandas as pd

from lib.engine import runs
from lib.prompts import templates
from lib.prompts.checks import ACCEPTED
from lib.store import RowRecord

TEXT = "string"  # pandas dtype of every text column shown in a grid: fixed, so editors keep their edits


EDITED_COLUMN = "edited"


FILTERS = ("All rows", "Failed", "Truncated", "Flagged")


def chain_table(results: pd.DataFrame) -> pd.DataFrame:
    """A results table as a new lead table: inputs and outputs as text, status columns dropped, ids kept."""
    table = results.drop(columns=[c for c in runs.STATUS_COLUMNS if c in results.columns])
    table = table.drop(columns=[EDITED_COLUMN], errors="ignore")
    return table.fillna("").astype(TEXT)


def chain_csv(results: pd.DataFrame) -> bytes:
    """A results table as exact CSV text (UTF-8, every cell quoted, no formula guard): the bytes of a new
    lead file for the next prompt, read back by the lead reader to the same cells."""
    table = chain_table(results)
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([str(c) for c in table.columns])
    writer.writerows(table.itertuples(index=False, name=None))
    return buf.getvalue().encode("utf-8")


class LiveTable:
    """The results grid of one job, rebuilt cheaply: inputs once, answers parsed once per changed row."""

    def __init__(self, inputs: Mapping[int, Mapping[str, str]], meta: Mapping) -> None:
        self.spec = runs.spec_of(meta)
        self.names: dict[str, str] = dict(
            meta.get("output_columns") or {c: c for c in self.spec.output_columns}
        )
        columns = list(meta.get("columns") or [])
        ids = list(inputs)
        self.index = pd.Index(ids, name="row_id", dtype="int64")
        self.inputs = pd.DataFrame(
            {c: [inputs[i].get(c, "") for i in ids] for c in columns}, index=self.index, columns=columns
        ).astype(TEXT)
        # Web research / one answer per company: sources, web_search_calls, answer_shared (runs.results_frame).
        self.extra = runs.research_column_names(meta, [*columns, *self.names.values(), *runs.STATUS_COLUMNS])
        self._shared = runs.shared_answers(inputs, meta) if "shared" in self.extra else {}
        self._parsed: dict[int, tuple[str | None, dict[str, str]]] = {}
        self.version = -1
        self.frame: pd.DataFrame | None = None
        self._seen: dict[int, RowRecord] = {}
        self._edits: dict[int, dict[str, str]] = {}

    def _outputs(self, row: RowRecord) -> dict[str, str]:
        hit = self._parsed.get(row.row_id)
        if hit is not None and hit[0] == row.text:
            return hit[1]
        parsed = templates.parse_output(self.spec, row.text).values if row.text is not None else {}
        values = {self.names[c]: parsed.get(c, "") for c in self.spec.output_columns}
        self._parsed[row.row_id] = (row.text, values)
        return values

    def _answers(self, records: Sequence[RowRecord]) -> pd.DataFrame:
        """The output and status columns for these records, with the grid's fixed dtypes."""
        outputs = [self._outputs(r) if r.text is not None else {} for r in records]
        data: dict[str, list] = {name: [o.get(name, "") for o in outputs] for name in self.names.values()}
        extra_types: dict[str, str] = {}
        if "sources" in self.extra:
            data[self.extra["sources"]] = [runs.sources_text(r.sources) for r in records]
            data[self.extra["web_search_calls"]] = [
                0 if r.from_cache else r.usage.web_search_calls for r in records
            ]
            extra_types = {self.extra["sources"]: TEXT, self.extra["web_search_calls"]: "int64"}
        if "shared" in self.extra:
            data[self.extra["shared"]] = [self._shared.get(r.row_id, "") for r in records]
            extra_types[self.extra["shared"]] = TEXT
        data["enrich_status"] = [r.status for r in records]
        data["enrich_error"] = [r.error or "" for r in records]
        # A reused answer (duplicate lead, earlier run) carries 0 and `reused`, as in runs.results_frame.
        data["enrich_flags"] = [",".join((*r.flags, "reused") if r.from_cache else r.flags) for r in records]
        data["enrich_prompt_tokens"] = [0 if r.from_cache else r.usage.prompt_tokens for r in records]
        data["enrich_completion_tokens"] = [0 if r.from_cache else r.usage.completion_tokens for r in records]
        data["enrich_reasoning_tokens"] = [0 if r.from_cache else r.usage.reasoning_tokens for r in records]
        data["enrich_cost_usd"] = [
            float("nan") if r.cost_usd is None else (0.0 if r.from_cache else r.cost_usd) for r in records
        ]
        data["enrich_row_id"] = [r.row_id for r in records]
        index = pd.Index([r.row_id for r in records], name="row_id", dtype="int64")
        return pd.DataFrame(data, index=index).astype(
            {
                **{n: TEXT for n in self.names.values()},
                **extra_types,
                "enrich_status": TEXT,
                "enrich_error": TEXT,
                "enrich_flags": TEXT,
                "enrich_prompt_tokens": "int64",
                "enrich_completion_tokens": "int64",
                "enrich_reasoning_tokens": "int64",
                "enrich_cost_usd": "float64",
                "enrich_row_id": "int64",
            }
        )

    def build(
        self, rows: Sequence[RowRecord], edits: Mapping[int, Mapping[str, str]], version: int
    ) -> pd.DataFrame:
        """The grid for this version (cached: the same version returns the same frame).

        After the first build only the rows whose record changed (records are immutable, so an identity
        check finds them) and the edited cells are rewritten, in place: a redraw of a 50,000-row run
        costs a few milliseconds instead of rebuilding every row.
        """
        if self.frame is not None and version == self.version:
            return self.frame
        by_id = {r.row_id: r for r in rows}
        if self.frame is None:
            records = [by_id.get(i) or RowRecord(i) for i in self.index]
            self.frame = pd.concat([self.inputs, self._answers(records)], axis=1)
            changed_ids: list[int] = []
        else:
            changed = [
                r for r in by_id.values() if self._seen.get(r.row_id) is not r and r.row_id in self.index
            ]
            stale = [i for i in self._edits if i not in edits and i in by_id]  # edits the user took back
            changed += [by_id[i] for i in stale if self._seen.get(i) is by_id[i]]
            changed_ids = [r.row_id for r in changed]
            if changed:
                fresh = self._answers(changed)
                columns = list(fresh.columns)
                for column in columns:  # column by column keeps each column's dtype
                    self.frame.loc[changed_ids, column] = fresh[column]
        self._seen = by_id
        edited = {
            i: cells for i, cells in edits.items() if cells != self._edits.get(i) or i in set(changed_ids)
        }
        for row_id, cells in edited.items():
            if row_id in self.frame.index:
                for column, value in cells.items():
                    if column in self.frame.columns:
                        self.frame.at[row_id, column] = value
        self._edits = {i: dict(c) for i, c in edits.items()}
        self.version = version
        return self.frame


def apply_edits(frame: pd.DataFrame, edits: Mapping[int, Mapping[str, str]]) -> pd.DataFrame:
    """A copy with the user's edits ({row_id: {column: value}}) written in; unknown rows/columns ignored."""
    if not edits:
        return frame
    frame = frame.copy()
    for row_id, cells in edits.items():
        if row_id not in frame.index:
            continue
        for column, value in cells.items():
            if column in frame.columns:
                frame.at[row_id, column] = value
    return frame


def merge_editor_edits(
    base: Mapping[int, Mapping[str, str]],
    edited_rows: Mapping,
    index: Sequence[int],
    editable: Iterable[str],
) -> dict[int, dict[str, str]]:
    """Fold a data_editor's {position: {column: value}} into {row_id: {column: value}} edits."""
    allowed = set(editable)
    merged = {int(k): dict(v) for k, v in base.items()}
    for position, cells in (edited_rows or {}).items():
        pos = int(position)
        if not 0 <= pos < len(index):
            continue
        row_id = int(index[pos])
        for column, value in cells.items():
            if column in allowed:
                merged.setdefault(row_id, {})[column] = "" if value is None else str(value)
    return {k: v for k, v in merged.items() if v}


def display_frame(results: pd.DataFrame, edits: Mapping[int, Mapping[str, str]]) -> pd.DataFrame:
    """Results for the screen: an 'edited' column first naming the cells the user changed; text as text."""
    shown = results.copy()
    marks = [", ".join(sorted(edits.get(int(i), {}))) for i in shown.index]
    shown.insert(0, EDITED_COLUMN, pd.array(marks, dtype=TEXT))
    text_columns = [c for c in shown.columns if shown[c].dtype == object]
    return shown.astype({c: TEXT for c in text_columns})


def filter_results(frame: pd.DataFrame, which: str) -> pd.DataFrame:
    """Failed rows, truncated answers, or any flagged row (failed or with flags)."""
    if which == "Failed":
        return frame[frame["enrich_status"] == "failed"]
    flags = frame["enrich_flags"].fillna("").astype(str)
    if which == "Truncated":
        return frame[flags.str.contains("truncated")]
    if which == "Flagged":  # a flag a reviewer accepted ("accepted:too_long") no longer counts
        flagged = flags.map(lambda c: any(f and not f.startswith(ACCEPTED) for f in c.split(",")))
        return frame[flagged | (frame["enrich_status"] == "failed")]
    return frame


def export_stem(meta: Mapping) -> str:
    """'leads - Icebreaker - 2026-12-01 1405': the file, the prompt and when the run started, so two
    downloads never overwrite each other; demo results say so in the name."""
    parts = []
    if meta.get("input_name"):
        parts.append(PurePath(str(meta["input_name"])).stem)
    parts.append(str(meta.get("prompt_name") or "results"))
    if meta.get("started_at"):
        parts.append(dt.datetime.fromtimestamp(float(meta["started_at"])).strftime("%Y-%m-%d %H%M"))
    stem = " - ".join(parts)
    return f"SIMULATED-{stem}" if meta.get("demo") else stem


# --- where the answers sit: identifying columns, then the answers, then the rest ------------------------

# Header names (compared case- and space-insensitively) that identify a lead at a glance, best first.
ID_COLUMN_GROUPS = (
    ("first name", "firstname", "first", "given name", "full name", "name", "contact name", "contact"),
    ("last name", "lastname", "surname", "family name"),
    ("company", "company name", "account name", "account", "organization", "organisation", "company domain"),
)
MAX_ID_COLUMNS = 3


def _norm(name: str) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())


def suggest_id_columns(columns: Sequence[str]) -> list[str]:
    """A few columns that tell the person which lead a row is: a name and a company; else the first column."""
    by_norm: dict[str, str] = {}
    for c in columns:
        by_norm.setdefault(_norm(c), c)
    chosen: list[str] = []
    for group in ID_COLUMN_GROUPS:
        for candidate in group:
            if candidate in by_norm and by_norm[candidate] not in chosen:
                chosen.append(by_norm[candidate])
                break
    if not chosen:
        email = next((c for c in columns if "email" in _norm(c)), None)
        chosen = [email or columns[0]] if columns else []
    return chosen[:MAX_ID_COLUMNS]


def id_columns(columns: Sequence[str], chosen: Sequence[str] | None) -> list[str]:
    """The user's identifying columns that this table has, else the suggestion."""
    if chosen is not None:
        kept = [c for c in chosen if c in columns]
        if kept or not chosen:
            return kept
    return suggest_id_columns(columns)


def column_order(
    columns: Sequence[str], outputs: Sequence[str], ids: Sequence[str], after: Sequence[str] = ()
) -> list[str]:
    """Identifying columns, then the answers (and `after` them: a research run's sources), then the status
    columns, then every other input column."""
    head = [c for c in ids if c in columns and c not in outputs]
    answers = [c for c in [*outputs, *after] if c in columns]
    status = [c for c in columns if c in runs.STATUS_COLUMNS or c == EDITED_COLUMN]
    placed = {*head, *answers, *status}
    rest = [c for c in columns if c not in placed]
    return [
        *head,
        *answers,
        *[c for c in status if c == EDITED_COLUMN],
        *[c for c in status if c != EDITED_COLUMN],
        *rest,
    ]


MAX_PINNED = 4  # identifying columns and answers pinned together; past this, the answers scroll


@dataclass(frozen=True)
class GridLayout:
    """How a grid shows a table: which columns in which order, which are pinned on the left."""

    order: list[str]  # without the row id column (the grid's index)
    ids: list[str]  # identifying columns, pinned
    answers: list[str]  # answer columns this table has, pinned too when `pin_answers`
    pin_answers: bool


def grid_layout(
    columns: Sequence[str],
    outputs: Sequence[str],
    chosen_ids: Sequence[str] | None,
    after: Sequence[str] = (),
) -> GridLayout:
    """Identifying columns pinned, then the answers (pinned too when both fit) and `after` them the
    research columns (sources...), then the rest."""
    columns = [str(c) for c in columns]
    ids = id_columns(columns, chosen_ids)
    order = [c for c in column_order(columns, outputs, ids, after) if c != "enrich_row_id"]
    answers = [c for c in outputs if c in columns]
    return GridLayout(order, ids, answers, len(ids) + len(outputs) <= MAX_PINNED)


def output_names(meta: Mapping) -> list[str]:
    """The answer columns of a run's results table, as named there."""
    names = meta.get("output_columns")
    if names:
        return list(names.values())
    return list(runs.spec_of(meta).output_columns) if meta.get("prompt_yaml") else []
