"""The run engine: one prompt over many rows in background threads, paced, durable and exact on cost.

A Job owns a queue of work items (one per row). Worker threads take items, look the exact request up
in the paid-response cache, wait for the key's governor, send one request with the openai SDK (no SDK
retries: this is the one retry layer), classify the outcome and journal it in the store before it
counts. A failed row is a result with an error, never an exception that ends the run. The UI and the
command line only ever read `snapshot()`, an immutable copy, and call pause/resume/cancel.

One piece past 600 lines on purpose: the workers, counters, budget reservations and snapshot share one
lock and one set of invariants (every row ends in exactly one state, the budget is never crossed), and
splitting them would spread that lock's rules over several files.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai

from lib.cost.pricing import TIERS, Price, Usage, caching_saved, cost, format_usd
from lib.engine import errors
from lib.engine.client import DEFAULT_BASE_URL, Endpoint, make_client, release_client
from lib.engine.governor import Governor, governor_for
from lib.engine.packs import PackingMixin, PackItem
from lib.models import ListedModel, retirement, shapes
from lib.models import listing as model_listing
from lib.store import CachedResponse, RowRecord, Store, StoreError

STATUSES = ("pending", "running", "paused", "cancelled", "finished", "failed")
ACTIVE = frozenset({"pending", "running"})
SERIES_EVERY_S = 0.25  # at most one cost-chart point per this many seconds
RATE_WINDOW_S = 10.0
MAX_RATE_LIMIT_RETRIES = 30  # per row: a key that keeps answering 429 turns the row into a retryable failure
RECENT_ERRORS = 20
# Adaptive timeout: the setting until an answer is seen; then 20x the slowest answer (at least 10 s);
# from the 100th answer, see adaptive_timeout. Never more than the setting. A row that timed out gets
# double the time on each further attempt (as TCP backs off its retransmit timer), so an answer that is
# merely slow gets through on the retry instead of being cut off again.
ADAPTIVE_FIRST_MULTIPLE = 20.0
ADAPTIVE_FIRST_FLOOR_S = 10.0
ADAPTIVE_MIN_SAMPLES = 100  # fewer answers say too little about the tail: a p99 of 20 is their maximum
ADAPTIVE_Z = 4.75  # a lognormal fit's quantile that about one answer in a million exceeds
ADAPTIVE_MAX_MULTIPLE = 2.0
ADAPTIVE_FLOOR_S = 1.0
# When the endpoint, not the row, is the problem: the first answers of a phase (about one per worker) all
# the same non-retryable error, or this many connection failures in a row that say nothing is there
# (refused, DNS, TLS), stop the run with the rows pending instead of failing every row of the list.
ENDPOINT_PROBE_MAX = 50  # with many workers, this many identical errors are enough
UNREACHABLE_MIN = 3
UNREACHABLE_AFTER_OK_S = 5.0  # once answers have come, a blip shorter than this is a restart, not a stop
# Flex answers can be slow (OpenAI advises timeouts up to 15 minutes), so flex requests get that much.
FLEX_TIMEOUT_S = 900.0
# A flex capacity refusal (429 Resource Unavailable) backs the row off, doubling, jittered, unbilled.
CAPACITY_FIRST_BACKOFF_S = 0.25
CAPACITY_MAX_BACKOFF_S = 30.0


def adaptive_timeout(latencies: Iterable[float], setting: float) -> float:
    """A per-request timeout from recent answer times: past what a real answer would take, short of minutes.

    Answer times are skewed (most fast, a few several times slower), so they are fitted as a lognormal and
    the timeout put where about one answer in a million would be cut off: exp(mean + 4.75 sd) of their
    logs. A tight spread (every answer ~0.5 s) would put that barely past the typical answer, so it is
    never under twice the slowest recent answer, nor under a second.
    """
    values = [max(x, 1e-3) for x in latencies]
    logs = [math.log(x) for x in values]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs))
    fitted = math.exp(min(mean + ADAPTIVE_Z * sd, 20.0))  # exp() of a wild fit must not overflow
    return min(setting, max(ADAPTIVE_FLOOR_S, ADAPTIVE_MAX_MULTIPLE * max(values), fitted))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def request_hash(body: Mapping, base_url: str | None) -> str:
    """Identity of a request for the paid-response cache: the exact body and the endpoint, never the key."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{base_url or 'openai'}\n{canonical}".encode()).hexdigest()


