"""What the store hands out: immutable records, so readers (threads, pages) can share them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from lib.cost.pricing import Usage

FINAL_STATUSES = frozenset({"succeeded", "failed", "skipped"})


@dataclass(frozen=True)
class Source:
    """A page an answer cites (a Responses API `url_citation`): its address, its title and the cited span."""

    url: str
    title: str = ""
    quote: str = ""  # the answer's text the citation spans


def sources_json(sources: Sequence[Source]) -> str | None:
    """Sources as the store keeps them (None for none)."""
    if not sources:
        return None
    return json.dumps([[s.url, s.title, s.quote] for s in sources], ensure_ascii=False, separators=(",", ":"))


def sources_from_json(text: str | None) -> tuple[Source, ...]:
    if not text:
        return ()
    return tuple(Source(*item) for item in json.loads(text))


@dataclass(frozen=True)
class CachedResponse:
    request_hash: str
    response_id: str | None
    text: str | None
    finish_reason: str | None
    usage: Usage
    sources: tuple[Source, ...] = ()  # what the answer cited (web search), kept with it


@dataclass(frozen=True)
class RowRecord:
    """One row's state as the journal keeps it. Immutable: a change is a new record, so readers share them."""

    row_id: int
    status: str = "pending"  # pending | succeeded | failed | skipped
    text: str | None = None
    error: str | None = None
    retryable: bool = False
    finish_reason: str | None = None
    flags: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    attempts: int = 0
    from_cache: bool = False
    request_hash: str | None = None
    service_tier: str | None = None  # the tier the response says served it (default, flex, priority, batch)
    # Seconds from sending the request that produced this answer to its parsed response (the rate-limit
    # governor's wait not included); a packed row has its pack's time; None for batch and reused answers.
    latency_s: float | None = None
    sources: tuple[Source, ...] = ()  # the pages the answer cites (web search): its `sources` column


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    created_at: float
    updated_at: float
    status: str
    message: str | None
    meta: dict


@dataclass(frozen=True)
class WebPage:
    """A website's text as read (or why it could not be), kept so a rerun does not read it again."""

    cache_key: str  # the address as tried, plus the reading options that change the text
    url: str
    final_url: str | None
    text: str
    error: str | None
    fetched_at: float  # time.time()


@dataclass(frozen=True)
class Chunk:
    """One batch's worth of a run sent through the Batch API: what was prepared and how far it got."""

    run_id: str
    index: int
    row_ids: tuple[int, ...]
    sha256: str
    nbytes: int
    filename: str
    step: str
    file_id: str | None = None
    batch_id: str | None = None
    batch_status: str | None = None
    completed: int = 0
    failed: int = 0
    total: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    prepared_at: float = 0.0

    @property
    def merged(self) -> bool:
        return self.step == "merged"
