"""Plain-Python helpers for the Streamlit pages: profiles, labels, prompt drafts, live tables, history rows.

Nothing here imports Streamlit, so every function can be unit-tested and reused by other front ends.
Pages draw; this module computes what they draw.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lib import library, models, pricing, quote, runs, templates
from lib.leads import LeadFile
from lib.store import RowRecord, RunRecord
from lib.templates import Example, PromptSpec

TEXT = "string"  # pandas dtype of every text column shown in a grid: fixed, so editors keep their edits
EDITED_COLUMN = "edited"
SIMULATED_NOTE = "Simulated answers from the built-in local server (offline demo), not from a real model."
FILTERS = ("All rows", "Failed", "Truncated", "Flagged")


# --- configuration ---------------------------------------------------------------------------------


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the store and export copies live: LEAD_STUDIO_DATA_DIR, else results/."""
    env = os.environ if env is None else env
    return Path(env.get("LEAD_STUDIO_DATA_DIR") or "results")


def prompts_dir(env: Mapping[str, str] | None = None) -> Path:
    """The prompt library folder: LEAD_STUDIO_PROMPTS_DIR (tests use a copy), else the shipped prompts/."""
    env = os.environ if env is None else env
    value = env.get("LEAD_STUDIO_PROMPTS_DIR")
    return Path(value) if value else library.DEFAULT_DIRECTORY


# --- money, time and model labels ------------------------------------------------------------------


def money(value: float | None) -> str:
    """Dollars with enough decimals for small runs; None means unpriced, never $0."""
    if value is None:
        return "unpriced"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 5 s', '1 h 02 min'; '—' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def price_label(model: str) -> str:
    """'gpt-4o-mini · $0.15 in / $0.60 out per 1M tokens' or 'my-model · unpriced'."""
    price = pricing.price_for(model)
    if price is None:
        return f"{model} · unpriced"
    return f"{model} · ${_per_million(price.input)} in / ${_per_million(price.output)} out per 1M tokens"


def _per_million(dollars: float) -> str:
    """0.6 -> '0.60', 0.025 -> '0.025', 10 -> '10.00'."""
    text = f"{dollars:.3f}"
    return text[:-1] if text.endswith("0") else text


def model_choices(current: str | None = None) -> list[str]:
    """Priced models, the default first; a typed-in model the user chose stays in the list."""
    names = [models.DEFAULT_MODEL, *sorted(n for n in pricing.PRICES if n != models.DEFAULT_MODEL)]
    if current and current not in names:
        names.append(current)
    return names


# --- lead tables -----------------------------------------------------------------------------------


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_digest(df: pd.DataFrame) -> str:
    """A content hash of a table (index, headers, cells), for caching quotes of chained tables."""
    cells = pd.util.hash_pandas_object(df.astype(str), index=True).to_numpy().tobytes()
    header = "\0".join(map(str, df.columns)).encode()
    return hashlib.sha256(header + cells).hexdigest()


