"""One set of counters over a job's rows, kept as rows change, for every kind of job.

A row is counted by its status (and flags); a billed row (an answer, not one reused from the paid-answer
cache) adds its tokens and cost. `estimated` is money that may have been billed but that no answer
reported: a request whose outcome is unknown (the connection dropped, or it timed out, after the body was
sent) keeps its worst case here, so the budget counts it and the run says how much of its cost is such an
estimate. Rows without tokens (a website reading) count by status only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lib.cost.pricing import Price, Usage, caching_saved


class Tally:
    """Counters over row records, updated incrementally. Not thread-safe: the job's lock guards it."""

    def __init__(self, price_of: Callable[[str | None], Price | None] | None = None) -> None:
        self.price_of = price_of  # tier -> price, for what prompt caching saved
        self.estimated = 0.0
        self.reset()

    def reset(self) -> None:
        """Every count back to zero (the estimate is the job's, not its rows': it stays)."""
        self.succeeded = self.failed = self.skipped = self.pending = self.flagged = 0
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.reasoning_tokens = self.cache_write_tokens = 0
        self.web_search_calls = 0  # billed web search calls (the Responses API's tool)
        self.answered_cost = 0.0  # what the answers' reported usage cost
        self.saved = 0.0
        self.unpriced = 0  # billed rows with no price (a tier the price table lacks): the total is short
        self.tier_rows: dict[str, int] = {}
        self.tier_cost: dict[str, float] = {}

    @property
    def cost(self) -> float:
        """What the job may have been billed: the answers' cost plus the estimate for unknown outcomes."""
        return self.answered_cost + self.estimated

    @property
    def usage(self) -> Usage:
        return Usage(
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.reasoning_tokens,
            self.cache_write_tokens,
            self.web_search_calls,
        )

    def count_status(self, status: str, sign: int, flagged: bool = False) -> None:
        if status == "succeeded":
            self.succeeded += sign
            if flagged:
                self.flagged += sign
        elif status == "failed":
            self.failed += sign
        elif status == "skipped":
            self.skipped += sign
        else:
            self.pending += sign

    def _apply(self, row: Any, sign: int) -> None:
        self.count_status(row.status, sign, bool(row.flags))
        if row.from_cache:  # an answer reused from the cache was paid for once, by the run that sent it
            return
        u = row.usage
        if u.prompt_tokens or u.completion_tokens:
            self.prompt_tokens += sign * u.prompt_tokens
            self.completion_tokens += sign * u.completion_tokens
            self.cached_tokens += sign * u.cached_tokens
            self.reasoning_tokens += sign * u.reasoning_tokens
            self.cache_write_tokens += sign * u.cache_write_tokens
            self.web_search_calls += sign * u.web_search_calls
            if row.cost_usd is None:
                self.unpriced += sign
        if row.cost_usd:
            self.answered_cost += sign * row.cost_usd
        tier = row.service_tier
        if tier:
            self.tier_rows[tier] = self.tier_rows.get(tier, 0) + sign
            self.tier_cost[tier] = self.tier_cost.get(tier, 0.0) + sign * (row.cost_usd or 0.0)
        if self.price_of is not None and (u.cached_tokens or u.cache_write_tokens):
            self.saved += sign * (caching_saved(u, self.price_of(tier)) or 0.0)

    def add(self, row: Any) -> None:
        self._apply(row, 1)

    def remove(self, row: Any) -> None:
        self._apply(row, -1)

    def replace(self, old: Any | None, new: Any) -> None:
        if old is not None:
            self._apply(old, -1)
        self._apply(new, 1)

    def recount(self, rows: Iterable[Any]) -> None:
        self.reset()
        for row in rows:
            self._apply(row, 1)

    def as_meta(self) -> dict:
        """The totals a run's meta keeps (History shows them without opening the rows)."""
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "pending": self.pending,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost,
            "estimated_usd": self.estimated,
            "service_tiers": {k: v for k, v in self.tier_rows.items() if v},
            "saved_by_caching_usd": self.saved,
            **({"web_search_calls": self.web_search_calls} if self.web_search_calls else {}),
        }
