"""The lifecycle every job shares: guarded statuses, phases of worker threads, a supervisor that settles
the status when a phase's workers stop, pause / resume / cancel / wait.

A phase is one launch of workers. Pause and cancel set the halt event (workers stop taking work; what is
in flight finishes and is recorded); resume starts a new phase once the old one's workers have stopped,
and bumps the phase number at once so the old phase's supervisor leaves the status alone. A subclass (the
live run, a batch run, a website reading) fills in the hooks: what a worker does, whether a phase has work,
what the status is when the workers stop, and what is written when it settles. Worker threads never touch
any UI; pages and the CLI read `snapshot()` and call these methods.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from lib.jobs.status import ACTIVE, RESUMABLE, Status, allowed

SUPERVISOR_TICK_S = 0.25


class Job:
    """The base of every job kind. Thread-safe; `_lock` guards the status and whatever a subclass keeps."""

    kind: ClassVar[str] = "job"  # "live", "batch", "web": what a page or the CLI tells jobs apart by

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self._lock = threading.RLock()
        self._halt = threading.Event()  # set: workers take no more work
        self._done = threading.Event()  # set: no phase is running
        self._done.set()
        self.status: Status = Status.PENDING
        self.message: str | None = None
        self._version = 0  # grows whenever anything shown changes
        self._phase = 0
        self._threads: list[threading.Thread] = []
        self._active_s = 0.0  # seconds spent in earlier phases
        self._phase_started: float | None = None
        self._ended_at: float | None = None  # monotonic time the last phase ended (the registry expires it)

    # --- hooks for the job kinds ------------------------------------------------------------------

    def _has_work(self) -> bool:
        """Under the lock: whether a phase would have anything to do."""
        raise NotImplementedError

    def _worker_count(self) -> int:
        """Under the lock: how many worker threads this phase starts."""
        return 1

    def _work(self) -> None:
        """One worker thread's loop: take work until there is none or `_halt` is set."""
        raise NotImplementedError

    def _tick(self) -> None:
        """Called by the supervisor while the workers run (every quarter second)."""

    def _phase_over(self) -> None:
        """After a phase's workers stopped, before its status settles (not under the lock)."""

    def _settle(self) -> tuple[Status, str | None]:
        """Under the lock, the phase over while still running: the status (and message) it ends in."""
        return Status.FINISHED, None

    def _settled(self) -> None:
        """After the status settled (not under the lock): write it wherever it is kept."""

    def _phase_starting(self) -> None:
        """A phase is about to start its workers (not under the lock): e.g. journal "running"."""

    def _before_relaunch(self) -> bool:
        """In the resume thread, once the old phase stopped: get ready (False: stay as the status now is)."""
        return True

    def _budget(self, budget_usd: float | None) -> None:
        """resume(budget_usd=...): a job that spends money takes the new limit; others ignore it."""

    def _halted(self) -> None:
        """Under the lock, right after a pause or cancel set the halt event (wake waiting threads...)."""

    # --- status -----------------------------------------------------------------------------------

    def _change(self, status: Status, message: str | None = None) -> bool:
        """Under the lock: change the status if the table allows it (status.TRANSITIONS). Returns whether
        it changed; a refused change leaves status and message as they were."""
        if not allowed(self.status, status):
            return False
        self.status = Status(status)
        self.message = message
        self._version += 1
        return True

    @property
    def active(self) -> bool:
        """Sending, or about to, or a phase's workers are still finishing what they took."""
        return self.status in ACTIVE or not self._done.is_set()

    # --- phases -----------------------------------------------------------------------------------

    def start(self) -> Job:
        """Begin the first phase; returns at once."""
        self._launch()
        return self

    def _launch(self, *, keep_status: bool = False, phase: int | None = None) -> None:
        """Start a phase: workers plus a supervisor. With nothing to do the job is finished at once.

        `keep_status`: the phase runs in the status the job has (a batch run collecting after a cancel).
        `phase`: start only if no pause, cancel or newer resume came since that phase number was taken.
        """
        workers: list[threading.Thread] = []
        with self._lock:
            if phase is not None and phase != self._phase:
                return  # a newer resume owns the next phase
            if phase is not None and self.status is not Status.RUNNING:
                pass  # paused or cancelled while the old phase finished: that status stands
            elif not keep_status and not self._has_work():
                self._phase += 1
                self._change(Status.FINISHED, None)
                self._ended_at = time.monotonic()
            else:
                self._phase += 1
                phase = self._phase
                self._halt.clear()
                self._done.clear()
                if not keep_status:
                    self._change(Status.RUNNING, None)
                if self._phase_started is None:
                    self._phase_started = time.monotonic()
                self._ended_at = None
                workers = [
                    threading.Thread(target=self._work, name=f"{self.kind}-{self.id[:8]}-w{i}", daemon=True)
                    for i in range(max(1, self._worker_count()))
                ]
                self._threads = workers
        if not workers:
            self._settled()
            self._done.set()
            return
        self._phase_starting()
        for t in workers:
            t.start()
        threading.Thread(
            target=self._supervise, args=(workers, phase), name=f"{self.kind}-{self.id[:8]}-sup", daemon=True
        ).start()

    def _supervise(self, workers: list[threading.Thread], phase: int) -> None:
        while alive := [t for t in workers if t.is_alive()]:
            alive[0].join(SUPERVISOR_TICK_S)
            self._tick()
        self._phase_over()
        with self._lock:
            if phase != self._phase:
                return  # resumed meanwhile: the newer phase settles the status
            if self._phase_started is not None:
                self._active_s += time.monotonic() - self._phase_started
                self._phase_started = None
            if self.status is Status.RUNNING:
                self._change(*self._settle())
            self._ended_at = time.monotonic()
            self._version += 1
        self._settled()
        self._done.set()

    def elapsed(self, now: float | None = None) -> float:
        """Seconds spent running, over every phase (under the lock)."""
        now = time.monotonic() if now is None else now
        return self._active_s + (now - self._phase_started if self._phase_started else 0.0)

    # --- control ----------------------------------------------------------------------------------

    def pause(self, message: str | None = None) -> None:
        """Take no new work; what is in flight finishes and is recorded. resume() goes on."""
        with self._lock:
            if self.status is Status.RUNNING and self._change(Status.PAUSED, message or "Paused."):
                self._halt.set()
                self._halted()

    def cancel(self) -> None:
        """Stop for good (resumable later): no new work; what is in flight finishes and is recorded."""
        with self._lock:
            if self.status in (Status.RUNNING, Status.PAUSED, Status.PENDING) and self._change(
                Status.CANCELLED, self._cancel_message()
            ):
                self._halt.set()
                self._halted()

    def _cancel_message(self) -> str:
        return "Cancelled. Rows not yet done stay pending and can be resumed."

    def _stop(self, status: Status, message: str) -> bool:
        """Under the lock: end the running phase in `status` (paused, failed) with a reason."""
        if self.status is Status.RUNNING and self._change(status, message):
            self._halt.set()
            return True
        return False

    def resume(self, *, budget_usd: float | None = None) -> None:
        """Go on after a pause, a cancel or a stop, with a new budget if given. Returns at once; the new phase
        starts once the old one's in-flight work has landed (the job reads as running meanwhile)."""
        with self._lock:
            if budget_usd is not None:
                self._budget(budget_usd)
            if self.status not in RESUMABLE:
                return
            old = list(self._threads)
            self._phase += 1  # the old phase's supervisor must not settle the status any more
            phase = self._phase
            self._change(Status.RUNNING, None)
            self._done.clear()
        threading.Thread(target=self._relaunch_after, args=(old, phase), daemon=True).start()

    def _relaunch_after(self, old: list[threading.Thread], phase: int) -> None:
        for t in old:
            t.join()
        if not self._before_relaunch():
            with self._lock:
                self._ended_at = time.monotonic()
            self._settled()
            self._done.set()
            return
        self._launch(phase=phase)

    def close(self) -> None:
        """Give back what the job holds open (an HTTP client); a later resume opens it again."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no phase runs. True if none does."""
        return self._done.wait(timeout)