def column_profile(df: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """One row per column: how many cells are filled (%) and a few distinct example values."""
    rows = []
    total = len(df)
    for column in df.columns:
        values = df[column].astype(TEXT).fillna("")
        filled = values.str.strip() != ""
        sample = list(dict.fromkeys(values[filled].head(200).tolist()))[:examples]
        rows.append(
            {
                "column": str(column),
                "filled %": round(100.0 * int(filled.sum()) / total, 1) if total else 0.0,
                "examples": " | ".join(_short(v) for v in sample),
            }
        )
    return pd.DataFrame(rows, columns=["column", "filled %", "examples"]).astype(
        {"column": TEXT, "examples": TEXT}
    )


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detected_facts(lead: LeadFile) -> list[str]:
    """What the reader decided on the user's behalf, one plain sentence each."""
    facts = [f"{len(lead.df):,} rows, {lead.df.shape[1]:,} columns."]
    if lead.sheet:
        facts.append(f"Sheet: {lead.sheet} (of {len(lead.sheets)}).")
    if lead.encoding:
        facts.append(f"Encoding: {lead.encoding}.")
    if lead.delimiter:
        facts.append(f"Delimiter: {delimiter_name(lead.delimiter)}.")
    for new, old in lead.renamed_headers.items():
        facts.append(f"Header renamed: {old!r} -> {new!r}.")
    if lead.skipped_preamble:
        facts.append(f"Skipped {lead.skipped_preamble} line(s) above the header.")
    if lead.skipped_footer:
        facts.append(f"Skipped {lead.skipped_footer} footer line(s).")
    if lead.dropped_empty_columns:
        facts.append(f"Dropped {len(lead.dropped_empty_columns)} empty unnamed column(s).")
    if lead.rejected:
        facts.append(f"Left out {len(lead.rejected)} ragged row(s): see the list below.")
    facts.extend(lead.warnings)
    return facts


def delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


def rejected_frame(lead: LeadFile) -> pd.DataFrame:
    return pd.DataFrame(
        [{"line": r.line, "reason": r.reason, "text": r.text} for r in lead.rejected],
        columns=["line", "reason", "text"],
    ).astype({"reason": TEXT, "text": TEXT})


def chain_table(results: pd.DataFrame) -> pd.DataFrame:
    """A results table as a new lead table: inputs and outputs as text, status columns dropped, ids kept."""
    table = results.drop(columns=[c for c in runs.STATUS_COLUMNS if c in results.columns])
    table = table.drop(columns=[EDITED_COLUMN], errors="ignore")
    return table.fillna("").astype(TEXT)


def sample_ids(df: pd.DataFrame, n: int, how: str, seed: int = 0) -> list[int]:
    """Row ids of a sample: the first n rows, or n random ones (reproducible with the seed)."""
    ids = [int(i) for i in df.index]
    n = max(1, min(n, len(ids)))
    if how == "random":
        return sorted(random.Random(seed).sample(ids, n))
    return ids[:n]


# --- prompt drafts ---------------------------------------------------------------------------------


def parse_columns(text: str) -> tuple[str, ...]:
    """'company, industry ,  , fit' -> ('company', 'industry', 'fit'), duplicates dropped."""
    return tuple(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))


@dataclass
class Draft:
    """The prompt being edited, as plain values (what the prompt page's widgets hold)."""

    name: str = "Untitled prompt"
    description: str = ""
    system: str = ""
    examples: list[tuple[str, str]] = field(default_factory=list)
    template: str = ""
    outputs: str = "output"
    json_schema: dict | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    field_cap: int = templates.FIELD_CAP
    version: int = 1

    @classmethod
    def of(cls, spec: PromptSpec) -> Draft:
        return cls(
            name=spec.name,
            description=spec.description,
            system=spec.system,
            examples=[(e.user, e.assistant) for e in spec.examples],
            template=spec.template,
            outputs=", ".join(spec.output_columns),
            json_schema=spec.json_schema,
            model=spec.model,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            field_cap=spec.field_cap,
            version=spec.version,
        )

    def spec(self) -> PromptSpec:
        """The PromptSpec; raises ValueError with a plain message when a field cannot work."""
        columns = parse_columns(self.outputs)
        if self.json_schema is None and not columns:
            raise ValueError("Name at least one output column.")
        examples = tuple(Example(u, a) for u, a in self.examples if u.strip() or a.strip())
        return PromptSpec(
            name=self.name.strip() or "Untitled prompt",
            description=self.description,
            version=self.version,
            system=self.system,
            examples=examples,
            template=self.template,
            output_columns=("output",) if self.json_schema is not None else columns,
            json_schema=self.json_schema,
            model=(self.model or "").strip() or None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            field_cap=self.field_cap,
        )


def column_snippets(columns: Iterable[str]) -> str:
    """One '{{ Column }}' per line, ready to copy into a template."""
    return "\n".join("{{ " + str(c) + " }}" for c in columns)


# --- quotes ----------------------------------------------------------------------------------------


def run_options(
    spec: PromptSpec,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    empty: str = "send",
    **extra,
) -> runs.RunOptions:
    """RunOptions with temperature dropped where the model rejects it."""
    if not models.model_info(model).supports_temperature:
        temperature = None
    return runs.RunOptions(model=model, max_tokens=max_tokens, temperature=temperature, empty=empty, **extra)


def quote_table(
    df: pd.DataFrame,
    spec: PromptSpec,
    options: runs.RunOptions,
    sample_output_tokens: Sequence[int] = (),
) -> quote.Quote:
    """Tokens and cost for every row that would be sent (rows skipped for empty cells excluded)."""
    bodies = []
    for cells in df.to_dict(orient="records"):
        if options.empty == "skip" and templates.empty_fields(spec, cells):
            continue
        bodies.append(
            templates.build_request(
                spec,
                cells,
                model=options.model,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
            )
        )
    max_tokens = options.max_tokens or spec.max_tokens
    return quote.quote(
        bodies,
        options.model,
        max_tokens=max_tokens,
        sample_output_tokens=sample_output_tokens,
        price=options.price or pricing.price_for(options.model),
    )


