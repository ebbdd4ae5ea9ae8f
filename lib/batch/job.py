"""Batch mode: a run sent through OpenAI's Batch API at half the price, journalled step by step, polled in the background.

A BatchJob is a job of the job core (lib.jobs: statuses, pause/resume/cancel, wait, the tally, the registry)
with the engine's Snapshot, so the run page's live panel and the command line's progress work unchanged.
Each phase has one worker thread, which:

1. answers rows from the paid-response cache, splits the rest into chunks (BatchLimits) and journals
   them (lib.batch.journal) before anything leaves the machine;
2. per chunk: uploads the JSONL (file id journalled), creates the batch with metadata naming the run and
   chunk (batch id journalled at once). A call that may have gone through before a crash or a lost
   response is checked first (the file by name and size, the batch by metadata), never repeated blindly;
3. polls every open batch (1 s, growing to poll_interval_s), and merges a finished batch's output and
   error files into the store's rows by custom_id (`row-<id>`, any order) in one transaction.

A restart builds a new BatchJob on the same run and store: it picks up the journal where it stopped.
Rows the batch could not answer (per-line errors, expiry) become failed rows with reasons; they go again
live through lib.engine.resume.continue_run (retry_failed), with the run's settings and the connection
shown now (`continue_batch`, `resend_live`).

One piece past 600 lines on purpose: the background thread's steps (prepare, upload, create, poll,
merge) share one journal and one lock, and each step's crash-recovery check must sit beside the step.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import openai

from lib.batch.files import (
    BatchLimits,
    answered,
    endpoint_for,
    failed,
    render,
    result_lines,
    row_id_of,
    row_outcome,
    split,
)
from lib.batch.journal import BatchJournal, Chunk
from lib.cost.pricing import cost
from lib.engine import errors
from lib.engine.client import Endpoint, make_client, release_client
from lib.engine.job import Job as LiveJob
from lib.engine.settings import RowError, RunPlan, RunSettings, Snapshot
from lib.engine.transports.responses import to_responses
from lib.engine.unit import WorkItem
from lib.jobs import Job, Status, Tally, register
from lib.models import listing as model_listing
from lib.models import shapes
from lib.store import CachedResponse, RowRecord, Store, StoreError

T = TypeVar("T")
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
FIRST_POLL_S = 1.0
LOOKBACK_S = (
    600.0  # a batch or file made before a crash is looked for among those this much older than its chunk
)
META_RUN, META_CHUNK, META_SHA = "lead_studio_run", "lead_studio_chunk", "lead_studio_sha256"
RECENT_ERRORS = 20
Hook = Callable[[str, int], None]


@dataclass(frozen=True)
class BatchSettings:
    poll_interval_s: float = 15.0  # the longest wait between polls (the first is after FIRST_POLL_S)
    limits: BatchLimits = field(default_factory=BatchLimits)
    timeout_s: float = 300.0  # per Files/Batches call: an upload can be 200 MB
    max_call_attempts: int = 6  # transient failures of one call before the job pauses (resume retries)

    @classmethod
    def polling(cls, demo: bool) -> BatchSettings:
        """Every few seconds against the offline demo (its batches end in seconds), every 30 s at most
        against a real API."""
        return cls(poll_interval_s=2.0 if demo else 30.0)


@dataclass(frozen=True)
class ChunkProgress:
    """One batch as the server last reported it."""

    index: int
    rows: int
    batch_id: str | None
    status: str  # the journal step until submitted, then the batch's status; "merged" at the end
    completed: int
    failed: int


@dataclass(frozen=True)
class BatchSavings:
    cost_usd: float | None  # what the answered rows cost (batch rows at the discount)
    live_cost_usd: float | None  # what the same tokens would have cost sent live
    saved_usd: float | None


class _Halt(Exception):
    """Internal: stop the drive thread (paused)."""


class _Stop(Exception):
    """Internal: end the drive with this status and message."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class BatchJob(Job):
    """One run in batch mode. Thread-safe; its thread never touches any UI."""

    kind = "batch"

    def __init__(
        self,
        plan: RunPlan,
        *,
        endpoint: Endpoint,
        store: Store,
        settings: BatchSettings | None = None,
        client: openai.OpenAI | None = None,
        hook: Hook | None = None,
    ):
        super().__init__(plan.run_id)
        self.plan = plan
        self.endpoint = endpoint
        self.store = store
        self.settings = settings or BatchSettings()
        self._own_client = client is None  # from make_client: released by close()
        self._released = False
        self.client = client or make_client(endpoint, timeout_s=self.settings.timeout_s, connections=4)
        self.journal = BatchJournal(store)
        self._hook = hook
        self._model = str(plan.meta.get("model") or "")
        # Batch lines go in the shape live requests taught this endpoint (lib.models.shapes): a batch line
        # refused for a parameter would fail every line of the file.
        try:
            known = store.shape_fixes(model_listing.endpoint_key(endpoint.base_url), self._model)
        except StoreError:
            known = None
        self._fixes = shapes.Fixes.from_json(known)
        self._api = str(plan.meta.get("api") or "chat")  # the API the run was planned for (its lines' url)
        self._url = endpoint_for(self._api)
        self._items: dict[int, WorkItem] = {item.row_id: self._shaped(item) for item in plan.items}
        self._wake = threading.Event()
        self._rows: dict[int, RowRecord] = {}
        self._edits: dict[int, dict[str, str]] = {}
        self._chunks: list[Chunk] = []
        self._cancels_sent: set[str] = set()
        self._live: LiveJob | None = None
        self.tally = Tally()
        self._started = time.monotonic()
        self._cache_hits = 0
        self._retries = 0
        self._series: list[tuple[float, float, int]] = [(0.0, 0.0, 0)]
        self._recent_errors: deque[RowError] = deque(maxlen=RECENT_ERRORS)

    # --- lifecycle --------------------------------------------------------------------------------

    def _shaped(self, item: WorkItem) -> WorkItem:
        body = shapes.apply(
            item.body, self._fixes, wanted_effort=self.plan.meta.get("reasoning_effort_wanted")
        )
        if self._api == "responses":
            body = to_responses(body)  # the cache key stays the chat-shaped body's (item.request_hash)
        return item if body == item.body else replace(item, body=body)

    def start(self) -> BatchJob:
        """Journal the run (or load it) and start the background thread; returns at once."""
        self._open()
        self._launch()
        return self

    def _open(self) -> None:
        """Create the run in the store, or load an earlier process's rows, edits and chunks."""
        if self.store.has_run(self.id):
            self._rows = {r.row_id: r for r in self.store.rows(self.id)}
            self._edits = self.store.edits(self.id)
        else:
            rows = []
            for row_id, cells in self.plan.inputs.items():
                item = self._items.get(row_id)
                status = "pending" if item else "skipped"
                body = item.body if item else None
                rows.append((row_id, item.request_hash if item else None, body, cells, status))
            meta = {**self.plan.meta, "mode": "batch"}
            self.store.create_run(self.id, meta, rows)
            skipped = []
            for row_id in self.plan.inputs:
                item = self._items.get(row_id)
                if item:
                    self._rows[row_id] = RowRecord(row_id, request_hash=item.request_hash)
                else:
                    reason = self.plan.skipped.get(row_id, "Not sent.")
                    self._rows[row_id] = RowRecord(row_id, status="skipped", error=reason)
                    skipped.append((self._rows[row_id], None))
            if skipped:
                self.store.record_many(self.id, skipped)
        self._chunks = self.journal.chunks(self.id)
        self.tally.recount(self._rows.values())

    def open_idle(self) -> BatchJob:
        """Load the run without polling (its failed rows are about to go again live): it stands finished."""
        self._open()
        with self._lock:
            self._change(Status.FINISHED, None)
            self._ended_at = time.monotonic()
        return self

    # the job core's hooks: one worker (the drive) per phase

    def _has_work(self) -> bool:
        return True  # the drive itself finds out: chunks to prepare, batches to poll or to merge

    def _work(self) -> None:
        self._drive()

    def _phase_starting(self) -> None:
        with self._lock:
            if self._released:  # closed when the registry forgot it: resumed after all
                self.client = make_client(self.endpoint, timeout_s=self.settings.timeout_s, connections=4)
                self._released = False
        try:
            self.store.set_run_status(self.id, "running", None)
        except StoreError:
            pass

    def _settled(self) -> None:
        with self._lock:
            status, message, totals = self.status, self.message, self.tally.as_meta()
        try:
            self.store.set_run_status(self.id, status, message, **totals)
        except StoreError:
            pass

    def _halted(self) -> None:
        self._wake.set()

    def _before_relaunch(self) -> bool:
        with self._lock:
            if self._live is not None:  # a finished live re-send: its rows are in the store
                self._live = None
                self._rows = {r.row_id: r for r in self.store.rows(self.id)}
                self.tally.recount(self._rows.values())
            self._cancels_sent.clear()
        return True

    def _busy(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def pause(self, message: str | None = None) -> None:
        """Stop polling (the batches go on at OpenAI); resume() collects them later."""
        live = self._live_job()
        if live is not None:
            live.pause(message)
            return
        super().pause(message or "Paused: the batches go on at OpenAI; resume to collect them.")

    def resume(self, *, budget_usd: float | None = None) -> None:
        """Poll again (after a pause or an error), or send the rows a cancel left pending. Returns at once."""
        live = self._live_job()
        if live is not None:
            live.resume(budget_usd=budget_usd)
            return
        super().resume()

    def go_on(self, *, endpoint: Endpoint | None = None, budget_usd: float | None = None) -> None:
        """Resume through `endpoint` (the connection shown now) when it changed; lib.engine.resume calls it."""
        with self._lock:
            if endpoint is not None and endpoint != self.endpoint and not self._busy():
                old, holding = self.client, self._own_client and not self._released
                self.endpoint = endpoint
                self.client = make_client(endpoint, timeout_s=self.settings.timeout_s, connections=4)
                self._own_client, self._released = True, False
                if holding:
                    release_client(old)
        self.resume(budget_usd=budget_usd)

    def close(self) -> None:
        """Give back the shared HTTP client, and the live re-send's (the registry does this when it forgets
        the run). Only once nothing is running; a later resume takes a client again."""
        with self._lock:
            if self.active:
                return
            if self._live is not None:
                self._live.close()
            if self._own_client and not self._released:
                self._released = True
                release_client(self.client)

    def cancel(self) -> None:
        """Cancel the open batches at OpenAI; answers they already produced are still collected and kept."""
        live = self._live_job()
        if live is not None:
            live.cancel()
            return
        with self._lock:
            if self.status not in (Status.RUNNING, Status.PAUSED, Status.PENDING):
                return
            self._change(
                Status.CANCELLED,
                "Cancelling the batches at OpenAI; answers already made are still collected.",
            )
            self._wake.set()
            alive = self._busy()
        if not alive:  # paused: a thread has to ask OpenAI to cancel and collect what was done
            self._launch(keep_status=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background thread (or the live re-send) has stopped. True if it has."""
        live = self._live
        if live is not None:
            deadline = None if timeout is None else time.monotonic() + timeout
            if not self._done.wait(timeout):
                return False
            return live.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self._done.wait(timeout)

    @property
    def active(self) -> bool:
        live = self._live
        if live is not None:
            return live.active
        return super().active

    def _live_job(self) -> LiveJob | None:
        live = self._live
        return live if live is not None and live.active else None

    # --- the background thread --------------------------------------------------------------------

    def _drive(self) -> None:
        try:
            if self.status is not Status.CANCELLED:
                self._submit_all()
            self._poll_until_done()
            with self._lock:
                if self.status is Status.CANCELLED:
                    pending = self.tally.pending
                    self._change(
                        Status.CANCELLED,
                        f"Cancelled. {pending:,} rows were not run and stay pending: resume to send them."
                        if pending
                        else "Cancelled after every row was answered.",
                    )
                # running: the job core settles it as finished
        except _Halt:
            pass
        except _Stop as stop:
            with self._lock:
                self._change(stop.status, stop.message)  # never over a cancel
        except StoreError as exc:
            with self._lock:
                self._change(Status.PAUSED, str(exc))
        except Exception as exc:  # a bug or a crash hook: stop, keep the journal as it is
            with self._lock:
                self._change(
                    Status.FAILED, f"Batch mode stopped: {exc!r}. Resume to pick up where it stopped."
                )

    def _step(self, name: str, index: int) -> None:
        """A named point between two journalled steps (tests raise here to simulate a crash)."""
        if self._hook is not None:
            self._hook(name, index)

    def _submit_all(self) -> None:
        self._prepare_new_chunks()
        for chunk in list(self._chunks):
            if chunk.step in ("prepared", "uploading", "uploaded", "creating"):
                self._check_halt()
                if self.status is Status.CANCELLED:
                    return  # chunks not yet sent stay prepared: a resume sends them
                self._submit(chunk)

    def _prepare_new_chunks(self) -> None:
        """Rows pending and in no open chunk: answer from the cache what was paid for, chunk and journal the
        rest. Rows sending the same request as another (duplicate leads, one answer per company) are not
        chunked: the first one goes, and the others take its answer when its chunk is merged."""
        covered = {r for c in self._chunks if not c.merged for r in c.row_ids}
        going = {self._items[r].request_hash for r in covered if r in self._items}
        todo = [
            self._items[r]
            for r, row in sorted(self._rows.items())
            if row.status == "pending" and r in self._items and r not in covered
        ]
        fresh: list[WorkItem] = []
        hits = self._from_cache(todo)
        answered_now = {row.row_id for row, _ in hits}
        for item in todo:
            if item.row_id in answered_now or item.request_hash in going:
                continue
            going.add(item.request_hash)
            fresh.append(item)
        if not fresh:
            return
        first = max((c.index for c in self._chunks), default=-1) + 1
        prepared = split(fresh, self.settings.limits, first, self._url)
        chunks = [
            Chunk(
                self.id,
                p.index,
                p.row_ids,
                p.sha256,
                p.nbytes,
                _filename(self.id, p.index, p.sha256),
                "prepared",
            )
            for p in prepared
        ]
        self.journal.add(chunks)
        self._reload_chunks()
        for c in chunks:
            self._step("prepared", c.index)

    def _from_cache(self, items: Sequence[WorkItem]) -> list[tuple[RowRecord, CachedResponse | None]]:
        """Answer the items whose request was paid for before (recorded and counted); returns them."""
        hits: list[tuple[RowRecord, CachedResponse | None]] = []
        for item in items:
            cached = self.store.cached(item.request_hash)
            if cached is None:
                continue
            row = answered(
                item, cached.text, None, cached.finish_reason, cached.usage, *self._judging, cached.sources
            )
            hits.append((replace(row, from_cache=True, attempts=0), None))
        if hits:
            self.store.record_many(self.id, hits)
            self._apply([row for row, _ in hits])
            with self._lock:
                self._cache_hits += len(hits)
        return hits

    def _answer_followers(self) -> None:
        """Pending rows in no open chunk whose request another row sent: its answer, once merged (from the
        paid-answer cache); when that row failed, the same failure (re-sent live with it)."""
        open_rows = {r for c in self._chunks if not c.merged for r in c.row_ids}
        going = {self._items[r].request_hash for r in open_rows if r in self._items}
        with self._lock:
            waiting = [
                self._items[r]
                for r, row in sorted(self._rows.items())
                if row.status == "pending" and r in self._items and r not in open_rows
            ]
            final = {
                self._items[r].request_hash: row
                for r, row in self._rows.items()
                if row.status == "failed" and r in self._items
            }
        waiting = [i for i in waiting if i.request_hash not in going]
        answered_now = {row.row_id for row, _ in self._from_cache(waiting)}
        failed_too = [
            (
                failed(
                    i, final[i.request_hash].error or "Its request failed.", final[i.request_hash].retryable
                ),
                None,
            )
            for i in waiting
            if i.row_id not in answered_now and i.request_hash in final
        ]
        if failed_too:
            self.store.record_many(self.id, failed_too)
            self._apply([row for row, _ in failed_too])

    @property
    def _judging(self) -> tuple:
        return self.plan.price, self.plan.check_output, self.plan.check_quality

    def _submit(self, chunk: Chunk) -> None:
        """Upload the chunk (unless it is known to be) and create its batch (unless one exists), journalling each."""
        if chunk.step in ("prepared", "uploading"):
            maybe_uploaded = chunk.step == "uploading"
            self.journal.update(self.id, chunk.index, step="uploading")
            data = render([self._items[r] for r in chunk.row_ids], self._url)
            file_id = self._call(
                "Uploading the batch file",
                lambda: self._upload(chunk, data),
                find=lambda: self._find_file(chunk),
                find_first=maybe_uploaded,
            )
            del data
            self._step("upload:sent", chunk.index)
            self.journal.update(self.id, chunk.index, step="uploaded", file_id=file_id)
            self._step("upload:saved", chunk.index)
            chunk = self._reload_chunks(chunk.index)
        maybe_created = chunk.step == "creating"
        self.journal.update(self.id, chunk.index, step="creating")
        batch = self._call(
            "Creating the batch",
            lambda: self.client.batches.create(
                input_file_id=chunk.file_id,
                endpoint=self._url,
                completion_window="24h",
                metadata={META_RUN: self.id, META_CHUNK: str(chunk.index), META_SHA: chunk.sha256[:32]},
            ),
            find=lambda: self._find_batch(chunk),
            find_first=maybe_created,
        )
        self._step("create:sent", chunk.index)
        counts = batch.request_counts
        self.journal.update(
            self.id,
            chunk.index,
            step="submitted",
            batch_id=batch.id,
            batch_status=batch.status,
            total=counts.total if counts else 0,
        )
        self._reload_chunks()
        self._step("create:saved", chunk.index)

    def _upload(self, chunk: Chunk, data: bytes) -> str:
        if len(data) != chunk.nbytes or hashlib.sha256(data).hexdigest() != chunk.sha256:
            raise _Stop(
                "failed", "The run's requests changed since its batches were prepared; start a new run."
            )
        return self.client.files.create(file=(chunk.filename, data, "application/jsonl"), purpose="batch").id

    def _find_file(self, chunk: Chunk) -> str | None:
        """The chunk's file if an earlier attempt uploaded it (same name and size), else None."""
        for f in self.client.files.list(purpose="batch"):
            if f.filename == chunk.filename and f.bytes == chunk.nbytes:
                return f.id
            if f.created_at < chunk.prepared_at - LOOKBACK_S:
                break  # newest first: older files cannot be this chunk's
        return None

    def _find_batch(self, chunk: Chunk):
        """The chunk's batch if an earlier attempt created it (found by its metadata), else None."""
        for b in self.client.batches.list(limit=100):
            meta = b.metadata or {}
            if meta.get(META_RUN) == self.id and meta.get(META_CHUNK) == str(chunk.index):
                return b
            if b.created_at < chunk.prepared_at - LOOKBACK_S:
                break
        return None

    def _poll_until_done(self) -> None:
        interval = min(FIRST_POLL_S, self.settings.poll_interval_s)
        while True:
            open_chunks = [c for c in self._chunks if c.batch_id and not c.merged]
            if not open_chunks:
                return
            if self.status is Status.CANCELLED:
                self._send_cancels(open_chunks)
            for chunk in open_chunks:
                self._check_halt()
                self._poll(chunk)
            if any(c.batch_id and not c.merged for c in self._chunks):
                self._sleep(interval)
                interval = min(self.settings.poll_interval_s, interval * 1.5)

    def _poll(self, chunk: Chunk) -> None:
        batch = self._call("Checking the batch", lambda: self.client.batches.retrieve(chunk.batch_id))
        counts = batch.request_counts
        update = {
            "batch_status": batch.status,
            "completed": counts.completed if counts else 0,
            "failed": counts.failed if counts else 0,
            "total": counts.total if counts else chunk.total,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
        }
        if any(getattr(chunk, k) != v for k, v in update.items()):
            self.journal.update(self.id, chunk.index, **update)
            self._reload_chunks()
        self._step("poll", chunk.index)
        if batch.status in TERMINAL:
            self._merge(self._reload_chunks(chunk.index), batch)

    def _send_cancels(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            if chunk.batch_id in self._cancels_sent or chunk.batch_status in TERMINAL | {"cancelling"}:
                continue
            try:
                self.client.batches.cancel(chunk.batch_id)
            except openai.APIStatusError:
                pass  # it finished meanwhile (cancel of a completed batch is refused): it is merged as it is
            self._cancels_sent.add(chunk.batch_id)

    def _merge(self, chunk: Chunk, batch) -> None:
        """A finished batch's output and error lines -> row records, written in one transaction."""
        data = b""
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                data += self._call(
                    "Downloading batch results", lambda f=file_id: self.client.files.content(f).content
                )
                data += b"\n"
        wanted = set(chunk.row_ids)
        seen: set[int] = set()
        results: list[tuple[RowRecord, CachedResponse | None]] = []
        with self._lock:
            current = dict(self._rows)
        for line in result_lines(data):
            row_id = row_id_of(line.get("custom_id"))
            if row_id not in wanted or row_id in seen:
                continue  # not this chunk's (or a repeat): never let one row take another's answer
            seen.add(row_id)
            if current[row_id].status == "succeeded":
                continue  # answered meanwhile (a live re-send): keep that answer
            row, cache = row_outcome(self._items[row_id], line, *self._judging)
            if row is not None:
                results.append((row, cache))
        if batch.status != "cancelled":
            reason = _missing_reason(batch)
            for row_id in sorted(wanted - seen):
                if current[row_id].status == "pending":
                    results.append((failed(self._items[row_id], reason, True), None))
        self._step("merge:parsed", chunk.index)
        self.store.record_many(self.id, results)
        self._step("merge:saved", chunk.index)
        self.journal.update(self.id, chunk.index, step="merged", batch_status=batch.status)
        self._reload_chunks()
        self._apply([row for row, _ in results])
        self._answer_followers()

    # --- helpers ----------------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        find: Callable[[], T | None] | None = None,
        find_first: bool = False,
    ) -> T:
        """One Files/Batches call with bounded retries. `find` first checks whether a call that may have gone
        through (before a crash, or with its answer lost) did: then it is not made again."""
        delay = 1.0
        last = ""
        for attempt in range(1, self.settings.max_call_attempts + 1):
            try:
                if find is not None and (find_first or attempt > 1):
                    found = find()
                    if found is not None:
                        return found
                return fn()
            except openai.APIStatusError as exc:
                kind, message = errors.classify_status(exc, model=self._model)
                if kind == "quota":
                    raise _Stop("paused", message) from exc
                if kind in ("fatal", "row"):
                    raise _Stop("failed", f"{what}: {message}") from exc
                last = message
            except openai.APITimeoutError:
                last = "no answer in time"
            except openai.APIConnectionError as exc:
                last = errors.connection_message(exc)
            with self._lock:
                self._retries += 1
            self._sleep(min(30.0, delay) * random.uniform(0.5, 1.0))
            delay *= 2
        raise _Stop(
            "paused", f"{what} failed {self.settings.max_call_attempts} times ({last}). Resume to try again."
        )

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()
        self._check_halt()

    def _check_halt(self) -> None:
        if self._halt.is_set() and self.status is not Status.CANCELLED:
            raise _Halt

    def _reload_chunks(self, index: int | None = None) -> Chunk | None:
        chunks = self.journal.chunks(self.id)
        with self._lock:
            self._chunks = chunks
            self._version += 1
        return next((c for c in chunks if c.index == index), None) if index is not None else None

    def _apply(self, rows: Sequence[RowRecord]) -> None:
        """Count merged rows (the store already has them)."""
        with self._lock:
            for row in rows:
                self.tally.replace(self._rows[row.row_id], row)
                self._rows[row.row_id] = row
                new_error = not self._recent_errors or self._recent_errors[-1].message != row.error
                if row.status == "failed" and row.error and new_error:
                    self._recent_errors.append(RowError(row.row_id, row.error, time.time()))
            t = self.tally
            point = (
                round(time.monotonic() - self._started, 3),
                t.cost,
                t.prompt_tokens + t.completion_tokens,
            )
            self._series.append(point)
            self._version += 1

    # --- reading ----------------------------------------------------------------------------------

    def rows(self) -> list[RowRecord]:
        live = self._live
        if live is not None:
            return live.rows()
        with self._lock:
            return [r for _, r in sorted(self._rows.items())]

    def set_edits(self, edits: Mapping[int, Mapping[str, str]]) -> None:
        """The user's cell edits, {row_id: {column: value}}: kept on the job and journalled."""
        if self._live is not None:
            self._live.set_edits(edits)
        with self._lock:
            self._edits = {int(k): dict(v) for k, v in edits.items()}
            self._version += 1
        self.store.save_edits(self.id, self._edits)

    def edits(self) -> dict[int, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self._edits.items()}

    def batch_ids(self) -> list[str]:
        with self._lock:
            return [c.batch_id for c in self._chunks if c.batch_id]

    def progress(self) -> list[ChunkProgress]:
        """Each batch's last known status and counts at OpenAI."""
        with self._lock:
            return [
                ChunkProgress(
                    c.index,
                    len(c.row_ids),
                    c.batch_id,
                    "merged" if c.merged else (c.batch_status or c.step),
                    c.completed,
                    c.failed,
                )
                for c in self._chunks
            ]

    def savings(self) -> BatchSavings:
        """What the answered rows cost, against what the same tokens would have cost sent live."""
        price = self.plan.price
        if price is None:
            return BatchSavings(None, None, None)
        paid = live = 0.0
        for row in self.rows():
            if row.cost_usd is None or row.from_cache:
                continue
            paid += row.cost_usd
            live += cost(row.usage, price) or 0.0
        return BatchSavings(paid, live, live - paid)

    def snapshot(self) -> Snapshot:
        live = self._live
        if live is not None:
            return live.snapshot()
        with self._lock:
            t = self.tally
            chunks = self._chunks
            sent = sum(len(c.row_ids) for c in chunks if c.batch_id)
            open_rows = sum(len(c.row_ids) for c in chunks if c.batch_id and not c.merged)
            message = self.message
            if self.status is Status.RUNNING and chunks:
                message = _progress_message(chunks)
            return Snapshot(
                run_id=self.id,
                status=self.status,
                message=message,
                total=len(self._rows),
                succeeded=t.succeeded,
                failed=t.failed,
                skipped=t.skipped,
                pending=t.pending,
                in_flight=open_rows,
                flagged=t.flagged,
                prompt_tokens=t.prompt_tokens,
                completion_tokens=t.completion_tokens,
                cached_tokens=t.cached_tokens,
                reasoning_tokens=t.reasoning_tokens,
                cost_usd=t.cost,
                cost_known=self.plan.price is not None,
                budget_usd=None,
                requests_sent=sent,
                cache_hits=self._cache_hits,
                retries=self._retries,
                rate_limited=0,
                elapsed_s=(self._ended_at or time.monotonic()) - self._started,
                rows_per_s=0.0,
                eta_s=None,
                cost_series=tuple(self._series),
                recent_errors=tuple(self._recent_errors),
                version=self._version,
                web_search_calls=t.web_search_calls,
            )

    # --- live re-send -----------------------------------------------------------------------------

    def retry_failed(self, *, only_retryable: bool = False) -> int:
        """Send the failed rows again live, with the run's settings (lib.engine.resume.continue_run is the
        one way: it also takes the connection shown now). Returns how many."""
        from lib.engine.resume import run_settings

        job = self.resend_live(run_settings(self.store, self.id), only_retryable=only_retryable)
        return 0 if job is None else len(job.plan.items)

    def resend_live(
        self,
        settings: RunSettings | None = None,
        *,
        endpoint: Endpoint | None = None,
        only_retryable: bool = False,
        row_ids: Sequence[int] | None = None,
    ) -> LiveJob | None:
        """Send failed rows (expired, per-line errors...) through the live engine on the same run, at once,
        with `settings` (the run's) through `endpoint` (the connection shown now; else the batch's).

        Returns the live Job (this BatchJob then shows its snapshot and rows), or None if nothing failed.
        """
        if self._live_job() is not None or self._busy():
            raise RuntimeError("The run is still busy; wait for it before re-sending rows live.")
        wanted = set(row_ids) if row_ids is not None else None
        rows = self.store.rows(self.id)
        ids = [
            r.row_id
            for r in rows
            if r.status == "failed"
            and r.row_id in self._items
            and (r.retryable or not only_retryable)
            and (wanted is None or r.row_id in wanted)
        ]
        if not ids:
            return None
        self.store.reset_rows(self.id, ids)
        endpoint = endpoint or self.endpoint
        planned = {
            item.row_id: item for item in self.plan.items
        }  # as planned: the live transport spells them
        items = tuple(planned[i] for i in ids)
        if endpoint.base_url != self.endpoint.base_url:  # answers are cached under where they came from
            items = tuple(i.at(endpoint.base_url) for i in items)
        subset = replace(self.plan, items=items, packs=())
        live = replace(settings or RunSettings(), transport=self._api)  # through the API the run was made for
        job = LiveJob(subset, endpoint=endpoint, settings=live, store=self.store)
        with self._lock:
            self._live = job
            self._version += 1
        return job.start()


def _filename(run_id: str, index: int, sha256: str) -> str:
    """The uploaded file's name: the run, the chunk and its content, so a restart can recognise it."""
    return f"lead-studio-{run_id}-chunk{index:04d}-{sha256[:16]}.jsonl"


def _missing_reason(batch) -> str:
    """Why a row of a finished batch has no line in either file."""
    if batch.status == "failed":
        problems = [e.message for e in ((batch.errors.data if batch.errors else None) or []) if e.message]
        detail = f": {'; '.join(problems[:3])}" if problems else ""
        return f"OpenAI rejected the batch file{detail}. Send these rows again."
    if batch.status == "expired":
        return "The batch expired (24-hour window) before this row ran; send it again."
    return "The batch returned no result for this row; send it again."


def _progress_message(chunks: Sequence[Chunk]) -> str:
    """'3 batches at OpenAI: 2 in_progress, 1 merged · 5,230 of 10,000 requests done'."""
    states: dict[str, int] = {}
    for c in chunks:
        state = "merged" if c.merged else (c.batch_status or c.step)
        states[state] = states.get(state, 0) + 1
    done = sum(len(c.row_ids) if c.merged else c.completed + c.failed for c in chunks)
    total = sum(len(c.row_ids) for c in chunks)
    parts = ", ".join(f"{n} {s}" for s, n in states.items())
    noun = "batch" if len(chunks) == 1 else "batches"
    return f"{len(chunks)} {noun} at OpenAI: {parts} · {done:,} of {total:,} requests done"


# --- starting, resuming and the shared registry (the engine's, so pages find either kind of job) ----


def start(
    plan: RunPlan,
    *,
    endpoint: Endpoint,
    store: Store,
    settings: BatchSettings | None = None,
    hook: Hook | None = None,
) -> BatchJob:
    """Start (or pick up) a run in batch mode and return its BatchJob at once; an active job of the run is returned."""
    job, created = register(  # a page re-attaches to a batch run like to a live one
        plan.run_id, lambda: BatchJob(plan, endpoint=endpoint, store=store, settings=settings, hook=hook)
    )
    return job.start() if created else job  # type: ignore[return-value]


def resume(
    store: Store, run_id: str, *, endpoint: Endpoint, settings: BatchSettings | None = None
) -> BatchJob:
    """Pick a batch run up from the store alone (after a restart): poll its batches, merge their results."""
    from lib.engine.runs import resume_plan

    return start(resume_plan(store, run_id), endpoint=endpoint, store=store, settings=settings)


def is_batch_run(store: Store, run_id: str) -> bool:
    """Whether a stored run was sent (at least partly) as batches: one lookup on the store's connection."""
    return store.has_batches(run_id)


def continue_batch(
    store: Store,
    run_id: str,
    endpoint: Endpoint,
    *,
    job: Job | None = None,
    retry_failed: bool = False,
    only_retryable: bool = False,
    live_settings: RunSettings | None = None,
    settings: BatchSettings | None = None,
) -> BatchJob:
    """A batch run going on (lib.engine.resume.continue_run): its batches collected, or its failed rows sent
    again live with `live_settings` (the run's) through `endpoint` (the connection shown now)."""
    from lib.engine.runs import resume_plan

    if not isinstance(job, BatchJob):
        if not retry_failed:
            return resume(store, run_id, endpoint=endpoint, settings=settings)
        made, created = register(
            run_id,
            lambda: BatchJob(resume_plan(store, run_id), endpoint=endpoint, store=store, settings=settings),
        )
        if not isinstance(made, BatchJob):
            return made  # type: ignore[return-value]
        job = made.open_idle() if created else made
    if retry_failed:
        job.resend_live(live_settings, endpoint=endpoint, only_retryable=only_retryable)
    else:
        job.go_on(endpoint=endpoint)
    return job
