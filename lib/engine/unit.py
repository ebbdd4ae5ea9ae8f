"""A unit of work: one row, or a pack of rows sent in one request (lib.prompts.packing).

Both have the same face: the row ids they answer, the request body, its hash (the paid-answer cache's key),
the prompt tokens counted before sending and the most output they may take (the budget's worst case and the
governor's token charge). The queue holds Units; only the judge (splitting a pack's answer back to its
rows) and the policy (a pack's failure sends its rows alone) look at which kind a unit is.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace


def request_hash(body: Mapping, base_url: str | None) -> str:
    """Identity of a request for the paid-response cache: the exact body and the endpoint, never the key."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{base_url or 'openai'}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One row's request."""

    row_id: int
    body: dict  # chat.completions keyword arguments, in the catalog's shape (lib.models.shapes)
    request_hash: str
    prompt_tokens: int  # counted before sending: for TPM pacing and the budget's worst case
    max_output_tokens: int

    @property
    def row_ids(self) -> tuple[int, ...]:
        return (self.row_id,)

    @property
    def members(self) -> tuple[WorkItem, ...]:
        return (self,)

    @property
    def key(self) -> int:
        """What per-unit bookkeeping (attempts, backoffs) is kept under."""
        return self.row_id

    def at(self, base_url: str | None) -> WorkItem:
        """The same request keyed for another endpoint (its answer is cached under where it came from)."""
        return replace(self, request_hash=request_hash(self.body, base_url))


@dataclass(frozen=True)
class PackItem:
    """Several rows in one request; its answer is split back by row id (lib.engine.judge)."""

    members: tuple[WorkItem, ...]
    body: dict  # the packed chat.completions body
    request_hash: str
    prompt_tokens: int
    max_output_tokens: int

    @property
    def row_id(self) -> int:
        """The first member's: names the pack in headers and logs."""
        return self.members[0].row_id

    @property
    def row_ids(self) -> tuple[int, ...]:
        return tuple(m.row_id for m in self.members)

    @property
    def key(self) -> tuple[str, str]:
        return ("pack", self.request_hash)

    def at(self, base_url: str | None) -> PackItem:
        return replace(
            self,
            members=tuple(m.at(base_url) for m in self.members),
            request_hash=request_hash(self.body, base_url),
        )


Unit = WorkItem | PackItem


def is_pack(unit: Unit) -> bool:
    return isinstance(unit, PackItem)


class UnitQueue:
    """Units waiting to be sent: in order, and those backing off until their time. Used under the job's lock."""

    def __init__(self) -> None:
        self._ready: deque[Unit] = deque()
        self._later: list[tuple[float, int, Unit]] = []  # (not before, tiebreak, unit): a heap
        self._tiebreak = itertools.count()

    def __len__(self) -> int:
        return len(self._ready) + len(self._later)

    def extend(self, units: Iterable[Unit]) -> None:
        self._ready.extend(units)

    def give_back(self, unit: Unit) -> None:
        """First in line again (it was taken and not sent, or the run stopped under it)."""
        self._ready.appendleft(unit)

    def first(self, units: Sequence[Unit]) -> None:
        """These go next, in this order (a pack's rows sent alone: they have waited their turn already)."""
        self._ready.extendleft(reversed(units))

    def later(self, unit: Unit, delay: float) -> None:
        """Back off without holding a worker: the unit waits while workers send others."""
        heapq.heappush(self._later, (time.monotonic() + delay, next(self._tiebreak), unit))

    def take(self) -> Unit | float | None:
        """The next unit to send; seconds to wait when only backed-off units remain; None when empty."""
        if self._later and self._later[0][0] <= time.monotonic():
            return heapq.heappop(self._later)[2]
        if self._ready:
            return self._ready.popleft()
        if self._later:
            return self._later[0][0] - time.monotonic()
        return None

    def next_due_s(self) -> float | None:
        """Seconds until the first backed-off unit may go, when nothing else is ready."""
        if self._ready or not self._later:
            return None
        return self._later[0][0] - time.monotonic()

    def rekey(self, change: Callable[[Unit], Unit]) -> None:
        """Every waiting unit changed alike (keyed for another endpoint)."""
        self._ready = deque(change(u) for u in self._ready)
        self._later = [(t, n, change(u)) for t, n, u in self._later]
        heapq.heapify(self._later)
