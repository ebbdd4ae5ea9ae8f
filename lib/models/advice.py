"""Advice from a sample's real usage: a max tokens that fits the answers and their hidden reasoning."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

HEADROOM = 1.25  # above the longest answer seen: the next rows vary
STEP = 50


@dataclass(frozen=True)
class Spent:
    """One answered row's output, as the server billed it."""

    completion_tokens: int  # reasoning included
    reasoning_tokens: int
    finish_reason: str | None


def suggest_max_tokens(rows: Iterable[Spent], cap: int | None) -> int | None:
    """A max tokens that fits what the sample needed, when some answers were cut short; None when none was.

    A row that finished needed its completion tokens; one cut short needed more than the cap, so it counts
    as twice the cap (at least): hidden reasoning grows with the question, and a guess too low costs a rerun.
    """
    rows = list(rows)
    cut = [r for r in rows if r.finish_reason == "length"]
    if not cut:
        return None
    needed = max((r.completion_tokens for r in rows if r.finish_reason != "length"), default=0)
    needed = max(needed, 2 * (cap or max(r.completion_tokens for r in cut)))
    return int(math.ceil(needed * HEADROOM / STEP) * STEP)


def cut_short_words(rows: Iterable[Spent], cap: int | None, effort: str | None) -> str | None:
    """'3 of 5 sample answers were cut short, 2 of them by hidden reasoning (effort medium): ...' or None."""
    rows = list(rows)
    cut = [r for r in rows if r.finish_reason == "length"]
    if not cut:
        return None
    thinking = [r for r in cut if r.reasoning_tokens]
    suggestion = suggest_max_tokens(rows, cap)
    text = f"{len(cut)} of {len(rows)} answers were cut short by max tokens ({cap or 'none set'})"
    if thinking:
        text += (
            f", {len(thinking)} of them by hidden reasoning"
            + (f" at effort {effort}" if effort else "")
            + " (billed as output, never shown)"
        )
    text += f". A max tokens of about {suggestion} fits these rows"
    if thinking and effort not in (None, "none"):
        text += "; or set the reasoning effort to none, which needs no thinking tokens"
    return text + "."
