"""The review queue's pure parts: flagged answers first, and a count per quality check (for the pages)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

CHECK_LABELS = {
    "placeholder": "left-over placeholder",
    "too_long": "too long",
    "banned_phrase": "banned phrase",
    "missing_mention": "missing mention",
    "repeated_opener": "repeated opener",
}


def is_quality_flagged(flags: str) -> bool:
    """An `enrich_flags` cell ("truncated,quality:too_long") holds a quality flag."""
    return any(f.strip().startswith("quality:") for f in str(flags or "").split(","))


def flagged_first(frame: pd.DataFrame, flags_column: str = "enrich_flags") -> pd.DataFrame:
    """The results with quality-flagged rows first, each group in its original order."""
    if flags_column not in frame.columns or frame.empty:
        return frame
    flagged = frame[flags_column].map(is_quality_flagged)
    return pd.concat([frame[flagged], frame[~flagged]])


def counts_text(counts: Mapping[str, int]) -> str:
    """{"too_long": 3, "banned_phrase": 1} -> '3 too long · 1 banned phrase'; '' when nothing is flagged."""
    parts = [f"{n:,} {CHECK_LABELS.get(check, check.replace('_', ' '))}" for check, n in counts.items() if n]
    return " · ".join(parts)
