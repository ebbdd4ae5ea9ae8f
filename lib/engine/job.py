"""The live run: one prompt over many rows in background threads, each unit of work through the stages.

A worker takes a unit (a row, or a pack of rows; lib.engine.unit) and passes it along: the paid-answer
cache (an answer bought before is reused, and identical requests in flight wait for the one sender) ->
admission (the budget's reservation, the request shape's turn, the key's governor; lib.engine.admission)
-> transport (one request, parsed into a typed Outcome; lib.engine.transports) -> policy (a pure decision:
accept, retry after a delay, fail the row, hold, resend reshaped, pause or stop; lib.engine.policy) ->
judge (each row's record, packed or not; lib.engine.judge) -> journal (the store, before it counts;
lib.engine.journal). A failed row is a result with an error, never an exception that ends the run.
Statuses, phases, pause / resume / cancel come from the job core (lib.jobs); pages and the command line
read `snapshot()`, an immutable copy. lib.engine.resume.continue_run is the one way a stopped run goes on.

One piece past 600 lines on purpose: the stages are modules, but carrying out their decisions (queueing a
retry, journalling then counting, holding a reservation until the real cost is in, moving to another
endpoint between phases) works on one lock's state, whose invariants (every row in exactly one state, the
budget never crossed, nothing paid twice) would be spread over several files if this were cut further.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import deque
from collections.abc import Hashable, Mapping

import openai

from lib.engine import transports
from lib.engine.admission import Budget, RunPrices, Shapes
from lib.engine.client import Endpoint, make_client, release_client
from lib.engine.governor import Governor, governor_for
from lib.engine.health import EndpointHealth
from lib.engine.journal import Journal
from lib.engine.judge import Judge
from lib.engine.outcome import Outcome, OutcomeKind
from lib.engine.policy import Act, Decision, RunState, Tries, decide, transient_attempts
from lib.engine.settings import RowError, RunPlan, RunSettings, Snapshot, public_url
from lib.engine.timeouts import Timeouts
from lib.engine.unit import PackItem, Unit, UnitQueue, WorkItem
from lib.jobs import RESUMABLE, Status, Tally
from lib.jobs import Job as BaseJob
from lib.models import ListedModel, retirement, shapes
from lib.models import listing as model_listing
from lib.store import CachedResponse, RowRecord, Store, StoreError

SERIES_EVERY_S = 0.25  # at most one cost-chart point per this many seconds
RATE_WINDOW_S = 10.0
RECENT_ERRORS = 20
ACCEPT = Decision(Act.ACCEPT)


class _Halt(Exception):
    """Internal: the job was paused, cancelled or stopped while this unit waited; it goes back to the queue."""


class Job(BaseJob):
    """One live run. Thread-safe; its worker threads never touch any UI."""

    kind = "live"

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
        super().__init__(plan.run_id)
        self.plan = plan
        self.settings = settings
        self.store = store
        self.prices = RunPrices(plan.price, plan.tier_prices)
        self.judge = Judge(self.prices, plan.check_output, plan.check_quality)
        self.journal = Journal(store, self.id)
        self.tally = Tally(self.prices.of)
        self.budget = Budget(settings.budget_usd)
        self.timeouts = Timeouts(settings.timeout_s)
        self.health = EndpointHealth()
        self.units = UnitQueue()
        self._items = {item.row_id: item for item in plan.items}
        self._packs = plan.packs
        self._rows: dict[int, RowRecord] = {}
        self._edits: dict[int, dict[str, str]] = {}
        self._tries: dict[Hashable, Tries] = {}  # only units that were tried and are not done yet
        self._inflight_hashes: dict[str, threading.Event] = {}
        self._in_flight = 0
        self._requests_sent = self._cache_hits = self._retries = self._rate_limited = 0
        self._capacity_refusals = 0
        self._capacity_since: float | None = None  # first flex refusal since flex last answered
        self._tier = settings.service_tier
        self._recent_errors: deque[RowError] = deque(maxlen=RECENT_ERRORS)
        self._series: list[tuple[float, float, int]] = []
        self._completions: deque[float] = deque(maxlen=4096)
        self._adjustments: list[str] = []
        self._next_endpoint: Endpoint | None = None  # a continue through another connection: next phase
        self._retry: bool | None = None  # failed rows to send again at the next phase (only retryable?)
        self.client: openai.OpenAI | None = None
        self._own_client = self._released = False
        self._connect(endpoint, governor, client)

    def _connect(
        self, endpoint: Endpoint, governor: Governor | None = None, client: openai.OpenAI | None = None
    ) -> None:
        """Send through `endpoint`: its client, its key's governor, its shapes, the run's transport."""
        self.endpoint = endpoint
        self.governor = governor or governor_for(endpoint.fingerprint)
        self.governor.set_ceilings(self.settings.rpm, self.settings.tpm)
        old, holding = self.client, self._own_client and not self._released
        self._own_client = client is None  # from make_client: given back by close() or a move
        self._released = False
        self.client = client or make_client(
            endpoint, timeout_s=self.settings.timeout_s, connections=max(self.settings.workers, 8)
        )
        if holding and old is not None:
            release_client(old)  # the one held before (between phases: nothing is in flight on it)
        self.transport = transports.make(self.settings.transport, self.client, secrets=(endpoint.api_key,))
        self.shapes = Shapes(
            self.store,
            endpoint.base_url,
            wanted_effort=self.plan.meta.get("reasoning_effort_wanted"),
            noted=self._adjusted,
        )

    # --- opening the run ----------------------------------------------------------------------------

    def _open(self) -> None:
        """Create the run in the store, or pick up where an earlier process left it."""
        if self.store.has_run(self.id):
            self._rows = {r.row_id: r for r in self.store.rows(self.id)}
            self._edits = self.store.edits(self.id)
            meta = self.store.run(self.id).meta
            self.tally.estimated = float(meta.get("estimated_usd") or 0.0)  # what may have been billed before
        else:
            rows = []
            for row_id, cells in self.plan.inputs.items():
                item = self._items.get(row_id)
                status = "pending" if item else "skipped"
                rows.append(
                    (row_id, item.request_hash if item else None, item.body if item else None, cells, status)
                )
            meta = dict(self.plan.meta)
            meta["run_settings"] = dataclasses.asdict(self.settings)  # a continue reads them back
            self.store.create_run(self.id, meta, rows)
            for row_id in self.plan.inputs:
                item = self._items.get(row_id)
                if item:
                    self._rows[row_id] = RowRecord(row_id, request_hash=item.request_hash)
                else:
                    reason = self.plan.skipped.get(row_id, "Not sent.")
                    self._rows[row_id] = RowRecord(row_id, status="skipped", error=reason)
                    self.store.record(self.id, self._rows[row_id])
        self.tally.recount(self._rows.values())

    def start(self, *, retry_failed: bool = False, only_retryable: bool = False) -> Job:
        """Journal the run (or load it) and begin sending; returns at once. `retry_failed`: rows that failed
        in an earlier process are sent again too."""
        self._open()
        retired = self._retired_model()
        if retired:  # nothing is sent: every row stays pending for a run on a current model
            with self._lock:
                self._change(Status.FAILED, retired)
                self._ended_at = time.monotonic()
            self._settled()
            return self
        with self._lock:
            if retry_failed:
                self._reset_failed(only_retryable)
            self._queue_pending()
        self._launch()
        return self

    def _queue_pending(self) -> None:
        """Queue every pending row (under the lock): packs go whole only if none of their rows was answered."""
        pending = {r for r, row in self._rows.items() if row.status == "pending" and r in self._items}
        packed: set[int] = set()
        for pack in self._packs:
            ids = set(pack.row_ids)
            if ids <= pending:
                self.units.extend((pack,))
                packed |= ids
        self.units.extend(self._items[r] for r in sorted(pending - packed))

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

    def _adjusted(self, note: str) -> None:
        with self._lock:
            if note not in self._adjustments:
                self._adjustments.append(note)
            self._version += 1

    # --- the job core's hooks -----------------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(len(self.units) or self.journal.holding)

    def _worker_count(self) -> int:
        return min(self.settings.workers, len(self.units) or 1)

    def _phase_starting(self) -> None:
        with self._lock:
            self.health.new_phase(self.settings.workers, len(self.units))
            if self._released:  # closed when the registry forgot it, and going on after all
                self._connect(self.endpoint, self.governor)
        try:
            self.store.set_run_status(self.id, "running", None)  # History can then tell an interrupted run
        except StoreError:
            pass

    def _tick(self) -> None:
        """Pause when nothing has succeeded for give_up_after_s while the server kept refusing."""
        limit = self.settings.give_up_after_s
        with self._lock:
            since, kind = self.health.trouble_since, self.health.trouble_kind
            if not limit or since is None or self.status is not Status.RUNNING:
                return
            waited = time.monotonic() - since
            if waited < limit:
                return
            what = "answered 429 (rate limited)" if kind == "429" else "failed every request"
            self._stop(
                Status.PAUSED,
                f"Paused: nothing has succeeded for {_seconds(waited)}; the server at "
                f"{public_url(self.endpoint.base_url)} {what} all that time. The rows not done stay "
                "pending: resume when it answers again.",
            )

    def _phase_over(self) -> None:
        self._flush_held()  # the list ended before the first answers could tell the endpoint from the rows

    def _settle(self) -> tuple[Status, str | None]:
        if self.journal.holding:
            return Status.PAUSED, self.message
        if len(self.units):
            return Status.PAUSED, self.message or "Paused."
        return Status.FINISHED, None

    def _settled(self) -> None:
        with self._lock:
            self._append_point(force=True)
            status, message = self.status, self.message
            extra = {"adjusted": list(self._adjustments)} if self._adjustments else {}
            totals = self.tally.as_meta()
        try:
            self.store.set_run_status(self.id, status, message, **totals, **extra)
        except StoreError:
            pass  # the status is a summary; rows themselves are what must not be lost

    def _before_relaunch(self) -> bool:
        """Once the last phase's answers landed: write what a failing disk held back, move to the connection
        shown now, queue failed rows asked for again. False (paused) when the disk still fails."""
        written, problem = self.journal.flush()
        for row in written:
            self._count(row)
        with self._lock:
            if problem is not None:
                self._change(Status.PAUSED, problem)
                return False
            try:
                if self._next_endpoint is not None:
                    self._move_to(self._next_endpoint)
                if self._retry is not None:
                    self._reset_failed(self._retry)
            except StoreError as exc:
                self._change(Status.PAUSED, str(exc))
                return False
            finally:
                self._next_endpoint = self._retry = None
            if not len(self.units):
                self._queue_pending()  # rows a stopped phase left pending (given back, or a new process)
        return True

    def _budget(self, budget_usd: float | None) -> None:
        self._take_settings(None, budget_usd)

    def close(self) -> None:
        """Give back the shared HTTP client (the registry does this when it forgets or replaces the job).
        Only once the workers have stopped; a later continue takes a client again."""
        with self._lock:  # held while releasing, so a resume cannot start on the client being closed
            if self.active or not self._own_client or self._released:
                return
            self._released = True
            release_client(self.client)

    def _cancel_message(self) -> str:
        return "Cancelled. Rows not yet sent stay pending and can be resumed."

    # --- going on -----------------------------------------------------------------------------------

    def resume(self, *, budget_usd: float | None = None) -> None:
        """Go on after a pause, a cancel or a stop (with a new budget if given). Returns at once."""
        self.go_on(budget_usd=budget_usd)

    def retry_failed(self, *, only_retryable: bool = False) -> int:
        """Send the failed rows again (all, or only those whose failure may pass). Returns how many."""
        return self.go_on(retry_failed=True, only_retryable=only_retryable)

    def go_on(
        self,
        *,
        endpoint: Endpoint | None = None,
        settings: RunSettings | None = None,
        budget_usd: float | None = None,
        retry_failed: bool = False,
        only_retryable: bool = False,
    ) -> int:
        """Go on from wherever the run stopped (lib.engine.resume.continue_run calls this): with these settings
        or budget, through `endpoint` (answers still in flight land on the connection they went out on; the
        next phase sends through the new one, and caches its answers under it), with the failed rows too.
        Answers a failing disk held back are written first. Returns how many failed rows go again; at once."""
        with self._lock:
            self._take_settings(settings, budget_usd)
            if endpoint is not None and endpoint != self.endpoint:
                self._next_endpoint = endpoint
            failed = self._failed_ids(only_retryable) if retry_failed else []
            if self.status is Status.RUNNING:  # its workers pick the failed rows up
                if failed:
                    self._reset_failed(only_retryable)
                return len(failed)
            if self.status is Status.PENDING or (self.status is Status.FINISHED and not failed):
                return 0
            if self.status not in RESUMABLE and self.status is not Status.FINISHED:
                return 0
            self._retry = only_retryable if failed else None
            old = list(self._threads)
            self._phase += 1  # the old phase's supervisor must not settle the status any more
            phase = self._phase
            self._change(Status.RUNNING, None)
            self._done.clear()
        threading.Thread(target=self._relaunch_after, args=(old, phase), daemon=True).start()
        return len(failed)

    def _take_settings(self, settings: RunSettings | None, budget_usd: float | None) -> None:
        """Under the lock: the run's settings from now on (a raised budget, ceilings, tier...)."""
        if settings is None and budget_usd is None:
            return
        new = settings or self.settings
        if budget_usd is not None:
            new = dataclasses.replace(new, budget_usd=budget_usd)
        old, self.settings = self.settings, new
        self.budget.limit_usd = new.budget_usd
        self.timeouts.setting_s = new.timeout_s
        if (new.rpm, new.tpm) != (old.rpm, old.tpm):
            self.governor.set_ceilings(new.rpm, new.tpm)
        if new.service_tier != old.service_tier:
            self._tier = new.service_tier
        if new.transport != old.transport:
            self.transport = transports.make(new.transport, self.client, secrets=(self.endpoint.api_key,))
        self._version += 1
        try:
            self.store.update_run_meta(self.id, run_settings=dataclasses.asdict(new))
        except (StoreError, KeyError):
            pass  # kept in memory; a later continue in this process reads it from the job

    def _move_to(self, endpoint: Endpoint) -> None:
        """Under the lock, between phases: the rest of the run goes through `endpoint`; the rows not answered
        are keyed for it, so the paid-answer cache keeps each answer under the endpoint it came from."""
        self._connect(endpoint)
        base = endpoint.base_url
        done = {r for r, row in self._rows.items() if row.status in ("succeeded", "skipped")}
        self._items = {r: (i if r in done else i.at(base)) for r, i in self._items.items()}
        self._packs = tuple(p.at(base) for p in self._packs)
        self.units.rekey(lambda u: u.at(base))
        self.plan = dataclasses.replace(self.plan, meta={**self.plan.meta, "base_url": base})
        if base != self.store.run(self.id).meta.get("base_url"):
            self.store.update_run_meta(self.id, base_url=base)

    def _failed_ids(self, only_retryable: bool) -> list[int]:
        return sorted(
            r.row_id
            for r in self._rows.values()
            if r.status == "failed" and (r.retryable or not only_retryable) and r.row_id in self._items
        )

    def _reset_failed(self, only_retryable: bool) -> None:
        """Under the lock: the failed rows pending again, in the store and in the queue."""
        ids = self._failed_ids(only_retryable)
        if not ids:
            return
        self.store.reset_rows(self.id, ids)
        for row_id in ids:
            old = self._rows[row_id]
            new = RowRecord(row_id, request_hash=self._items[row_id].request_hash, attempts=0)
            self.tally.replace(old, new)
            self._rows[row_id] = new
            self._tries.pop(row_id, None)
        self.units.extend(self._items[i] for i in ids)
        self._version += 1

    # --- edits --------------------------------------------------------------------------------------

    def set_edits(self, edits: Mapping[int, Mapping[str, str]]) -> None:
        """The user's cell edits, {row_id: {column: value}}: kept on the job and journalled."""
        with self._lock:
            self._edits = {int(k): dict(v) for k, v in edits.items()}
            self._version += 1
        self.store.save_edits(self.id, self._edits)

    def edits(self) -> dict[int, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self._edits.items()}

    # --- reading ------------------------------------------------------------------------------------

    def rows(self) -> list[RowRecord]:
        with self._lock:
            return [r for _, r in sorted(self._rows.items())]  # records are frozen: no copies needed

    def snapshot(self) -> Snapshot:
        with self._lock:
            t = self.tally
            now = time.monotonic()
            elapsed = self.elapsed(now)
            recent = [c for c in self._completions if now - c <= RATE_WINDOW_S]
            window = min(RATE_WINDOW_S, elapsed) if elapsed else 0.0
            rate = len(recent) / window if window > 0.5 else 0.0
            return Snapshot(
                run_id=self.id,
                status=self.status,
                message=self.message,
                total=len(self._rows),
                succeeded=t.succeeded,
                failed=t.failed,
                skipped=t.skipped,
                pending=t.pending,
                in_flight=self._in_flight,
                flagged=t.flagged,
                prompt_tokens=t.prompt_tokens,
                completion_tokens=t.completion_tokens,
                cached_tokens=t.cached_tokens,
                reasoning_tokens=t.reasoning_tokens,
                cost_usd=t.cost,
                cost_known=self.plan.price is not None and t.unpriced == 0,
                budget_usd=self.budget.limit_usd,
                requests_sent=self._requests_sent,
                cache_hits=self._cache_hits,
                retries=self._retries,
                rate_limited=self._rate_limited,
                elapsed_s=elapsed,
                rows_per_s=rate,
                eta_s=(t.pending / rate) if rate > 0 and self.status is Status.RUNNING else None,
                cost_series=tuple(self._series),
                recent_errors=tuple(self._recent_errors),
                version=self._version,
                **self._stall(now),
                cache_write_tokens=t.cache_write_tokens,
                saved_by_caching_usd=t.saved,
                tier_rows={k: v for k, v in t.tier_rows.items() if v},
                tier_cost={k: v for k, v in t.tier_cost.items() if t.tier_rows.get(k)},
                service_tier=self._tier,
                capacity_refusals=self._capacity_refusals,
                adjustments=tuple(self._adjustments),
                estimated_usd=t.estimated,
                web_search_calls=t.web_search_calls,
            )

    def _stall(self, now: float) -> dict:
        """Snapshot fields saying why nothing moves (held under the lock)."""
        since = self.health.trouble_since
        if since is None or self.status is not Status.RUNNING:
            return {}
        wait = self.governor.state().next_admission_s
        due = self.units.next_due_s()
        if due is not None:
            wait = max(wait, due)
        return {
            "stalled_s": now - since,
            "stall_kind": self.health.trouble_kind,
            "next_try_s": max(0.0, wait),
        }

    # --- the worker ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                unit = None if self._halt.is_set() else self.units.take()
                if isinstance(unit, WorkItem | PackItem):
                    self._in_flight += 1
            if unit is None:
                return
            if isinstance(unit, float):
                if self._halt.wait(min(unit, 0.5)):
                    return
                continue
            try:
                self._process(unit)
            except _Halt:
                with self._lock:
                    self.units.give_back(unit)
            except Exception as exc:  # a bug must cost one row (a pack: a detour), never the run
                self._internal_error(unit, exc)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _process(self, unit: Unit) -> None:
        """One unit through the stages: cache, admission, transport, policy, then judge and journal."""
        if isinstance(unit, WorkItem):
            if self._answered_from_cache(unit):
                return
            claimed = [unit]
        else:
            claimed = [m for m in unit.members if self._claim(m) is None]  # duplicates wait for these
        try:
            worst = self._admit(unit)
            outcome = None
            try:
                outcome, decision, tries = self._send(unit)
                self._act(unit, outcome, decision, tries)
            finally:
                # Only now is the real cost counted: releasing the worst case earlier lets another request
                # slip under the budget in between. An outcome that may have been billed keeps it as spent.
                self._release(unit, worst, outcome is not None and outcome.maybe_billed)
        finally:
            for member in claimed:
                self._unclaim(member)

    # cache

    def _answered_from_cache(self, item: WorkItem) -> bool:
        """An answer paid for before (or by an identical row in flight now) is reused; else this worker
        becomes the one sender of this exact request."""
        while True:
            cached = self.store.cached(item.request_hash)
            if cached is not None:
                with self._lock:
                    self._cache_hits += 1
                self._finish(self.judge.cached(item, cached))
                return True
            leader = self._claim(item)
            if leader is None:
                return False
            while not leader.wait(0.2):  # an identical request (a duplicate lead) is in flight
                if self._halt.is_set():
                    raise _Halt

    def _claim(self, item: WorkItem) -> threading.Event | None:
        """Become the one sender of this exact request (None), or get the event of the worker that is."""
        with self._lock:
            event = self._inflight_hashes.get(item.request_hash)
            if event is not None:
                return event
            self._inflight_hashes[item.request_hash] = threading.Event()
            return None

    def _unclaim(self, item: WorkItem) -> None:
        with self._lock:
            event = self._inflight_hashes.pop(item.request_hash, None)
        if event is not None:
            event.set()

    # admission

    def _admit(self, unit: Unit) -> float:
        """Reserve the unit's worst case against the budget (0 without one); pause instead of crossing it."""
        with self._lock:
            if self._halt.is_set():
                raise _Halt
            if self.budget.limit_usd is None:
                return 0.0
            worst = self.prices.worst(unit.prompt_tokens, unit.max_output_tokens, self._tier, unit.body)
            if not self.budget.reserve(worst, self.tally.cost):
                self._stop(Status.PAUSED, self.budget.reached_words(worst))  # never over a cancel
                raise _Halt
            return worst

    def _release(self, unit: Unit, worst: float, maybe_billed: bool) -> None:
        if not worst and not maybe_billed:
            return
        with self._lock:
            if maybe_billed:
                kept = worst or self.prices.worst(
                    unit.prompt_tokens, unit.max_output_tokens, self._tier, unit.body
                )
                self.tally.estimated += kept
                self._version += 1
                estimated = self.tally.estimated
            self.budget.release(worst)
        if maybe_billed:
            try:
                self.store.update_run_meta(self.id, estimated_usd=estimated)
            except (StoreError, KeyError):
                pass  # the run's status write keeps it too

    # transport (within the shape's turn and the governor's slot)

    def _send(self, unit: Unit) -> tuple[Outcome, Decision, Tries | None]:
        """Send until the policy says anything but resend (a 400 that taught the model's request shape is
        sent again at once, corrected: not an attempt, and not billed)."""
        shaper = self.shapes.of(str(unit.body.get("model", "")))
        taught = False  # an answer taught the shape (a reasoning model through the Responses API)
        with Shapes.turn(shaper, self._halt) as turn:
            if not turn:
                raise _Halt
            for _ in range(shapes.MAX_FIXES_PER_REQUEST):
                if not self.governor.acquire(unit.prompt_tokens + unit.max_output_tokens, self._halt):
                    raise _Halt
                tier = self._tier
                body = shaper.apply(unit.body)
                if tier != "default":
                    body["service_tier"] = tier
                with self._lock:
                    self._requests_sent += 1
                outcome = self.transport.send(
                    body, row_id=unit.row_id, timeout=self.timeouts.for_request(unit.key, tier)
                )
                self.governor.observe(outcome.headers)
                if outcome.timed_out:
                    self.timeouts.timed_out(unit.key)
                elif outcome.latency_s is not None:
                    self.timeouts.answered(outcome.latency_s)
                note = self.shapes.learn(shaper, outcome.status, outcome.error, body)
                if note is not None:
                    outcome = Outcome(OutcomeKind.RESHAPED, message=note)
                elif outcome.served_effort is not None:
                    taught = self.shapes.learn_answer(shaper, outcome.served_effort, body)
                decision, tries = self._decide(unit, outcome)
                if decision.act is not Act.RESEND:
                    break
            else:
                words = "; ".join(self._adjustments)
                outcome = Outcome(
                    OutcomeKind.FATAL, message=f"The server kept refusing this model's parameters: {words}"
                )
                decision, tries = Decision(Act.STOP, message=outcome.message), None
            if outcome.kind is OutcomeKind.OK and not taught:
                shaper.confirm()
        return outcome, decision, tries

    # policy

    def _decide(self, unit: Unit, outcome: Outcome) -> tuple[Decision, Tries | None]:
        """Tell the key's governor what came back, then ask the policy (lib.engine.policy)."""
        kind = outcome.kind
        if kind is OutcomeKind.OK or kind is OutcomeKind.RESHAPED:
            self.governor.succeeded()  # the key works (a reshape: only the request's shape was wrong)
            if kind is OutcomeKind.OK:
                return ACCEPT, None
            return decide(outcome, Tries(), RunState()), None
        tries = self._tries.get(unit.key) or Tries(attempts=self._stored_attempts(unit))
        wait = 0.0
        if kind is OutcomeKind.RATE_LIMIT:
            wait = self.governor.rate_limited(outcome.headers)
        elif kind is OutcomeKind.TRANSIENT:
            wait = self.governor.server_error(transient_attempts(tries))
        elif kind is not OutcomeKind.CAPACITY:
            self.governor.succeeded()  # any answer but a 429 or a server error: the key works
        with self._lock:
            if kind is OutcomeKind.CAPACITY:
                self._capacity_refusals += 1
                self._version += 1
                now = time.monotonic()
                if self._capacity_since is None:
                    self._capacity_since = now
            else:
                self.health.failed(outcome)
                if kind is OutcomeKind.RATE_LIMIT:
                    self._rate_limited += 1
            h = self.health
            state = RunState(
                max_attempts=self.settings.max_attempts,
                workers=self.settings.workers,
                packed=isinstance(unit, PackItem),
                endpoint=public_url(self.endpoint.base_url),
                endpoint_down=h.down,
                probing=h.probing,
                unreachable=h.unreachable,
                ever_ok=h.ever_ok,
                quiet_s=h.quiet_s(),
                wait_s=wait,
                tier=self._tier,
                flex_fallback=self.settings.flex_fallback,
                flex_patience_s=self.settings.flex_patience_s,
                capacity_waited_s=time.monotonic() - self._capacity_since if self._capacity_since else 0.0,
                jitter=random.random(),
            )
        return decide(outcome, tries, state), tries

    def _stored_attempts(self, unit: Unit) -> int:
        row = self._rows.get(unit.row_id) if isinstance(unit, WorkItem) else None
        return row.attempts if row is not None else 0

    def _act(self, unit: Unit, outcome: Outcome, decision: Decision, tries: Tries | None) -> None:
        """Carry out the policy's decision."""
        act = decision.act
        if act is Act.ACCEPT:
            self._accept(unit, outcome)
            return
        if outcome.kind is not OutcomeKind.CAPACITY:  # a capacity refusal is counted, not an error
            self._note_error(unit.row_id, outcome.message)
        tries = tries or Tries()
        attempts = tries.attempts + (1 if decision.attempt else 0)
        if act is Act.RETRY or act is Act.FALL_BACK:
            limited = outcome.kind is OutcomeKind.RATE_LIMIT
            refused = outcome.kind is OutcomeKind.CAPACITY
            with self._lock:
                self._tries[unit.key] = Tries(
                    attempts, tries.rate_limited + limited, tries.capacity + refused
                )
                if act is Act.FALL_BACK:
                    self._tier = "default"
                    self._note_error(unit.row_id, decision.message)
                self._retries += 1
                self.units.later(unit, decision.delay)
            return
        self._done_with(unit)
        if act is Act.FAIL:
            self._finish(self._failed(unit, decision.message, decision.retryable, attempts))
        elif act is Act.SEND_ALONE:
            with self._lock:
                self.units.first(unit.members)
                self._retries += 1
        elif act is Act.HOLD:
            self._hold(unit, decision.message or "", attempts)
        elif act is Act.GIVE_BACK:
            with self._lock:
                self.units.give_back(unit)
        elif act is Act.STOP_ENDPOINT:
            with self._lock:
                self._stop_for_endpoint(decision.message or "", failed=decision.failed)
                self.units.give_back(unit)
        elif act is Act.PAUSE:
            self.pause(decision.message)
            raise _Halt
        elif act is Act.STOP:
            with self._lock:
                self._stop(Status.FAILED, decision.message or "Stopped.")
            raise _Halt

    def _done_with(self, unit: Unit) -> None:
        if unit.key in self._tries:
            with self._lock:
                self._tries.pop(unit.key, None)
        self.timeouts.forget(unit.key)

    # judge and journal

    def _accept(self, unit: Unit, outcome: Outcome) -> None:
        with self._lock:
            opened = self.health.answered()
            if outcome.tier == "flex":
                self._capacity_since = None
        if isinstance(unit, PackItem):
            results, alone, problem = self.judge.pack(unit, outcome, self._next_attempt)
            if problem:
                self._note_error(unit.row_id, problem)
            for row, cache in results:
                self._finish(row, cache)
            if alone:
                with self._lock:
                    self.units.first(alone)
        else:
            row, cache = self.judge.row(unit, outcome, self._next_attempt(unit.row_id))
            self._finish(row, cache)
        self._done_with(unit)
        if opened:
            self._flush_held()

    def _next_attempt(self, row_id: int) -> int:
        tries = self._tries.get(row_id)
        if tries is not None:
            return tries.attempts + 1
        row = self._rows.get(row_id)
        return (row.attempts if row is not None else 0) + 1

    def _failed(self, unit: Unit, message: str | None, retryable: bool, attempts: int) -> RowRecord:
        return RowRecord(
            unit.row_id,
            status="failed",
            error=message,
            retryable=retryable,
            attempts=attempts,
            request_hash=unit.request_hash,
        )

    def _finish(self, row: RowRecord, cache: CachedResponse | None = None) -> None:
        """Journal a row's outcome; only then does it count. A failing disk pauses the run, holding the answer."""
        row = self.judge.with_carry(row)
        problem = self.journal.record(row, cache)
        if problem is not None:
            with self._lock:
                self._note_error(row.row_id, problem)
                self._stop(Status.PAUSED, problem)
            return
        self._count(row)

    def _count(self, row: RowRecord) -> None:
        with self._lock:
            self.tally.replace(self._rows.get(row.row_id), row)
            self._rows[row.row_id] = row
            self._completions.append(time.monotonic())
            if row.status == "failed" and row.error:
                self._note_error(row.row_id, row.error)
            self._version += 1
            self._append_point()

    def _internal_error(self, unit: Unit, exc: Exception) -> None:
        if isinstance(unit, PackItem):
            self._note_error(unit.row_id, f"Internal error in a packed request: {exc!r}")
            with self._lock:
                open_rows = [m for m in unit.members if self._rows[m.row_id].status == "pending"]
                self.units.first(open_rows)  # rows journalled before the error keep their answer
            return
        self._finish(RowRecord(unit.row_id, status="failed", error=f"Internal error: {exc!r}"))

    # endpoint health

    def _hold(self, unit: Unit, message: str, attempts: int) -> None:
        with self._lock:
            verdict = self.health.hold(unit.key, unit, message, attempts)
            if verdict == "stop":
                count = len(self.health.held)
                self._stop_for_endpoint(
                    f"Stopped: the first {count} answers from {public_url(self.endpoint.base_url)} were all "
                    f"the same error, so the problem is the endpoint or its settings, not the rows. "
                    f"{message} Fix that and resume: the rows stay pending.",
                    failed=True,
                )
        if verdict == "release":
            self._flush_held()
        elif verdict == "fail":
            self._finish(self._failed(unit, message, False, attempts))

    def _flush_held(self) -> None:
        """Fail the held rows as the errors they got (or give them back when the endpoint stopped the run)."""
        with self._lock:
            held = self.health.take_held()
            down = self.health.down
            if down:
                for _, unit, _, _ in held:
                    self.units.give_back(unit)  # type: ignore[arg-type]
        if not down:
            for _, unit, message, attempts in held:
                self._finish(self._failed(unit, message, False, attempts))  # type: ignore[arg-type]

    def _stop_for_endpoint(self, message: str, *, failed: bool) -> None:
        """Under the lock: stop sending; held and in-flight rows go back to pending."""
        if not self._stop(Status.FAILED if failed else Status.PAUSED, message):
            return
        self.health.down = True
        for _, unit, _, _ in self.health.take_held():
            self.units.give_back(unit)  # type: ignore[arg-type]

    # what the page shows

    def _note_error(self, row_id: int, message: str | None) -> None:
        if message:
            with self._lock:
                if not self._recent_errors or self._recent_errors[-1].message != message:
                    self._recent_errors.append(RowError(row_id, message, time.time()))
                self._version += 1

    def _append_point(self, force: bool = False) -> None:
        elapsed = self.elapsed()
        t = self.tally
        point = (round(elapsed, 3), t.cost, t.prompt_tokens + t.completion_tokens)
        if force or not self._series or elapsed - self._series[-1][0] >= SERIES_EVERY_S:
            self._series.append(point)
            if len(self._series) > 4000:  # keep memory bounded on very long runs: drop every other point
                self._series = self._series[::2] + [point]
        else:
            self._series[-1] = point


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


# --- starting a run (the registry is the job core's: lib.jobs.registry) -----------------------------------


def start(
    plan: RunPlan,
    *,
    endpoint: Endpoint,
    settings: RunSettings,
    store: Store,
    governor: Governor | None = None,
    retry_failed: bool = False,
    only_retryable: bool = False,
) -> Job:
    """Start (or resume) a run and return its Job at once. Starting a run id that is already active returns it.
    Its requests go through the API the plan was made for (meta `api`), whatever `settings` say."""
    from lib.jobs import register

    api = plan.meta.get("api")
    if api and api != settings.transport:
        settings = dataclasses.replace(settings, transport=str(api))

    job, created = register(
        plan.run_id, lambda: Job(plan, endpoint=endpoint, settings=settings, store=store, governor=governor)
    )
    if not created:
        return job  # type: ignore[return-value]
    return job.start(retry_failed=retry_failed, only_retryable=only_retryable)  # type: ignore[call-arg,return-value]
