"""The judge: what an answer means for each row of its unit, the same for a row, a pack and a batch line.

A refusal or a filtered answer fails the row (text kept); a cut-short or unparseable answer succeeds
flagged; no text at all fails it. An answer that stands is then checked for quality (flags only), packed
or not. A pack's answer is split by row id (lib.prompts.packing): each answered row gets its share of the
pack's tokens and cost (shares of integers that add up exactly) and the pack's request time as its
latency; a row whose id came back missing, repeated or mangled goes again alone, carrying its share, so
the run's total is exactly what was billed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from lib.cost.pricing import Price, Usage, cost
from lib.engine.admission import RunPrices
from lib.engine.outcome import Outcome
from lib.engine.unit import PackItem, WorkItem
from lib.prompts import packing
from lib.store import CachedResponse, RowRecord, Source

# (row id, answer text, the pages it cites) -> [(flag, sentence)]: what a succeeded answer breaks; it stays
# succeeded.
QualityCheck = Callable[[int, str, Sequence[Source]], Sequence[tuple[str, str]]]
Result = tuple[RowRecord, CachedResponse | None]


def judge_answer(
    item: WorkItem,
    *,
    text: str | None,
    refusal: str | None,
    finish: str | None,
    usage: Usage,
    price: Price | None,
    check_output: Callable[[str], str | None] | None,
    attempts: int,
    batch: bool = False,
    tier: str | None = None,
    check_quality: QualityCheck | None = None,
    latency_s: float | None = None,
    sources: Sequence[Source] = (),
) -> RowRecord:
    """What an answer means for its row, the same in live and batch mode (see the module docstring)."""
    base = RowRecord(
        item.row_id,
        status="succeeded",
        text=text,
        finish_reason=finish,
        usage=usage,
        cost_usd=cost(usage, price, batch=batch),
        attempts=attempts,
        request_hash=item.request_hash,
        service_tier=tier,
        latency_s=latency_s,
        sources=tuple(sources),
    )
    if refusal:
        return replace(base, status="failed", error=f"The model refused: {refusal}", flags=("refusal",))
    if finish == "content_filter":
        return replace(
            base,
            status="failed",
            error="OpenAI's content filter stopped this answer.",
            flags=("content_filter",),
        )
    flags: list[str] = []
    error = None
    if finish == "length":
        flags.append("truncated")
        error = "The answer hit the max tokens limit and is cut short."
        if usage.reasoning_tokens:
            flags.append("reasoning_cut")
            error = (
                f"Cut short by hidden reasoning: the model spent {usage.reasoning_tokens} of its "
                f"{usage.completion_tokens} output tokens thinking before it answered. Raise max tokens "
                "or lower the reasoning effort (none needs no thinking tokens)."
            )
    if check_output is not None and text is not None:
        problem = check_output(text)
        if problem:
            flags.append("invalid_output")
            error = problem if error is None else f"{error} {problem}"
    if check_quality is not None and text is not None and "invalid_output" not in flags:
        for flag, message in check_quality(item.row_id, text, tuple(sources)):
            flags.append(flag)
            error = message if error is None else f"{error} {message}"
    if text is None and not flags:
        return replace(base, status="failed", error="The API returned an empty answer.", flags=("empty",))
    return replace(base, flags=tuple(dict.fromkeys(flags)), error=error)


def cacheable(row: RowRecord) -> bool:
    """Refusals, filtered and unparseable answers are not cached: "retry" then really asks again."""
    return row.status == "succeeded" and "invalid_output" not in row.flags


def share_usage(usage: Usage, prompt_weights: list[int], completion_weights: list[int]) -> list[Usage]:
    """The pack's usage split over its members; every field adds up to the pack's exactly."""
    n = len(prompt_weights)
    prompt = packing.share(usage.prompt_tokens, prompt_weights)
    cached = packing.share(usage.cached_tokens, prompt_weights)
    written = packing.share(usage.cache_write_tokens, prompt_weights)
    completion = packing.share(usage.completion_tokens, completion_weights)
    reasoning = packing.share(usage.reasoning_tokens, completion_weights)
    searches = packing.share(usage.web_search_calls, prompt_weights)
    return [
        Usage(prompt[i], completion[i], cached[i], reasoning[i], written[i], searches[i]) for i in range(n)
    ]


class Judge:
    """Judges answers for one run: its prices, its output check and its quality checks."""

    def __init__(
        self,
        prices: RunPrices,
        check_output: Callable[[str], str | None] | None,
        check_quality: QualityCheck | None,
    ) -> None:
        self.prices = prices
        self.check_output = check_output
        self.check_quality = check_quality
        # A row sent alone after its pack lost its answer: the share of the pack it was billed.
        self._carry: dict[int, tuple[Usage, float | None, str | None]] = {}
        self._carry_lock = threading.Lock()

    def row(self, item: WorkItem, outcome: Outcome, attempts: int) -> Result:
        """One row's answer, and the paid answer to cache (None when it must not be reused)."""
        row = judge_answer(
            item,
            text=outcome.text,
            refusal=outcome.refusal,
            finish=outcome.finish,
            usage=outcome.usage or Usage(),
            price=self.prices.of(outcome.tier),
            check_output=self.check_output,
            attempts=attempts,
            tier=outcome.tier,
            check_quality=self.check_quality,
            latency_s=outcome.latency_s,
            sources=outcome.sources,
        )
        answer = CachedResponse(
            item.request_hash, outcome.response_id, outcome.text, outcome.finish, row.usage, row.sources
        )
        return row, answer if cacheable(row) else None

    def cached(self, item: WorkItem, answer: CachedResponse) -> RowRecord:
        """A row answered from the paid-answer cache (judged as fresh: the checks may have changed)."""
        row = judge_answer(
            item,
            text=answer.text,
            refusal=None,
            finish=answer.finish_reason,
            usage=answer.usage,
            price=self.prices.of(None),
            check_output=self.check_output,
            attempts=0,
            check_quality=self.check_quality,
            sources=answer.sources,
        )
        return replace(row, from_cache=True)

    def pack(
        self, pack: PackItem, outcome: Outcome, attempts_of: Callable[[int], int]
    ) -> tuple[list[Result], list[WorkItem], str | None]:
        """(each answered row's result, the rows to send alone, what went wrong in words or None)."""
        ids = [m.row_id for m in pack.members]
        split = packing.split_answer(outcome.text if not outcome.refusal else None, ids)
        cited = packing.cited_items(outcome.text or "", outcome.citations, ids) if outcome.citations else {}
        problem = None
        if split.problem or split.resend:
            problem = (
                split.problem
                or f"{len(split.resend)} of {len(ids)} packed answers came back without their id: sent alone."
            )
        answers = split.answers
        weights = [m.prompt_tokens for m in pack.members]
        out_weights = [len(answers.get(m.row_id, "")) for m in pack.members]
        if not any(out_weights):
            out_weights = [1] * len(ids)
        shares = share_usage(outcome.usage or Usage(), weights, out_weights)
        price = self.prices.of(outcome.tier)
        results: list[Result] = []
        alone: list[WorkItem] = []
        for member, part in zip(pack.members, shares, strict=True):
            text = answers.get(member.row_id)
            if text is None:
                alone.append(member)
                with self._carry_lock:
                    self._carry[member.row_id] = (part, cost(part, price), outcome.tier)
                continue
            row = judge_answer(
                member,
                text=text,
                refusal=None,
                finish=outcome.finish if outcome.finish != "length" else "stop",
                usage=part,
                price=price,
                check_output=self.check_output,
                attempts=attempts_of(member.row_id),
                tier=outcome.tier,
                check_quality=self.check_quality,  # packed answers are checked like any other
                latency_s=outcome.latency_s,  # the pack's request time, shared by its rows
                sources=cited.get(member.row_id, ()),
            )
            row = replace(row, flags=(*row.flags, "packed"))
            answer = CachedResponse(member.request_hash, None, text, "stop", part, row.sources)
            results.append((row, answer if cacheable(row) else None))
        return results, alone, problem

    def with_carry(self, row: RowRecord) -> RowRecord:
        """A row's record plus what its earlier packed request cost it (billed though it was not answered)."""
        if not self._carry:
            return row
        with self._carry_lock:
            carry = self._carry.pop(row.row_id, None)
        if carry is None:
            return row
        part, part_cost, tier = carry
        own = row.usage if not row.from_cache else Usage()
        own_cost = (row.cost_usd or 0.0) if not row.from_cache else 0.0
        total = None if part_cost is None and row.cost_usd is None else (part_cost or 0.0) + own_cost
        return replace(
            row,
            usage=own + part,
            cost_usd=total,
            from_cache=False,  # it paid its share of the pack, so it is not a free reuse
            service_tier=row.service_tier or tier,
        )
