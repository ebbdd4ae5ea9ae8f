"""Admission: whether and when a unit's request may go.

Three gates, in order: the budget (the request's worst case reserved against the run's limit, so requests
in flight can never take the spend past it; with web research, its max_tool_calls calls and their search
content too), the request shape's turn (until a request in this model's
shape has succeeded at this endpoint, one goes at a time: a refused parameter is refused once, not once a
row; lib.models.shapes), and the key's governor (pacing shared by every run on the key). A request whose
outcome is unknown (it may have been billed) keeps its reservation as an estimate of what it cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from lib.cost.pricing import TIERS, Price, Usage, cost
from lib.models import listing as model_listing
from lib.models import shapes
from lib.prompts import research
from lib.store import Store, StoreError


class RunPrices:
    """A run's prices per service tier (from its plan), for judging answers and for the budget."""

    def __init__(self, price: Price | None, tier_prices: Mapping[str, Price | None]) -> None:
        self.price = price
        self.tier_prices = tier_prices

    def of(self, tier: str | None) -> Price | None:
        """The price of an answer served at `tier` (the response's word)."""
        tier = tier or "default"
        if tier in self.tier_prices:
            return self.tier_prices[tier]
        if tier == "default":
            return self.price
        if tier == "flex" and self.price is not None and not self.tier_prices:
            return self.price.scaled(0.5)  # a plan built without tier prices: flex bills at batch rates
        return None

    def dearest(self, asked: str) -> Price | None:
        """The dearest price an answer asked at tier `asked` may be billed at (for the worst case)."""
        tiers = {asked, "default"} if asked != "auto" else {*TIERS}
        prices = [p for p in (self.of(t) for t in tiers) if p is not None]
        if not prices:
            return None
        return max(prices, key=lambda p: (p.input, p.output, p.cache_write or 0.0))

    def worst(
        self, prompt_tokens: int, max_output_tokens: int, asked: str, body: Mapping | None = None
    ) -> float:
        """What one request may cost at most (0 when unpriced: nothing to hold). With web research (`body`
        carries the web_search tool), also its most billed calls and the search content they may bring."""
        price = self.dearest(asked)
        if price is None:
            return 0.0
        calls, per_call = research.allowance(body) if body is not None else (0, 0)
        usage = Usage(prompt_tokens + calls * per_call, max_output_tokens, web_search_calls=calls)
        return cost(usage, price) or 0.0


class Budget:
    """The run's spend limit and the worst cases reserved against it. Used under the job's lock."""

    def __init__(self, limit_usd: float | None) -> None:
        self.limit_usd = limit_usd
        self.reserved = 0.0

    def reserve(self, worst: float, spent: float) -> bool:
        """Hold `worst` against the limit; False (nothing held) when it would take `spent` past it."""
        if self.limit_usd is None or not worst:
            return True
        if spent + self.reserved + worst > self.limit_usd + 1e-12:
            return False
        self.reserved += worst
        return True

    def release(self, worst: float) -> None:
        """The request's real cost is counted (or it was not billed): its worst case is free again."""
        if self.limit_usd is not None and worst:
            self.reserved = max(0.0, self.reserved - worst)

    def reached_words(self, worst: float) -> str:
        from lib.cost.pricing import format_usd

        return (
            f"Budget reached: the next request could cost up to {format_usd(worst)}, which would take the run "
            f"past its {format_usd(self.limit_usd or 0.0)} budget. Raise the budget to continue."
        )


class Shapes:
    """Each model's request shape at one endpoint (lib.models.shapes): what servers taught, applied and learnt."""

    def __init__(
        self,
        store: Store,
        base_url: str | None,
        *,
        wanted_effort: str | None,
        noted: Callable[[str], None],
    ) -> None:
        self._store = store
        self._key = model_listing.endpoint_key(base_url)
        self._wanted = wanted_effort
        self._noted = noted
        self._shapers: dict[str, shapes.Shaper] = {}
        self._lock = threading.Lock()

    def of(self, model: str) -> shapes.Shaper:
        with self._lock:
            shaper = self._shapers.get(model)
            if shaper is not None:
                return shaper
            try:
                known = shapes.Fixes.from_json(self._store.shape_fixes(self._key, model))
            except StoreError:
                known = shapes.Fixes()
            store, key = self._store, self._key

            def save(fixes: shapes.Fixes, note: str | None) -> None:
                store.save_shape_fixes(key, model, fixes.to_json(), note)

            shaper = self._shapers[model] = shapes.Shaper(known, wanted_effort=self._wanted, save=save)
            return shaper

    def learn(self, shaper: shapes.Shaper, status: int | None, error, sent: Mapping) -> str | None:
        """A 400/422 that names a parameter the model does not take: the note of the fix, else None."""
        if status not in (400, 422) or error is None:
            return None
        code, _, param, said = error
        note = shaper.learn(status, code, param, said, sent)
        if note:
            self._noted(note)
        return note

    def learn_answer(self, shaper: shapes.Shaper, served_effort: str | None, sent: Mapping) -> bool:
        """What an answer says of the model's shape (a reasoning model answering a request sent without an
        effort, through the Responses API): kept for the next requests, said once. True when it taught
        something (the shape then stays unconfirmed: the next request probes it alone)."""
        note = shaper.learn_reasoning(sent, served_effort)
        if note:
            self._noted(note)
        return note is not None

    @staticmethod
    @contextmanager
    def turn(shaper: shapes.Shaper, halt: threading.Event) -> Iterator[bool]:
        """Wait for this request's turn while the shape is unconfirmed; yields False when halted meanwhile."""
        turn = shaper.turn(halt)
        try:
            yield turn is not None
        finally:
            if turn:
                shaper.done()
