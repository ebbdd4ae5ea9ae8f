"""One-line texts about a running job: progress, spend, errors, budget pauses, batch progress."""

from __future__ import annotations

from collections.abc import Sequence

from lib.views.labels import duration, money


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


def budget_warning(budget: float | None, cost_low: float | None, cost_high: float | None) -> str | None:
    """A warning before Start when the budget cannot cover the quote (None when it can, or is unset)."""
    if budget is None or cost_high is None or cost_low is None:
        return None
    if budget < cost_low:
        return (
            f"Your budget of {money(budget)} is below the lowest quote ({money(cost_low)}): the run will pause "
            "before it has answered every row. Raise the budget, or start anyway and raise it then."
        )
    if budget < cost_high:
        return (
            f"Your budget of {money(budget)} is inside the quote ({money(cost_low)} – {money(cost_high)}): the run "
            "may pause before the last rows if the answers are long."
        )
    return None


TIER_LABELS = {"default": "standard", "flex": "flex", "priority": "priority", "batch": "batch"}


def tier_text(snap) -> str | None:
    """'flex: 1,840 rows, $0.31 · standard: 160 rows, $0.05', or None when every row went at the default tier."""
    rows = dict(getattr(snap, "tier_rows", {}) or {})
    asked = getattr(snap, "service_tier", "default")
    if not rows or (set(rows) == {"default"} and asked == "default"):
        return None
    costs = getattr(snap, "tier_cost", {}) or {}
    parts = []
    for tier, n in sorted(rows.items(), key=lambda kv: -kv[1]):
        cost = f", {money(costs.get(tier, 0.0))}" if snap.cost_known else ""
        parts.append(f"{TIER_LABELS.get(tier, tier)}: {n:,} rows{cost}")
    refused = getattr(snap, "capacity_refusals", 0)
    if refused:
        parts.append(f"{refused:,} flex capacity refusals (not billed)")
    return " · ".join(parts)


def caching_text(snap) -> str | None:
    """'Saved by caching $0.42 · 1,200,000 input tokens read from the cache', or None without cache use."""
    read = getattr(snap, "cached_tokens", 0)
    written = getattr(snap, "cache_write_tokens", 0)
    if not read and not written:
        return None
    saved = money(snap.saved_by_caching_usd) if snap.cost_known else "unpriced"
    parts = [f"Saved by caching {saved}", f"{read:,} input tokens read from the cache"]
    if written:
        parts.append(f"{written:,} written to it")
    return " · ".join(parts)
