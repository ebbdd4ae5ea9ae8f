"""What a run is given (RunSettings, RunPlan) and what it shows (Snapshot): plain frozen records.

Pages and the command line build settings and plans, and read snapshots; the engine's stages read the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from lib.cost.pricing import Price
from lib.engine.client import DEFAULT_BASE_URL
from lib.engine.judge import QualityCheck
from lib.engine.unit import PackItem, WorkItem


@dataclass(frozen=True)
class RunSettings:
    workers: int = 16
    rpm: int | None = None  # optional ceilings for the key, under what the server reports
    tpm: int | None = None
    budget_usd: float | None = None
    timeout_s: float = 30.0
    max_attempts: int = 4  # transient failures (5xx, timeouts, dropped connections) before a row fails
    give_up_after_s: float | None = None  # pause when nothing succeeds this long while the server refuses
    service_tier: str = "default"  # default | flex | priority | auto: the tier asked for
    flex_fallback: bool = False  # after flex_patience_s without flex capacity, go on at the default tier
    flex_patience_s: float = 600.0
    transport: str = "chat"  # the API requests go through (lib.engine.transports): chat | responses


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, prepared (and token-counted) before any request."""

    run_id: str
    items: tuple[WorkItem, ...]
    inputs: Mapping[int, Mapping[str, str]]  # row id -> input cells, journalled for history and export
    skipped: Mapping[int, str] = field(default_factory=dict)  # row id -> why it is not sent
    meta: Mapping = field(default_factory=dict)  # prompt, model, input file name...: shown in history
    price: Price | None = None
    check_output: Callable[[str], str | None] | None = None  # problem with an answer (bad JSON...), or None
    tier_prices: Mapping[str, Price | None] = field(default_factory=dict)  # tier -> price (tier_prices())
    packs: tuple[PackItem, ...] = ()  # rows packed several to a request; the others go alone
    # Quality flags of an answer that stands (lib/prompts/checks.py), or None.
    check_quality: QualityCheck | None = None


@dataclass(frozen=True)
class RowError:
    row_id: int
    message: str
    at: float


@dataclass(frozen=True)
class Snapshot:
    """What the UI draws: an immutable copy of a job's counters."""

    run_id: str
    status: str
    message: str | None
    total: int
    succeeded: int
    failed: int
    skipped: int
    pending: int
    in_flight: int
    flagged: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: float  # what may have been billed: the answers' cost plus estimated_usd
    cost_known: bool  # False when the model is unpriced: cost_usd then counts nothing
    budget_usd: float | None
    requests_sent: int
    cache_hits: int
    retries: int
    rate_limited: int
    elapsed_s: float
    rows_per_s: float
    eta_s: float | None
    cost_series: tuple[tuple[float, float, int], ...]  # (elapsed s, cumulative $, cumulative tokens)
    recent_errors: tuple[RowError, ...]
    version: int  # grows whenever any row changes: lets a page skip redrawing an unchanged table
    # Why nothing moves: how long every answer has been a refusal ("429") or a failure ("error"), and
    # when the next request may go. None while answers get through.
    stalled_s: float | None = None
    stall_kind: str | None = None
    next_try_s: float | None = None
    cache_write_tokens: int = 0
    saved_by_caching_usd: float = 0.0  # cache reads at the input price less what they cost, less write extras
    tier_rows: Mapping[str, int] = field(default_factory=dict)  # rows answered per tier that served them
    tier_cost: Mapping[str, float] = field(default_factory=dict)
    service_tier: str = "default"  # the tier requests go at now (flex may have fallen back to default)
    capacity_refusals: int = 0  # flex "Resource Unavailable" answers (not billed)
    # What the server corrected in the request shape (lib.models.shapes), in words, once each.
    adjustments: tuple[str, ...] = ()
    # The part of cost_usd that no answer reported: requests that may have been billed though their outcome
    # is unknown (dropped connections, timeouts after sending, unreadable answers), at their worst case.
    estimated_usd: float = 0.0
    web_search_calls: int = 0  # billed web search calls (Responses API), priced in cost_usd

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def public_url(base_url: str | None) -> str:
    """The endpoint as a user may see it: no user:password, no query (where keys sometimes ride)."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