# (row id, answer text) -> [(flag, sentence)]: what a succeeded answer breaks; it stays succeeded.
QualityCheck = Callable[[int, str], Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class WorkItem:
    row_id: int
    body: dict  # chat.completions keyword arguments
    request_hash: str
    prompt_tokens: int  # counted before sending: for TPM pacing and the budget's worst case
    max_output_tokens: int


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
    packs: tuple[PackItem, ...] = ()  # rows packed several to a request (lib.engine.packs); others go alone
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
    cost_usd: float
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

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def refusal_of(message: Mapping) -> str | None:
    """A chat message's refusal, where OpenAI puts it or where LiteLLM moves it (provider_specific_fields)."""
    refusal = message.get("refusal")
    extra = message.get("provider_specific_fields")
    if not refusal and isinstance(extra, Mapping):
        refusal = extra.get("refusal")
    return str(refusal) if refusal else None


def public_url(base_url: str | None) -> str:
    """The endpoint as a user may see it: no user:password, no query (where keys sometimes ride)."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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
) -> RowRecord:
    """What an answer means for its row, the same in live and batch mode.

    A refusal or a filtered answer fails the row (text kept); a cut-short or unparseable answer succeeds
    flagged; no text at all fails it. An answer that stands is then checked for quality (flags only).
    """
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
        for flag, message in check_quality(item.row_id, text):
            flags.append(flag)
            error = message if error is None else f"{error} {message}"
    if text is None and not flags:
        return replace(base, status="failed", error="The API returned an empty answer.", flags=("empty",))
    return replace(base, flags=tuple(dict.fromkeys(flags)), error=error)


class _Halt(Exception):
    """Internal: the job was paused, cancelled or failed while this item waited."""


class Job(PackingMixin):
    """One run. Thread-safe; its worker threads never touch any UI."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        endpoint: Endpoint,
        settings: RunSettings,
        store: Store,
        governor: Governor | None = None,
        client: openai.OpenAI | None = None,
    ):
        self.id = plan.run_id
        self.plan = plan
        self.endpoint = endpoint
        self.settings = settings
        self.store = store
        self.governor = governor or governor_for(endpoint.fingerprint)
        self.governor.set_ceilings(settings.rpm, settings.tpm)
        self._own_client = client is None  # from make_client: released by close()
        self.client = client or make_client(
            endpoint, timeout_s=settings.timeout_s, connections=max(settings.workers, 8)
        )
        self._items = {item.row_id: item for item in plan.items}
        self._shapers: dict[str, shapes.Shaper] = {}
        self._adjustments: list[str] = []
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._queue: deque[WorkItem] = deque()
        self._delayed: list[tuple[float, int, WorkItem]] = []  # (not before, tiebreak, item): backing off
        self._tiebreak = itertools.count()
        self._attempts: dict[int, int] = {}
        self._rate_limit_retries: dict[int, int] = {}
        self._row_timeouts: dict[int, int] = {}  # per row: attempts that timed out (each doubles the next)
        self._latencies: deque[float] = deque(maxlen=256)
        self._timeout_cache: tuple[int, float] | None = None
        self._latency_samples = 0
        self._rows: dict[int, RowRecord] = {}
        self._inflight_hashes: dict[str, threading.Event] = {}
        self._unsaved: list[tuple[RowRecord, CachedResponse | None]] = []
        self._threads: list[threading.Thread] = []
        self._done_event = threading.Event()
        self.status = "pending"
        self.message: str | None = None
        self._budget = settings.budget_usd
        self._reserved = 0.0
        self._in_flight = 0
        self._requests_sent = 0
        self._cache_hits = 0
        self._retries = 0
        self._rate_limited = 0
        self._fatal_count = 0
        self._recent_errors: deque[RowError] = deque(maxlen=RECENT_ERRORS)
        self._series: list[tuple[float, float, int]] = []
        self._completions: deque[float] = deque(maxlen=4096)
        self._active_s = 0.0
        self._phase_started: float | None = None
        self._version = 0
        self._totals = _Totals(self._price_of)
        self._tier = settings.service_tier
        self._capacity_since: float | None = None  # first flex refusal since flex last answered
        self._capacity_waits: dict[int, int] = {}
        self._capacity_refusals = 0
        self._carry: dict[int, tuple[Usage, float | None, str | None]] = {}  # a resent row's share of a pack
        self._edits: dict[int, dict[str, str]] = {}
        self._ended_at: float | None = None
        self._phase = 0
        # Endpoint health (see ENDPOINT_PROBE_MAX): row errors held back while the phase's first answers
        # come in, connection failures in a row, and since when nothing but refusals came back.
        self._probe_threshold = 2
        self._probe_open = True
        self._held: list[tuple[WorkItem, str, int]] = []
        self._endpoint_down = False
        self._unreachable = 0
        self._ever_ok = False
        self._last_ok_at: float | None = None
        self._trouble_since: float | None = None
        self._trouble_kind: str | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def _open(self) -> None:
        """Create the run in the store, or pick up where an earlier process left it."""
        if self.store.has_run(self.id):
            stored = {r.row_id: r for r in self.store.rows(self.id)}
            self._rows = stored
            self._edits = self.store.edits(self.id)
            for row in stored.values():
                self._totals.add(row)
        else:
            rows = []
            for row_id, cells in self.plan.inputs.items():
                item = self._items.get(row_id)
                status = "pending" if item else "skipped"
                rows.append(
                    (row_id, item.request_hash if item else None, item.body if item else None, cells, status)
                )
            self.store.create_run(self.id, dict(self.plan.meta), rows)
            for row_id in self.plan.inputs:
                item = self._items.get(row_id)
                if item:
                    self._rows[row_id] = RowRecord(row_id, request_hash=item.request_hash)
                else:
                    reason = self.plan.skipped.get(row_id, "Not sent.")
                    self._rows[row_id] = RowRecord(row_id, status="skipped", error=reason)
                    self.store.record(self.id, self._rows[row_id])
        self._totals.recount(self._rows.values())

    def start(self) -> Job:
        """Journal the run (or load it) and begin sending; returns at once."""
        self._open()
        retired = self._retired_model()
        if retired:  # nothing is sent: every row stays pending for a run on a current model
            with self._lock:
                self._set_status("failed", retired)
                self._ended_at = time.monotonic()
            try:
                self.store.set_run_status(self.id, "failed", retired, **self._totals.as_meta())
            except StoreError:
                pass
            self._done_event.set()
            return self
        pending_ids = {r for r, row in self._rows.items() if row.status == "pending" and r in self._items}
        packed: set[int] = set()
        for pack in self.plan.packs:  # a pack goes whole only if none of its rows was answered before
            ids = {m.row_id for m in pack.members}
            if ids <= pending_ids:
                self._queue.append(pack)  # type: ignore[arg-type]
                packed |= ids
        self._queue.extend(self._items[r] for r in sorted(pending_ids - packed))
        self._launch()
        return self

    def _model(self) -> str:
        model = self.plan.meta.get("model")
        if not model and self.plan.items:
            model = self.plan.items[0].body.get("model")
        return str(model or "")

    def _retired_model(self) -> str | None:
        """Why this run's model cannot run (shut down, by the endpoint's kept model list or the catalog)."""
        model = self._model()
        if not model:
            return None
        try:
            kept = self.store.models_listing(
                model_listing.endpoint_key(self.endpoint.base_url), model_listing.KEEP_S
            )
        except StoreError:
            kept = None
        listing = [ListedModel.from_json(m) for m in kept] if kept is not None else None
        status = retirement(model, listing=listing)
        if not status.retired:
            return None
        return (
            f"Stopped before sending anything: {status.words()} Choose another model and start again; "
            "every row is still pending."
        )

    def _shaper(self, model: str) -> shapes.Shaper:
        """The request shape for `model` at this run's endpoint: what servers taught, applied and learnt."""
        with self._lock:
            shaper = self._shapers.get(model)
            if shaper is not None:
                return shaper
            key = model_listing.endpoint_key(self.endpoint.base_url)
            try:
                known = shapes.Fixes.from_json(self.store.shape_fixes(key, model))
            except StoreError:
                known = shapes.Fixes()
            store = self.store

            def save(fixes: shapes.Fixes, note: str | None) -> None:
                store.save_shape_fixes(key, model, fixes.to_json(), note)

            shaper = shapes.Shaper(
                known, wanted_effort=self.plan.meta.get("reasoning_effort_wanted"), save=save
            )
            self._shapers[model] = shaper
            return shaper

    def _adjusted(self, note: str) -> None:
        with self._lock:
            if note not in self._adjustments:
                self._adjustments.append(note)
            self._version += 1

    def _launch(self) -> None:
        """Start a phase of work: worker threads plus a supervisor that settles the status when they stop."""
        with self._lock:
            self._phase += 1
            phase = self._phase
            self._halt.clear()
            self._done_event.clear()
            if not self._own_client and self.client.is_closed():  # closed by close(): resumed after all
                self.client = make_client(
                    self.endpoint,
                    timeout_s=self.settings.timeout_s,
                    connections=max(self.settings.workers, 8),
                )
                self._own_client = True
            if not self._queue and not self._delayed and not self._unsaved:
                self._set_status("finished", None)
                self._ended_at = time.monotonic()
                self._done_event.set()
                return
            self._set_status("running", None)
            if self._phase_started is None:
                self._phase_started = time.monotonic()
            todo = len(self._queue) + len(self._delayed)
            self._probe_threshold = max(2, min(self.settings.workers, ENDPOINT_PROBE_MAX, todo))
            self._probe_open = True
            self._endpoint_down = False
            self._unreachable = 0
            self._trouble_since = self._trouble_kind = None
            workers = [
                threading.Thread(target=self._worker, name=f"job-{self.id[:8]}-w{i}", daemon=True)
                for i in range(max(1, min(self.settings.workers, len(self._queue) + len(self._delayed) or 1)))
            ]
            self._threads = workers
        try:
            self.store.set_run_status(self.id, "running", None)  # History can then tell an interrupted run
        except StoreError:
            pass
        for t in workers:
            t.start()
        threading.Thread(
            target=self._supervise, args=(workers, phase), name=f"job-{self.id[:8]}-sup", daemon=True
        ).start()

    def _supervise(self, workers: list[threading.Thread], phase: int) -> None:
        while alive := [t for t in workers if t.is_alive()]:
            alive[0].join(0.25)
            self._check_patience()
        self._flush_held()  # the list ended before the first answers could tell the endpoint from the rows
        with self._lock:
            if phase != self._phase:
                return  # resumed meanwhile: the newer phase settles the status
            if self._phase_started is not None:
                self._active_s += time.monotonic() - self._phase_started
                self._phase_started = None
            if self.status == "running":
                if self._unsaved:
                    self._set_status("paused", self.message)
                elif self._queue or self._delayed:
                    self._set_status("paused", self.message or "Paused.")
                else:
                    self._set_status("finished", None)
            self._append_point(force=True)
            self._ended_at = time.monotonic()
        try:
            extra = {"adjusted": list(self._adjustments)} if self._adjustments else {}
            self.store.set_run_status(self.id, self.status, self.message, **self._totals.as_meta(), **extra)
        except StoreError:
            pass  # the status is a summary; rows themselves are what must not be lost
        self._done_event.set()

    def _check_patience(self) -> None:
        """Pause when nothing has succeeded for give_up_after_s while the server kept refusing."""
        limit = self.settings.give_up_after_s
        with self._lock:
            since, kind = self._trouble_since, self._trouble_kind
            if not limit or since is None or self.status != "running":
                return
            waited = time.monotonic() - since
            if waited < limit:
                return
            what = "answered 429 (rate limited)" if kind == "429" else "failed every request"
            self._set_status(
                "paused",
                f"Paused: nothing has succeeded for {_seconds(waited)}; the server at "
                f"{public_url(self.endpoint.base_url)} {what} all that time. The rows not done stay "
                "pending: resume when it answers again.",
            )
            self._halt.set()

    def _set_status(self, status: str, message: str | None) -> None:
        assert status in STATUSES
        self.status = status
        self.message = message
        self._version += 1

    def pause(self, message: str | None = None) -> None:
        """Stop sending new requests; answers already in flight are still recorded."""
        with self._lock:
            if self.status == "running":
                self._set_status("paused", message or "Paused.")
                self._halt.set()

    def use_endpoint(self, endpoint: Endpoint) -> None:
        """Send the rest of this run through `endpoint` (the connection the user shows now: a fixed URL or key).

        Only between phases: requests in flight finish on the connection they were sent on.
        """
        with self._lock:
            if endpoint == self.endpoint:
                return
            if self.status in ACTIVE and any(t.is_alive() for t in self._threads):
                raise RuntimeError("Pause the run before changing its connection.")
            self.endpoint = endpoint
            self._shapers = {}  # another endpoint: its own shapes
            self.governor = governor_for(endpoint.fingerprint)
            self.governor.set_ceilings(self.settings.rpm, self.settings.tpm)
            old, owned = self.client, self._own_client
            self.client = make_client(
                endpoint, timeout_s=self.settings.timeout_s, connections=max(self.settings.workers, 8)
            )
            self._own_client = True
        if owned:
            release_client(old)  # nothing is in flight on it: the workers have stopped

    def resume(self, *, budget_usd: float | None = None, endpoint: Endpoint | None = None) -> None:
        """Continue a paused, cancelled or stopped run (optionally with a higher budget, or through another
        connection once the endpoint or key is fixed). Returns at once."""
        with self._lock:
            if budget_usd is not None:
                self._budget = budget_usd
            if self.status not in ("paused", "cancelled", "failed"):
                return
            if endpoint is not None:
                self.use_endpoint(endpoint)
            old = list(self._threads)
            self._phase += 1  # the old phase's supervisor must not settle the status any more
            self._set_status("running", None)
            self._done_event.clear()
        threading.Thread(target=self._relaunch_after, args=(old,), daemon=True).start()

    def _relaunch_after(self, old: list[threading.Thread]) -> None:
        """Let the last phase's in-flight answers land, write what a failing disk held back, then go on."""
        for t in old:
            t.join()
        with self._lock:
            if self._unsaved and not self._flush_unsaved():
                self._done_event.set()
                return
        self._launch()

    def cancel(self) -> None:
        """Stop for good (resumable later from history): no new requests; in-flight answers are recorded."""
        with self._lock:
            if self.status in ("running", "paused", "pending"):
                self._set_status("cancelled", "Cancelled. Rows not yet sent stay pending and can be resumed.")
                self._halt.set()

    def _fail(self, message: str) -> None:
        with self._lock:
            if self.status == "running":
                self._set_status("failed", message)
                self._halt.set()

    def retry_failed(self, *, only_retryable: bool = False, endpoint: Endpoint | None = None) -> int:
        """Send the failed rows again (all, or only those whose failure may pass), through `endpoint` when
        given (the connection shown now). Returns how many, at once."""
        with self._lock:
            if endpoint is not None and not (
                self.status in ACTIVE and any(t.is_alive() for t in self._threads)
            ):
                self.use_endpoint(endpoint)
            rows = [
                r
                for r in self._rows.values()
                if r.status == "failed" and (r.retryable or not only_retryable) and r.row_id in self._items
            ]
            if not rows:
                return 0
            ids = [r.row_id for r in rows]
            self.store.reset_rows(self.id, ids)
            for r in rows:
                self._rows[r.row_id] = RowRecord(r.row_id, request_hash=r.request_hash, attempts=0)
                self._attempts.pop(r.row_id, None)
                self._rate_limit_retries.pop(r.row_id, None)
            self._totals.recount(self._rows.values())
            self._queue.extend(self._items[i] for i in sorted(ids))
            self._version += 1
            state = self.status
            busy = state == "running" and any(t.is_alive() for t in self._threads)
        if state in ("paused", "cancelled", "failed"):
            self.resume()
        elif not busy:  # a running phase's workers pick the rows up themselves
            self._launch()
        return len(ids)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current phase's workers have stopped. True if they have."""
        return self._done_event.wait(timeout)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE or not self._done_event.is_set()

    def close(self) -> None:
        """Give back the shared HTTP client (the registry does this when it forgets the job). Only once
        the workers have stopped; a later resume takes a client again."""
        with self._lock:  # held while releasing, so a resume cannot start on the client being closed
            if self.active or not self._own_client:
                return
            self._own_client = False
            release_client(self.client)

    # --- edits ------------------------------------------------------------------------------------

    def set_edits(self, edits: Mapping[int, Mapping[str, str]]) -> None:
        """The user's cell edits, {row_id: {column: value}}: kept on the job and journalled."""
        with self._lock:
            self._edits = {int(k): dict(v) for k, v in edits.items()}
            self._version += 1
        self.store.save_edits(self.id, self._edits)

    def edits(self) -> dict[int, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self._edits.items()}

    # --- reading ----------------------------------------------------------------------------------

    def rows(self) -> list[RowRecord]:
        with self._lock:
            return [r for _, r in sorted(self._rows.items())]  # records are frozen: no copies needed

    def snapshot(self) -> Snapshot:
        with self._lock:
            t = self._totals
            now = time.monotonic()
            elapsed = self._active_s + (now - self._phase_started if self._phase_started else 0.0)
            recent = [c for c in self._completions if now - c <= RATE_WINDOW_S]
            window = min(RATE_WINDOW_S, elapsed) if elapsed else 0.0
            rate = len(recent) / window if window > 0.5 else 0.0
            pending = t.pending
            return Snapshot(
                run_id=self.id,
                status=self.status,
                message=self.message,
                total=len(self._rows),
                succeeded=t.succeeded,
                failed=t.failed,
                skipped=t.skipped,
                pending=pending,
                in_flight=self._in_flight,
                flagged=t.flagged,
                prompt_tokens=t.usage.prompt_tokens,
                completion_tokens=t.usage.completion_tokens,
                cached_tokens=t.usage.cached_tokens,
                reasoning_tokens=t.usage.reasoning_tokens,
                cost_usd=t.cost,
                cost_known=self.plan.price is not None and t.unpriced == 0,
                budget_usd=self._budget,
                requests_sent=self._requests_sent,
                cache_hits=self._cache_hits,
                retries=self._retries,
                rate_limited=self._rate_limited,
                elapsed_s=elapsed,
                rows_per_s=rate,
                eta_s=(pending / rate) if rate > 0 and self.status == "running" else None,
                cost_series=tuple(self._series),
                recent_errors=tuple(self._recent_errors),
                version=self._version,
                **self._stall(now),
                cache_write_tokens=t.usage.cache_write_tokens,
                saved_by_caching_usd=t.saved,
                tier_rows={k: v for k, v in t.tier_rows.items() if v},
                tier_cost={k: v for k, v in t.tier_cost.items() if t.tier_rows.get(k)},
                service_tier=self._tier,
                capacity_refusals=self._capacity_refusals,
                adjustments=tuple(self._adjustments),
            )

    def _stall(self, now: float) -> dict:
        """Snapshot fields saying why nothing moves (held under the lock)."""
        if self._trouble_since is None or self.status != "running":
            return {}
        wait = self.governor.state().next_admission_s
        if not self._queue and self._delayed:
            wait = max(wait, self._delayed[0][0] - now)
        return {
            "stalled_s": now - self._trouble_since,
            "stall_kind": self._trouble_kind,
            "next_try_s": max(0.0, wait),
        }

    # --- the worker -------------------------------------------------------------------------------

    def _take(self) -> WorkItem | float | None:
        """The next item to send; seconds to wait when only backed-off items remain; None when done."""
        with self._lock:
            if self._halt.is_set():
                return None
            now = time.monotonic()
            if self._delayed and self._delayed[0][0] <= now:
                item = heapq.heappop(self._delayed)[2]
            elif self._queue:
                item = self._queue.popleft()
            elif self._delayed:
                return self._delayed[0][0] - now
            else:
                return None
            self._in_flight += 1
            return item

    def _give_back(self, item: WorkItem) -> None:
        with self._lock:
            self._queue.appendleft(item)

    def _retry_later(self, item: WorkItem, delay: float) -> None:
        """Back off without holding a worker: the item waits in a heap while workers send others."""
        with self._lock:
            self._retries += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._tiebreak), item))

    def _worker(self) -> None:
        while True:
            item = self._take()
            if item is None:
                return
            if isinstance(item, float):
                if self._halt.wait(min(item, 0.5)):
                    return
                continue
            try:
                self._process(item)
            except _Halt:
                self._give_back(item)
            except Exception as exc:  # a bug must cost one row, not the run
                self._finish(item, RowRecord(item.row_id, status="failed", error=f"Internal error: {exc!r}"))
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _process(self, item: WorkItem) -> None:
        """One attempt at one row: answered, failed, put back (halt) or queued to retry after a delay."""
        if isinstance(item, PackItem):
            self._process_pack(item)
            return
        while True:
            if self._answer_from_cache(item):
                return
            leader = self._claim_hash(item)
            if leader is None:
                break  # we are the one sender of this exact request
            # An identical request (a duplicate lead) is in flight: wait for its answer, then reuse it.
            while not leader.wait(0.2):
                if self._halt.is_set():
                    raise _Halt
        try:
            worst = self._reserve_budget(item)
            try:
                outcome = self._send_shaped(item)
                self._handle(item, outcome)
            finally:
                # Only now is the real cost counted: releasing the worst case earlier lets another
                # request slip under the budget in between.
                self._release_budget(worst)
        finally:
            self._release_hash(item)

    def _send_shaped(self, item: WorkItem | PackItem) -> _Outcome:
        """A governor slot and one send; a 400 that taught the model's request shape is sent again at once,
        corrected (not an attempt: a refused request is not billed). While no request in this shape has
        succeeded yet, requests go one at a time, so a refused parameter is refused once, not once a row."""
        shaper = self._shaper(str(item.body.get("model", "")))
        turn = shaper.turn(self._halt)
        if turn is None:
            raise _Halt
        try:
            for _ in range(shapes.MAX_FIXES_PER_REQUEST):
                if not self.governor.acquire(item.prompt_tokens + item.max_output_tokens, self._halt):
                    raise _Halt
                with self._lock:
                    self._requests_sent += 1
                outcome = self._send(item, shaper)
                if outcome.kind != "reshaped":
                    break
            else:
                outcome = _Outcome(
                    "fatal",
                    message=f"The server kept refusing this model's parameters: {'; '.join(self._adjustments)}",
                )
            if outcome.kind == "ok":
                shaper.confirm()
            return outcome
        finally:
            if turn:
                shaper.done()

    def _handle(self, item: WorkItem, outcome: _Outcome) -> None:
        if outcome.kind == "capacity":
            self._no_capacity(item)  # not an attempt: nothing was served or billed
            return
        attempts = self._attempts.get(item.row_id, self._rows[item.row_id].attempts) + 1
        self._attempts[item.row_id] = attempts
        if outcome.kind == "ok":
            self.governor.succeeded()
            self._note_ok()
            if outcome.tier == "flex":
                with self._lock:
                    self._capacity_since = None
            row = self._answered(item, outcome, attempts)
            # Refusals, filtered and unparseable answers are not cached: "retry" then really asks again.
            cacheable = row.status == "succeeded" and "invalid_output" not in row.flags
            self._finish(item, row, outcome.cache if cacheable else None)
            return
        self._note_error(item.row_id, outcome.message)
        if self._endpoint_down:  # answers still in flight when the run stopped: their rows stay pending
            self._give_back(item)
            return
        if outcome.unreachable:
            if self._unreachable_stop(item, outcome):
                return
        elif outcome.kind != "transient" or outcome.headers is not None:
            with self._lock:
                self._unreachable = 0  # an answer, even a bad one: something is there
        if outcome.kind in ("rate_limit", "transient"):
            self._note_trouble("429" if outcome.kind == "rate_limit" else "error")
        if outcome.kind == "rate_limit":
            with self._lock:
                self._rate_limited += 1
                limited = self._rate_limit_retries.get(item.row_id, 0) + 1
                self._rate_limit_retries[item.row_id] = limited
            wait = self.governor.rate_limited(outcome.headers)
            if limited >= MAX_RATE_LIMIT_RETRIES:
                self._finish(item, self._failed(item, outcome.message, True, attempts))
            else:
                self._retry_later(item, wait)
            return
        if outcome.kind != "transient":
            self.governor.succeeded()  # any answer but a 429 or a server error: the key works
        if outcome.kind == "quota":
            self.pause(outcome.message)
            raise _Halt
        if outcome.kind == "fatal":
            self._fail(outcome.message)
            raise _Halt
        transient_attempts = attempts - self._rate_limit_retries.get(item.row_id, 0)
        if outcome.kind == "row" and self._hold(item, outcome.message or "", attempts):
            return
        if outcome.kind == "row" or transient_attempts >= self.settings.max_attempts:
            self._finish(item, self._failed(item, outcome.message, outcome.kind != "row", attempts))
            return
        self._retry_later(item, self.governor.server_error(transient_attempts))

    # --- endpoint health --------------------------------------------------------------------------

    def _note_ok(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._ever_ok = True
            self._last_ok_at = now
            self._trouble_since = self._trouble_kind = None
            self._unreachable = 0
            opened = self._probe_open
            self._probe_open = False
        if opened:
            self._flush_held()

    def _note_trouble(self, kind: str) -> None:
        with self._lock:
            if self._trouble_since is None:
                self._trouble_since = time.monotonic()
            if self._trouble_kind != "429":  # a 429 among failures is the more useful thing to say
                self._trouble_kind = kind

    def _hold(self, item: WorkItem, message: str, attempts: int) -> bool:
        """While a phase's first answers come in, hold a row error back; True if held (or stopped on)."""
        with self._lock:
            if not self._probe_open:
                return False
            self._held.append((item, message, attempts))
            if any(m != message for _, m, _ in self._held):
                self._probe_open = False  # errors that differ are about rows: fail them as usual
            elif len(self._held) >= self._probe_threshold:
                self._probe_open = False
                count = len(self._held)
                self._stop_for_endpoint(
                    f"Stopped: the first {count} answers from {public_url(self.endpoint.base_url)} were all "
                    f"the same error, so the problem is the endpoint or its settings, not the rows. "
                    f"{message} Fix that and resume: the rows stay pending.",
                    failed=True,
                )
                return True
            else:
                return True
        self._flush_held()
        return True

    def _flush_held(self) -> None:
        """Fail the held rows as the errors they got (or give them back when the endpoint stopped the run)."""
        with self._lock:
            held, self._held = self._held, []
            down = self._endpoint_down
        for item, message, attempts in held:
            if down:
                self._give_back(item)
            else:
                self._finish(item, self._failed(item, message, False, attempts))

    def _unreachable_stop(self, item: WorkItem, outcome: _Outcome) -> bool:
        """Count a refused/DNS/TLS failure; True (the row given back) when they show nothing is there."""
        with self._lock:
            self._unreachable += 1
            enough = self._unreachable >= max(UNREACHABLE_MIN, min(self.settings.workers, 20))
            if self._ever_ok and self._last_ok_at is not None:
                enough = enough and time.monotonic() - self._last_ok_at >= UNREACHABLE_AFTER_OK_S
            if not enough:
                return False
            self._stop_for_endpoint(
                f"Stopped: the API at {public_url(self.endpoint.base_url)} cannot be reached. "
                f"{outcome.message} Check the base URL (OPENAI_BASE_URL or the sidebar) and that the server "
                "is running, then resume: the rows not sent stay pending.",
                failed=not self._ever_ok,
            )
        self._give_back(item)
        return True

    def _stop_for_endpoint(self, message: str, *, failed: bool) -> None:
        """Stop sending: held and in-flight rows go back to pending (called under the lock)."""
        if self.status != "running":
            return
        self._endpoint_down = True
        self._set_status("failed" if failed else "paused", message)
        self._halt.set()
        held, self._held = self._held, []
        for held_item, _, _ in held:
            self._queue.appendleft(held_item)

    def _no_capacity(self, item: WorkItem) -> None:
        """Flex had no capacity: back this row off; past the patience (with fallback) go on at the default tier."""
        now = time.monotonic()
        with self._lock:
            self._capacity_refusals += 1
            self._version += 1
            if self._capacity_since is None:
                self._capacity_since = now
            waited = now - self._capacity_since
            n = self._capacity_waits[item.row_id] = self._capacity_waits.get(item.row_id, 0) + 1
            fall_back = self.settings.flex_fallback and self._tier == "flex"
            if fall_back and waited >= self.settings.flex_patience_s:
                self._tier = "default"
                self._note_error(
                    item.row_id,
                    f"No flex capacity for {_seconds(waited)}: the rest of the run goes at the standard price.",
                )
                delay = 0.0
            else:
                delay = min(CAPACITY_MAX_BACKOFF_S, CAPACITY_FIRST_BACKOFF_S * 2 ** min(n - 1, 10))
                delay *= 0.5 + random.random()  # rows refused together must not come back together
        self._retry_later(item, delay)

    def _price_of(self, tier: str | None) -> Price | None:
        """The price of an answer served at `tier` (the response's word), from the plan's tier prices."""
        tier = tier or "default"
        if tier in self.plan.tier_prices:
            return self.plan.tier_prices[tier]
        if tier == "default":
            return self.plan.price
        if tier == "flex" and self.plan.price is not None and not self.plan.tier_prices:
            return self.plan.price.scaled(0.5)  # a plan built without tier prices: flex bills at batch rates
        return None

    def _worst_price(self) -> Price | None:
        """The dearest price an answer of this run may be billed at now (for the budget's worst case)."""
        tiers = {self._tier, "default"} if self._tier != "auto" else {*TIERS}
        prices = [p for p in (self._price_of(t) for t in tiers) if p is not None]
        if not prices:
            return None
        return max(prices, key=lambda p: (p.input, p.output, p.cache_write or 0.0))

    def _timeout_setting(self) -> float:
        return (
            max(self.settings.timeout_s, FLEX_TIMEOUT_S) if self._tier == "flex" else self.settings.timeout_s
        )

    def _timeout(self, row_id: int | None = None) -> float:
        """Per-request timeout: the setting, or far less once answers show how long they really take.

        A hung request then holds a worker for little longer than a real answer could take, not the setting.
        """
        if self._tier == "flex":
            return self._timeout_setting()  # flex queues requests for minutes: answer times say little
        base = self._base_timeout()
        timeouts = self._row_timeouts.get(row_id, 0) if row_id is not None else 0
        return min(self.settings.timeout_s, base * 2**timeouts) if timeouts else base

    def _base_timeout(self) -> float:
        with self._lock:
            n = len(self._latencies)
            if n == 0:
                return self.settings.timeout_s
            if n < ADAPTIVE_MIN_SAMPLES:
                value = max(ADAPTIVE_FIRST_FLOOR_S, ADAPTIVE_FIRST_MULTIPLE * max(self._latencies))
                return min(self.settings.timeout_s, value)
            bucket = self._latency_samples // 25  # recompute every 25 answers
            if self._timeout_cache is None or self._timeout_cache[0] != bucket:
                self._timeout_cache = (bucket, adaptive_timeout(self._latencies, self.settings.timeout_s))
            return self._timeout_cache[1]

    def _claim_hash(self, item: WorkItem) -> threading.Event | None:
        """Become the one sender of this exact request, or get the event of the worker that is."""
        with self._lock:
            event = self._inflight_hashes.get(item.request_hash)
            if event is not None:
                return event
            self._inflight_hashes[item.request_hash] = threading.Event()
            return None

    def _release_hash(self, item: WorkItem) -> None:
        with self._lock:
            event = self._inflight_hashes.pop(item.request_hash, None)
        if event is not None:
            event.set()

    def _answer_from_cache(self, item: WorkItem) -> bool:
        cached = self.store.cached(item.request_hash)
        if cached is None:
            return False
        with self._lock:
            self._cache_hits += 1
        row = self._answered(
            item, _Outcome("ok", text=cached.text, finish=cached.finish_reason, usage=cached.usage), 0
        )
        self._finish(item, replace(row, from_cache=True))
        return True

    def _reserve_budget(self, item: WorkItem) -> float:
        """Hold the worst-case cost of this request against the budget; pause instead if it would cross it."""
        price = self._worst_price()
        if self._budget is None or price is None:
            return 0.0
        worst = cost(Usage(item.prompt_tokens, item.max_output_tokens), price) or 0.0
        with self._lock:
            if self._totals.cost + self._reserved + worst > self._budget + 1e-12:
                self._set_status(
                    "paused",
                    f"Budget reached: the next request could cost up to {format_usd(worst)}, which would take the "
                    f"run past its {format_usd(self._budget)} budget. Raise the budget to continue.",
                )
                self._halt.set()
                raise _Halt
            self._reserved += worst
        return worst

    def _release_budget(self, worst: float) -> None:
        if worst:
            with self._lock:
                self._reserved -= worst

    def _send(self, item: WorkItem | PackItem, shaper: shapes.Shaper) -> _Outcome:
        timeout = self._timeout(item.row_id)
        tier = self._tier
        body = shaper.apply(item.body)
        if tier != "default":
            body["service_tier"] = tier
        sent_at = time.monotonic()
        try:
            # The SDK's documented raw call for a body we built ourselves: its auth, base URL, HTTP stack and
            # error classes, without re-walking the body through its TypedDict transforms (~30% of client CPU).
            raw = self.client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body=body,
                options={"headers": {"X-Row-Id": str(item.row_id)}, "timeout": timeout},
            )
        except openai.APIStatusError as exc:
            headers = exc.response.headers if exc.response is not None else None
            self.governor.observe(headers)
            if exc.status_code in (400, 422):
                code, _, param, said = errors.error_fields(exc.body, getattr(exc, "message", "") or "")
                note = shaper.learn(exc.status_code, code, param, said, body)
                if note:
                    self.governor.succeeded()  # the key works: only the request's shape was wrong
                    self._adjusted(note)
                    return _Outcome("reshaped", message=note)
            kind, message = errors.classify_status(
                exc, model=item.body.get("model", ""), secrets=(self.endpoint.api_key,)
            )
            return _Outcome(kind, message=message, headers=headers)
        except openai.APITimeoutError:
            self.governor.observe(None)
            with self._lock:
                self._row_timeouts[item.row_id] = self._row_timeouts.get(item.row_id, 0) + 1
            return _Outcome("transient", message=f"No answer within {_seconds(timeout)} (timed out).")
        except openai.APIConnectionError as exc:
            self.governor.observe(None)
            why = errors.connection_kind(exc)
            return _Outcome(
                "transient",
                message=errors.connection_message(exc),
                unreachable=why if why in ("refused", "dns", "tls", "url") else None,
            )
        self.governor.observe(raw.headers)
        with self._lock:
            self._latencies.append(time.monotonic() - sent_at)
            self._latency_samples += 1
        try:
            data = json.loads(raw.content)
            choice = data["choices"][0]
            message = choice.get("message") or {}
            usage = Usage.from_api(data.get("usage"))
            served = data.get("service_tier") or ("default" if tier == "auto" else tier)
        except (ValueError, KeyError, IndexError, TypeError):
            return _Outcome("transient", message="The API sent an unreadable answer (broken JSON).")
        # The row's latency: sent (the governor's wait is over by now) to parsed response.
        latency = time.monotonic() - sent_at
        cache = CachedResponse(
            item.request_hash, data.get("id"), message.get("content"), choice.get("finish_reason"), usage
        )
        return _Outcome(
            "ok",
            text=message.get("content"),
            refusal=refusal_of(message),
            finish=choice.get("finish_reason"),
            usage=usage,
            cache=cache,
            tier=str(served),
            latency_s=latency,
        )

    def _answered(self, item: WorkItem, outcome: _Outcome, attempts: int) -> RowRecord:
        return judge_answer(
            item,
            text=outcome.text,
            refusal=outcome.refusal,
            finish=outcome.finish,
            usage=outcome.usage or Usage(),
            price=self._price_of(outcome.tier),
            check_output=self.plan.check_output,
            attempts=attempts,
            tier=outcome.tier,
            check_quality=self.plan.check_quality,
            latency_s=outcome.latency_s,
        )

    def _failed(self, item: WorkItem, message: str, retryable: bool, attempts: int) -> RowRecord:
        return RowRecord(
            item.row_id,
            status="failed",
            error=message,
            retryable=retryable,
            attempts=attempts,
            request_hash=item.request_hash,
        )

    def _finish(self, item: WorkItem, row: RowRecord, cache: CachedResponse | None = None) -> None:
        """Journal a row's outcome; only then does it count. A store failure pauses the run, keeping the answer."""
        if self._carry:
            row = self._with_carry(row)
        try:
            self.store.record(self.id, row, cache=cache)
        except StoreError as exc:
            with self._lock:
                self._unsaved.append((row, cache))
                self._note_error(item.row_id, str(exc))
                if self.status == "running":
                    self._set_status("paused", str(exc))
                    self._halt.set()
            return
        self._count(row)

    def _count(self, row: RowRecord) -> None:
        with self._lock:
            old = self._rows.get(row.row_id)
            if old is not None:
                self._totals.remove(old)
            self._rows[row.row_id] = row
            self._totals.add(row)
            self._completions.append(time.monotonic())
            if row.status == "failed" and row.error:
                self._note_error(row.row_id, row.error)
            self._version += 1
            self._append_point()

    def _flush_unsaved(self) -> bool:
        """Write answers a failing disk kept from the journal; False (still paused) if it still fails."""
        while self._unsaved:
            row, cache = self._unsaved[0]
            try:
                self.store.record(self.id, row, cache=cache)
            except StoreError as exc:
                self._set_status("paused", str(exc))
                return False
            self._unsaved.pop(0)
            self._count(row)
        return True

    def _note_error(self, row_id: int, message: str | None) -> None:
        if message:
            with self._lock:
                if not self._recent_errors or self._recent_errors[-1].message != message:
                    self._recent_errors.append(RowError(row_id, message, time.time()))
                self._version += 1

    def _append_point(self, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = self._active_s + (now - self._phase_started if self._phase_started else 0.0)
        point = (
            round(elapsed, 3),
            self._totals.cost,
            self._totals.usage.prompt_tokens + self._totals.usage.completion_tokens,
        )
        if force or not self._series or elapsed - self._series[-1][0] >= SERIES_EVERY_S:
            self._series.append(point)
            if len(self._series) > 4000:  # keep memory bounded on very long runs: drop every other point
                self._series = self._series[::2] + [point]
        else:
            self._series[-1] = point


@dataclass
class _Outcome:
    kind: str  # ok | rate_limit | capacity | quota | fatal | row | transient | reshaped
    text: str | None = None
    refusal: str | None = None
    finish: str | None = None
    usage: Usage | None = None
    message: str | None = None
    headers: Mapping[str, str] | None = None
    cache: CachedResponse | None = None
    unreachable: str | None = None  # refused | dns | tls | url: the endpoint is not there as configured
    tier: str | None = None  # the service tier the response says served it
    latency_s: float | None = None  # sent to parsed response, for an answer


class _Totals:
    """Counters over row records, updated incrementally as rows change."""

    def __init__(self, price_of: Callable[[str | None], Price | None] | None = None) -> None:
        self.price_of = price_of
        self._reset()

    def _reset(self) -> None:
        self.succeeded = self.failed = self.skipped = self.pending = self.flagged = 0
        self.usage = Usage()
        self.cost = 0.0
        self.saved = 0.0
        self.unpriced = 0  # billed rows with no price (a tier the price table lacks): the total is short
        self.tier_rows: dict[str, int] = {}
        self.tier_cost: dict[str, float] = {}

    def _apply(self, row: RowRecord, sign: int) -> None:
        if row.status == "succeeded":
            self.succeeded += sign
        elif row.status == "failed":
            self.failed += sign
        elif row.status == "skipped":
            self.skipped += sign
        else:
            self.pending += sign
        if row.flags and row.status == "succeeded":
            self.flagged += sign
        if not row.from_cache:  # an answer reused from the cache was paid for once, by the run that sent it
            u = row.usage
            self.usage = Usage(
                self.usage.prompt_tokens + sign * u.prompt_tokens,
                self.usage.completion_tokens + sign * u.completion_tokens,
                self.usage.cached_tokens + sign * u.cached_tokens,
                self.usage.reasoning_tokens + sign * u.reasoning_tokens,
                self.usage.cache_write_tokens + sign * u.cache_write_tokens,
            )
            self.cost += sign * (row.cost_usd or 0.0)
            if row.cost_usd is None and (u.prompt_tokens or u.completion_tokens):
                self.unpriced += sign
            if row.service_tier:
                tier = row.service_tier
                self.tier_rows[tier] = self.tier_rows.get(tier, 0) + sign
                self.tier_cost[tier] = self.tier_cost.get(tier, 0.0) + sign * (row.cost_usd or 0.0)
            if self.price_of is not None and (u.cached_tokens or u.cache_write_tokens):
                self.saved += sign * (caching_saved(u, self.price_of(row.service_tier)) or 0.0)

    def add(self, row: RowRecord) -> None:
        self._apply(row, 1)

    def remove(self, row: RowRecord) -> None:
        self._apply(row, -1)

    def recount(self, rows: Iterable[RowRecord]) -> None:
        self._reset()
        for row in rows:
            self.add(row)

    def as_meta(self) -> dict:
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "pending": self.pending,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": self.cost,
            "service_tiers": {k: v for k, v in self.tier_rows.items() if v},
            "saved_by_caching_usd": self.saved,
        }


