"""The process-wide registry of jobs, so a refreshed page or a second tab re-attaches to a running job.

One job per id: starting a run whose job is still active returns that job (a double-clicked Start makes
one run), and only the caller that made the job starts it. Every kind registers here (live and batch runs
by run id, website readings by their own id), so a page finds any of them with `get`. The registry is
shared by every browser session of the server, so finished jobs are forgotten after an hour (their results
stay in the store).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from lib.jobs.core import Job

J = TypeVar("J", bound=Job)
FORGET_AFTER_S = 3600.0


class Registry:
    """Jobs by id. Thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def register(self, job_id: str, make: Callable[[], J]) -> tuple[J | Job, bool]:
        """(the active job of this id, False), or (a new one from `make`, now registered, True)."""
        self.forget_finished()
        with self._lock:
            existing = self._jobs.get(job_id)
            if existing is not None and existing.active:
                return existing, False
            job = self._jobs[job_id] = make()
        if existing is not None:
            existing.close()  # replaced: what it held (an HTTP client) goes back
        return job, True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def forget_finished(self, older_than_s: float = FORGET_AFTER_S) -> None:
        """Drop jobs that ended more than `older_than_s` ago."""
        now = time.monotonic()
        gone = []
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                ended = job._ended_at
                if not job.active and ended is not None and now - ended > older_than_s:
                    gone.append(self._jobs.pop(job_id))
        for job in gone:
            job.close()


jobs = Registry()  # the process's registry


def register(job_id: str, make: Callable[[], J]) -> tuple[J | Job, bool]:
    return jobs.register(job_id, make)


def get_job(job_id: str) -> Job | None:
    return jobs.get(job_id)


def forget_finished(older_than_s: float = FORGET_AFTER_S) -> None:
    jobs.forget_finished(older_than_s)
