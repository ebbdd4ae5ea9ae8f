"""The History page's table and chart rows, built from stored run records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd

from lib.store import RunRecord
from lib.views.labels import duration, money
from lib.views.live_table import TEXT


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat()


def prompt_label(meta: Mapping) -> str:
    """ "Icebreaker v1", or "Icebreaker v1, edited (#1a2b3c4d)" for a run whose prompt had unsaved edits."""
    label = f"{meta.get('prompt_name', '?')} v{meta.get('prompt_version', '?')}"
    if meta.get("prompt_edited"):
        digest = meta.get("prompt_hash")
        label += f", edited (#{digest})" if digest else ", edited"
    return label


def history_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Past runs, newest first: when, what, how much, how it ended."""
    rows = []
    for r in records:
        m = r.meta
        started = m.get("started_at") or r.created_at
        tokens = int(m.get("prompt_tokens") or 0) + int(m.get("completion_tokens") or 0)
        kind = "sample" if m.get("sample") else "run"
        if m.get("kind") == "regenerate":
            kind = f"regenerate {m.get('attempt', '')}".strip()
        if m.get("demo"):
            kind += " (simulated)"
        rows.append(
            {
                "started (UTC)": dt.datetime.fromtimestamp(float(started), dt.UTC).strftime("%Y-%m-%d %H:%M"),
                "prompt": prompt_label(m),
                "model": str(m.get("model", "")),
                "kind": kind,
                "file": str(m.get("input_name") or "—"),
                "rows": int(m.get("rows") or 0),
                "cost": money(m.get("cost_usd")) if "cost_usd" in m else "—",
                "tokens": tokens,
                "errors": int(m.get("failed") or 0),
                "duration": duration(r.updated_at - r.created_at),
                "status": r.status,
                "run id": r.run_id,
            }
        )
    columns = ["started (UTC)", "prompt", "model", "kind", "file", "rows", "cost", "tokens", "errors"]
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


def run_label(r: RunRecord, status: str | None = None) -> str:
    """One line about a run; `status` overrides the stored one (a run no process is running any more)."""
    m = r.meta
    started = dt.datetime.fromtimestamp(float(m.get("started_at") or r.created_at), dt.UTC)
    kind = "sample" if m.get("sample") else "run"
    file = m.get("input_name") or "a table"
    return f"{started:%Y-%m-%d %H:%M} · {kind} of {prompt_label(m)} on {file} · {m.get('model', '?')} · {status or r.status}"


def resumable(r: RunRecord) -> bool:
    """A run that stopped with rows still unanswered (interrupted, paused, cancelled, failed)."""
    return r.status != "finished" or int(r.meta.get("pending") or 0) > 0
