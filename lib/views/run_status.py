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
    if snap.cost_known:
        cost = money(snap.cost_usd)
        budget = f" of {money(snap.budget_usd)} budget" if snap.budget_usd is not None else ""
        if snap.estimated_usd:  # requests cut off after sending: maybe billed, counted at their worst case
            budget += (
                f" (up to {money(snap.estimated_usd)} of it estimated: answers lost on the way may be billed)"
            )
    else:
        cost, budget = "an unknown amount (unpriced model)", ""
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


STALL_SHOWN_AFTER_S = 5.0  # shorter stalls are the ordinary rhythm of a paced run


def _about(seconds: float) -> str:
    """'40 s', '2 min', '1 h 05 min': a stall's length, rounded as a person would say it."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    return duration(seconds)


def stall_text(snap) -> str | None:
    """Why nothing moves: 'the server has answered 429 for 2 min; next try in 8 s', or None while it moves."""
    stalled = getattr(snap, "stalled_s", None)
    if stalled is None or stalled < STALL_SHOWN_AFTER_S or snap.status != "running":
        return None
    what = "answered 429 (rate limited)" if snap.stall_kind == "429" else "failed every request"
    text = f"the server has {what} for {_about(stalled)}"
    if snap.next_try_s is not None:
        text += "; next try now" if snap.next_try_s < 0.5 else f"; next try in {_about(snap.next_try_s)}"
    return text


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


def resume_text(statuses: Sequence[str], settings) -> str:
    """'187 of 300 rows answered, 113 still to send · resumes with 4 workers, at most 120 requests/min,
    a $1.00 budget': what a stopped run has (its rows' statuses in the journal) and what Resume will do."""
    answered, pending = statuses.count("succeeded"), statuses.count("pending")
    parts = [f"{answered:,} of {len(statuses):,} rows answered, {pending:,} still to send"]
    how = [f"{settings.workers} workers"]
    if settings.rpm:
        how.append(f"at most {settings.rpm:,} requests/min")
    if settings.tpm:
        how.append(f"at most {settings.tpm:,} tokens/min")
    how.append(f"a {money(settings.budget_usd)} budget" if settings.budget_usd is not None else "no budget")
    return f"{parts[0]} · resumes with {', '.join(how)}."


TIER_LABELS = {
    "default": "standard",
    "flex": "flex",
    "priority": "priority",
    "fast": "fast",
    "batch": "batch",
}


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


def reasoning_text(snap) -> str | None:
    """'1,234 of the 5,678 output tokens were hidden reasoning (billed as output).' when there were any."""
    spent = getattr(snap, "reasoning_tokens", 0)
    if not spent:
        return None
    return (
        f"{spent:,} of the {snap.completion_tokens:,} output tokens were hidden reasoning (billed as output, "
        "never shown): a lower reasoning effort costs less."
    )


def adjusted_lines(snap) -> list[str]:
    """What the server corrected in the requests, once each: 'gpt-x does not take a temperature: sent without it.'"""
    return [f"Adjusted: {note}" for note in getattr(snap, "adjustments", ())]
