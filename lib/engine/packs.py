"""Packed requests in the engine: N rows in one request (lib.prompts.packing), split back to their rows.

A PackItem goes through the same governor, budget and error handling as a row. Its answer is split by id;
each answered row gets its share of the pack's tokens and cost (shares of integers that add up exactly),
and a row whose id came back missing, repeated or mangled is queued again on its own, carrying its share
of the pack so that the run's total is exactly what was billed. Every row of a pack carries the pack's
request time as its latency (the rows shared one request). Errors of the pack as a whole: a rate
limit or a capacity refusal retries the pack; a server error retries it up to max_attempts, then sends
its rows alone; an error about the request (too long) sends its rows alone.

`PackingMixin` is a part of `lib.engine.job.Job` kept here so that the job module stays about rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lib.cost.pricing import Usage, cost
from lib.prompts import packing

if TYPE_CHECKING:  # the mixin's host
    from lib.engine.job import WorkItem, _Outcome


@dataclass(frozen=True)
class PackItem:
    members: tuple[WorkItem, ...]
    body: dict  # the packed chat.completions body
    request_hash: str
    prompt_tokens: int
    max_output_tokens: int

    @property
    def row_id(self) -> int:
        """The first member's: names the pack in headers and logs."""
        return self.members[0].row_id


def share_usage(usage: Usage, prompt_weights: list[int], completion_weights: list[int]) -> list[Usage]:
    """The pack's usage split over its members; every field adds up to the pack's exactly."""
    n = len(prompt_weights)
    prompt = packing.share(usage.prompt_tokens, prompt_weights)
    cached = packing.share(usage.cached_tokens, prompt_weights)
    written = packing.share(usage.cache_write_tokens, prompt_weights)
    completion = packing.share(usage.completion_tokens, completion_weights)
    reasoning = packing.share(usage.reasoning_tokens, completion_weights)
    return [Usage(prompt[i], completion[i], cached[i], reasoning[i], written[i]) for i in range(n)]


class PackingMixin:
    """Job methods for PackItems (see the module docstring). Uses the Job's lock, queue and journal."""

    def _process_pack(self, pack: PackItem) -> None:
        from lib.engine.job import _Halt

        claimed = [m for m in pack.members if self._claim_hash(m) is None]  # duplicates wait for these
        try:
            worst = self._reserve_budget(pack)
            try:
                outcome = self._send_shaped(pack)
                self._handle_pack(pack, outcome)
            finally:
                self._release_budget(worst)
        except _Halt:
            raise
        except Exception as exc:  # a bug costs this pack a detour through single requests, never its rows
            self._note_error(pack.row_id, f"Internal error in a packed request: {exc!r}")
            with self._lock:
                open_rows = [m for m in pack.members if self._rows[m.row_id].status == "pending"]
            self._send_alone(open_rows)  # rows journalled before the error keep their answer
        finally:
            for member in claimed:
                self._release_hash(member)

    def _handle_pack(self, pack: PackItem, outcome: _Outcome) -> None:
        from lib.engine.job import MAX_RATE_LIMIT_RETRIES, _Halt

        key = ("pack", pack.request_hash)
        if outcome.kind == "capacity":
            self._no_capacity(pack)
            return
        if outcome.kind == "ok":
            self.governor.succeeded()
            if outcome.tier == "flex":
                with self._lock:
                    self._capacity_since = None
            self._split(pack, outcome)
            return
        self._note_error(pack.row_id, outcome.message)
        if outcome.kind == "rate_limit":
            with self._lock:
                self._rate_limited += 1
                limited = self._rate_limit_retries[key] = self._rate_limit_retries.get(key, 0) + 1
            wait = self.governor.rate_limited(outcome.headers)
            if limited >= MAX_RATE_LIMIT_RETRIES:
                self._send_alone(pack.members)
            else:
                self._retry_later(pack, wait)
            return
        if outcome.kind != "transient":
            self.governor.succeeded()
        if outcome.kind == "quota":
            self.pause(outcome.message)
            raise _Halt
        if outcome.kind == "fatal":
            self._fail(outcome.message)
            raise _Halt
        with self._lock:
            tries = self._attempts[key] = self._attempts.get(key, 0) + 1
        if outcome.kind == "row" or tries >= self.settings.max_attempts:
            self._send_alone(pack.members)
        else:
            self._retry_later(pack, self.governor.server_error(tries))

    def _split(self, pack: PackItem, outcome: _Outcome) -> None:
        """Each answered row journalled with its share; the others queued alone, carrying theirs."""
        from lib.engine.job import judge_answer
        from lib.store import CachedResponse

        ids = [m.row_id for m in pack.members]
        split = packing.split_answer(outcome.text if not outcome.refusal else None, ids)
        if split.problem or split.resend:
            lost = len(split.resend)
            self._note_error(
                pack.row_id,
                split.problem
                or f"{lost} of {len(ids)} packed answers came back without their id: sent alone.",
            )
        answers = split.answers
        usage = outcome.usage or Usage()
        weights = [m.prompt_tokens for m in pack.members]
        out_weights = [len(answers.get(m.row_id, "")) for m in pack.members]
        if not any(out_weights):
            out_weights = [1] * len(ids)
        shares = share_usage(usage, weights, out_weights)
        price = self._price_of(outcome.tier)
        carried = []
        for member, part in zip(pack.members, shares, strict=True):
            text = answers.get(member.row_id)
            if text is None:
                carried.append(member)
                with self._lock:
                    self._carry[member.row_id] = (part, cost(part, price), outcome.tier)
                continue
            attempts = self._attempts.get(member.row_id, self._rows[member.row_id].attempts) + 1
            self._attempts[member.row_id] = attempts
            row = judge_answer(
                member,
                text=text,
                refusal=None,
                finish=outcome.finish if outcome.finish != "length" else "stop",
                usage=part,
                price=price,
                check_output=self.plan.check_output,
                attempts=attempts,
                tier=outcome.tier,
                latency_s=outcome.latency_s,  # the pack's request time, shared by its rows
            )
            row = replace(row, flags=(*row.flags, "packed"))
            cacheable = row.status == "succeeded" and "invalid_output" not in row.flags
            answer = CachedResponse(member.request_hash, None, text, "stop", part) if cacheable else None
            self._finish(member, row, answer)
        self._send_alone(carried, count_retry=False)

    def _send_alone(
        self, members: list[WorkItem] | tuple[WorkItem, ...], *, count_retry: bool = True
    ) -> None:
        """Queue rows as single requests (first in line: they have waited their turn already)."""
        with self._lock:
            for member in reversed(members):
                self._queue.appendleft(member)
            if count_retry and members:
                self._retries += 1

    def _with_carry(self, row):
        """A row's record plus what its earlier packed request cost it (billed though it was not answered)."""
        with self._lock:
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