def quote_lines(q: quote.Quote) -> dict[str, str]:
    """The quote as label -> value, for metrics."""
    exact = "" if q.exact else " (estimate)"
    cost = "unpriced model" if q.cost_low is None else f"{money(q.cost_low)} – {money(q.cost_high)}"
    return {
        "Rows to send": f"{q.rows:,}",
        "Input tokens": f"{q.input_tokens:,}{exact}",
        "Output tokens": f"{q.output_tokens_low:,} – {q.output_tokens_high:,}",
        "Cost": cost,
    }


# --- live and final results tables -----------------------------------------------------------------


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: str) -> str:
    """Text safe to pass to st.error/st.warning/st.caption, which render Markdown.

    Messages can carry text from a lead file (a header) or a server: escaped, `![x](url)` stays text
    instead of an image the browser fetches, and `$…$` stays text instead of LaTeX.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


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
        data["enrich_status"] = [r.status for r in records]
        data["enrich_error"] = [r.error or "" for r in records]
        data["enrich_flags"] = [",".join(r.flags) for r in records]
        data["enrich_prompt_tokens"] = [r.usage.prompt_tokens for r in records]
        data["enrich_completion_tokens"] = [r.usage.completion_tokens for r in records]
        data["enrich_cost_usd"] = [float("nan") if r.cost_usd is None else r.cost_usd for r in records]
        data["enrich_row_id"] = [r.row_id for r in records]
        index = pd.Index([r.row_id for r in records], name="row_id", dtype="int64")
        return pd.DataFrame(data, index=index).astype(
            {
                **{n: TEXT for n in self.names.values()},
                "enrich_status": TEXT,
                "enrich_error": TEXT,
                "enrich_flags": TEXT,
                "enrich_prompt_tokens": "int64",
                "enrich_completion_tokens": "int64",
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
    if which == "Flagged":
        return frame[(flags != "") | (frame["enrich_status"] == "failed")]
    return frame


def export_stem(meta: Mapping) -> str:
    """A file-name stem; demo results say so in the name."""
    stem = str(meta.get("prompt_name") or "results")
    return f"SIMULATED-{stem}" if meta.get("demo") else stem


# --- history ---------------------------------------------------------------------------------------


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat()


def history_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Past runs, newest first: when, what, how much, how it ended."""
    rows = []
    for r in records:
        m = r.meta
        started = m.get("started_at") or r.created_at
        tokens = int(m.get("prompt_tokens") or 0) + int(m.get("completion_tokens") or 0)
        kind = "sample" if m.get("sample") else "run"
        if m.get("demo"):
            kind += " (simulated)"
        rows.append(
            {
                "started (UTC)": dt.datetime.fromtimestamp(float(started), dt.UTC).strftime("%Y-%m-%d %H:%M"),
                "prompt": f"{m.get('prompt_name', '?')} v{m.get('prompt_version', '?')}",
                "model": str(m.get("model", "")),
                "kind": kind,
                "rows": int(m.get("rows") or 0),
                "cost": money(m.get("cost_usd")) if "cost_usd" in m else "—",
                "tokens": tokens,
                "errors": int(m.get("failed") or 0),
                "duration": duration(r.updated_at - r.created_at),
                "status": r.status,
                "run id": r.run_id,
            }
        )
    columns = ["started (UTC)", "prompt", "model", "kind", "rows", "cost", "tokens", "errors"]
    columns += ["duration", "status", "run id"]
    frame = pd.DataFrame(rows, columns=columns)
    text = [c for c in columns if c not in ("rows", "tokens", "errors")]
    return frame.astype({c: TEXT for c in text})


def history_chart_rows(records: Sequence[RunRecord]) -> list[dict]:
    """What charts.history_costs reads: ISO started_at, prompt_name, cost_usd."""
    return [
        {
            "started_at": _iso(r.meta.get("started_at") or r.created_at),
            "prompt_name": r.meta.get("prompt_name"),
            "cost_usd": r.meta.get("cost_usd") or 0.0,
        }
        for r in records
    ]


def run_label(r: RunRecord) -> str:
    m = r.meta
    started = dt.datetime.fromtimestamp(float(m.get("started_at") or r.created_at), dt.UTC)
    return f"{started:%Y-%m-%d %H:%M} · {m.get('prompt_name', '?')} · {m.get('model', '?')} · {r.status}"