# --- the process-wide registry of jobs, so a refreshed page or a second tab re-attaches ---------------

_jobs: dict[str, Job] = {}
_jobs_lock = threading.Lock()


def start(
    plan: RunPlan,
    *,
    endpoint: Endpoint,
    settings: RunSettings,
    store: Store,
    governor: Governor | None = None,
) -> Job:
    """Start (or resume) a run and return its Job at once. Starting a run id that is already active returns it."""
    job, created = register(
        plan.run_id, lambda: Job(plan, endpoint=endpoint, settings=settings, store=store, governor=governor)
    )
    return job.start() if created else job


def register(run_id: str, make: Callable[[], Job]) -> tuple[Job, bool]:
    """(the active job of a run, False), or (a new one from `make`, now registered, True).

    One job per run id, so a double-clicked Start makes one run; only the caller that got True starts it.
    Both modes (live Jobs, batch BatchJobs) register here, so a page re-attaches to either by run id.
    """
    forget_finished()
    with _jobs_lock:
        existing = _jobs.get(run_id)
        if existing is not None and existing.active:
            return existing, False
        job = _jobs[run_id] = make()
    if existing is not None:
        _close(existing)  # replaced by a new job for the same run (continued on another connection)
    return job, True


def get_job(run_id: str) -> Job | None:
    with _jobs_lock:
        return _jobs.get(run_id)


def forget_finished(older_than_s: float = 3600.0) -> None:
    """Drop jobs that ended over an hour ago from the registry (their results stay in the store), and
    close them: their HTTP clients, and with them a key typed in the app, go too.

    The registry is shared by every browser session of the server: without this it grows forever.
    """
    dropped = []
    with _jobs_lock:
        for run_id, job in list(_jobs.items()):
            ended = job._ended_at
            if not job.active and ended is not None and time.monotonic() - ended > older_than_s:
                dropped.append(_jobs.pop(run_id))
    for job in dropped:
        _close(job)


def _close(job) -> None:
    close = getattr(job, "close", None)  # live, batch and web jobs all have one
    if close is not None:
        close()
