"""What the Data page shows of a lead file: column profile, what was detected, rejected lines, sample row ids."""

from __future__ import annotations

import random

import pandas as pd

from lib.leads import ENCODING_LABELS, LeadFile
from lib.leads.common import plural
from lib.views.live_table import TEXT


def column_profile(df: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """One row per column: the share of cells filled (0..1, shown as a percentage) and a few examples."""
    rows = []
    total = len(df)
    for column in df.columns:
        values = df[column].astype(TEXT).fillna("")
        filled = values.str.strip() != ""
        sample = list(dict.fromkeys(values[filled].head(200).tolist()))[:examples]
        rows.append(
            {
                "column": str(column),
                "filled": round(int(filled.sum()) / total, 4) if total else 0.0,
                "examples": " | ".join(_short(v) for v in sample),
            }
        )
    return pd.DataFrame(rows, columns=["column", "filled", "examples"]).astype(
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
        chosen = (
            " (your choice)" if lead.detected_encoding and lead.encoding != lead.detected_encoding else ""
        )
        facts.append(f"Encoding: {ENCODING_LABELS.get(lead.encoding, lead.encoding)}{chosen}.")
    if lead.delimiter:
        facts.append(f"Delimiter: {delimiter_name(lead.delimiter)}.")
    for new, old in lead.renamed_headers.items():
        facts.append(f"Header renamed: {old!r} -> {new!r}.")
    # Report lines are listed in the warnings ("Set aside …"); blank lines above the header are not.
    if lead.skipped_preamble and not lead.set_aside:
        facts.append(f"Skipped {plural(lead.skipped_preamble, 'line')} above the column names.")
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


def sample_ids(df: pd.DataFrame, n: int, how: str, seed: int = 0) -> list[int]:
    """Row ids of a sample: the first n rows, or n random ones (reproducible with the seed); [] for none."""
    ids = [int(i) for i in df.index]
    if not ids:
        return []
    n = max(1, min(n, len(ids)))
    if how == "random":
        return sorted(random.Random(seed).sample(ids, n))
    return ids[:n]


def set_aside_frame(lead: LeadFile) -> pd.DataFrame:
    """Report titles, totals and notices that were not taken as leads: where, what, why."""
    unit = "row" if lead.sheet else "line"
    return pd.DataFrame(
        [{unit: s.line, "text": s.text, "why": s.reason} for s in lead.set_aside],
        columns=[unit, "text", "why"],
    ).astype({"text": TEXT, "why": TEXT})


def encoding_options(lead: LeadFile) -> list[str]:
    """Encodings to offer: the detected one first, then every reading that gives other text."""
    names = [lead.detected_encoding] if lead.detected_encoding else []
    names += [c.name for c in lead.encoding_candidates if c.name not in names]
    if lead.encoding and lead.encoding not in names:
        names.append(lead.encoding)
    return names


def encoding_label(name: str, detected: str | None) -> str:
    label = ENCODING_LABELS.get(name, name)
    return f"{label} (detected)" if name == detected else label


def encoding_preview(lead: LeadFile) -> pd.DataFrame:
    """The cells whose text depends on the encoding: one column per reading, one row per cell."""
    candidates = [c for c in lead.encoding_candidates if c.preview]
    if len(candidates) < 2:
        return pd.DataFrame(columns=["line"])
    data: dict[str, list] = {"line": [line for line, _ in candidates[0].preview]}
    for c in candidates:
        texts = [text for _, text in c.preview]
        data[ENCODING_LABELS.get(c.name, c.name)] = texts + [""] * (len(data["line"]) - len(texts))
    frame = pd.DataFrame(data)
    return frame.astype({col: TEXT for col in frame.columns if col != "line"})