def resumable(r: RunRecord) -> bool:
    """A run that stopped with rows still unanswered (interrupted, paused, cancelled, failed)."""
    return r.status != "finished" or int(r.meta.get("pending") or 0) > 0


# --- live run panel --------------------------------------------------------------------------------


def progress_text(snap) -> str:
    """'120 of 500 rows · 118 answered · 2 failed · 380 pending · 14.2 rows/s · about 27 s left'."""
    parts = [
        f"{snap.done:,} of {snap.total:,} rows",
        f"{snap.succeeded:,} answered",
        f"{snap.failed:,} failed",
    ]
    if snap.skipped:
        parts.append(f"{snap.skipped:,} skipped")
    parts.append(f"{snap.pending:,} pending")
    if snap.rows_per_s:
        parts.append(f"{snap.rows_per_s:.1f} rows/s")
    if snap.eta_s is not None:
        parts.append(f"about {duration(snap.eta_s)} left")
    return " · ".join(parts)


def spend_text(snap) -> str:
    cost = money(snap.cost_usd) if snap.cost_known else "unpriced model"
    budget = f" of {money(snap.budget_usd)} budget" if snap.budget_usd is not None else ""
    tokens = snap.prompt_tokens + snap.completion_tokens
    extra = []
    if snap.cache_hits:
        extra.append(f"{snap.cache_hits:,} reused from earlier answers")
    if snap.retries:
        extra.append(f"{snap.retries:,} retries")
    if snap.flagged:
        extra.append(f"{snap.flagged:,} flagged")
    tail = f" · {', '.join(extra)}" if extra else ""
    return f"Spent {cost}{budget} · {tokens:,} tokens · {duration(snap.elapsed_s)}{tail}"


def error_lines(snap, limit: int = 8) -> list[str]:
    """Recent errors, newest first, as 'row 12: message'."""
    return [f"row {e.row_id}: {e.message}" for e in reversed(snap.recent_errors[-limit:])]


def budget_paused(snap) -> bool:
    return snap.status == "paused" and (snap.message or "").startswith("Budget reached")


# --- batch mode ------------------------------------------------------------------------------------

BATCH_SUGGEST_ROWS = 5_000  # from this many rows, or this quote, the run page suggests the Batch API
BATCH_SUGGEST_USD = 5.0


def batch_quote_text(q: quote.Quote) -> str:
    """The quote's cost range as a batch: 'As a batch: $1.20 – $3.40 (half price, results within 24 h)'."""
    if q.cost_low is None or q.cost_high is None:
        return "As a batch: half the price of the live run (unpriced model)."
    low, high = q.cost_low * pricing.BATCH_DISCOUNT, q.cost_high * pricing.BATCH_DISCOUNT
    return f"As a batch: {money(low)} – {money(high)} (half price, results within 24 h)."


def suggest_batch(q: quote.Quote) -> str | None:
    """A nudge towards batch mode when the list is large or the quote high, with the expected saving."""
    if q.rows < BATCH_SUGGEST_ROWS and (q.cost_high is None or q.cost_high < BATCH_SUGGEST_USD):
        return None
    if q.cost_low is None or q.cost_high is None:
        return f"{q.rows:,} rows: sending them as a batch halves the cost if you can wait up to 24 hours."
    saving_low = q.cost_low * (1 - pricing.BATCH_DISCOUNT)
    saving_high = q.cost_high * (1 - pricing.BATCH_DISCOUNT)
    return (
        f"{q.rows:,} rows: sent as a batch this would save about {money(saving_low)} – {money(saving_high)} "
        "(half price), with results within 24 hours instead of now."
    )


def batch_progress_lines(progress: Sequence) -> list[str]:
    """One line per batch: 'Batch 1 · 4,000 rows · in_progress · 2,100 done, 3 failed'."""
    lines = []
    for p in progress:
        done = (
            ""
            if p.status in ("prepared", "uploading", "uploaded", "creating")
            else (f" · {p.completed:,} done, {p.failed:,} failed")
        )
        lines.append(f"Batch {p.index + 1} · {p.rows:,} rows · {p.status.replace('_', ' ')}{done}")
    return lines


def batch_savings_text(savings) -> str | None:
    """'Batch price $1.02 · $2.04 if sent live · saved $1.02', or None when there is nothing to compare."""
    if savings.cost_usd is None or not savings.live_cost_usd:
        return None
    return (
        f"Batch price {money(savings.cost_usd)} · {money(savings.live_cost_usd)} if sent live · "
        f"saved {money(savings.saved_usd)}"
    )
