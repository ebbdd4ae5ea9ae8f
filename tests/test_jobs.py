"""The job core (lib/jobs): the status table, the tally, a job's lifecycle and the registry, without HTTP."""

from __future__ import annotations

import itertools
import threading

import pytest

from lib.cost.pricing import Usage
from lib.jobs import ACTIVE, Job, Registry, Status, Tally, allowed, check
from lib.jobs.status import IllegalTransition
from lib.store import RowRecord

P, R, Z, C, F, X = (
    Status.PENDING,
    Status.RUNNING,
    Status.PAUSED,
    Status.CANCELLED,
    Status.FINISHED,
    Status.FAILED,
)
ALLOWED = {
    (P, R), (P, C), (P, F), (P, X),
    (R, R), (R, Z), (R, C), (R, F), (R, X),
    (Z, Z), (Z, R), (Z, C), (Z, X),
    (C, C), (C, R),
    (F, R),
    (X, X), (X, R), (X, C),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_every_status_change_is_allowed_or_refused_by_the_table(old, new):
    assert allowed(old, new) == ((old, new) in ALLOWED)
    if (old, new) in ALLOWED:
        assert check(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            check(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [(C, Z), (C, F), (C, X), (F, Z), (F, C), (Z, F), (P, Z), (X, F)],
    ids=lambda s: str(s),
)
def test_the_changes_that_lost_a_status_before_are_refused(old, new):
    """A cancelled run never becomes paused (the budget check) nor finished; finished only from running."""
    assert not allowed(old, new)


def test_a_status_reads_as_its_word():
    assert Status.RUNNING == "running" and f"{Status.PAUSED}" == "paused" and set(ACTIVE) == {P, R}


# --- the tally ----------------------------------------------------------------------------------------------

ANSWER = RowRecord(1, "succeeded", "hi", usage=Usage(10, 5, 2), cost_usd=0.5, service_tier="default")


@pytest.mark.parametrize(
    ("rows", "counts", "tokens", "cost"),
    [
        ([RowRecord(1)], (0, 0, 0, 1, 0), 0, 0.0),
        ([ANSWER], (1, 0, 0, 0, 0), 15, 0.5),
        ([RowRecord(1, "succeeded", "x", flags=("quality:too_long",), cost_usd=0.1)], (1, 0, 0, 0, 1), 0, 0.1),
        ([RowRecord(1, "failed", error="no")], (0, 1, 0, 0, 0), 0, 0.0),
        ([RowRecord(1, "skipped")], (0, 0, 1, 0, 0), 0, 0.0),
        ([RowRecord(1, "succeeded", "x", usage=Usage(10, 5), cost_usd=0.5, from_cache=True)], (1, 0, 0, 0, 0), 0, 0.0),
        ([ANSWER, RowRecord(2, "failed", error="x", flags=("refusal",))], (1, 1, 0, 0, 0), 15, 0.5),
    ],
    ids=["pending", "answer", "flagged", "failed", "skipped", "reused-costs-nothing", "refusal-not-flagged"],
)  # fmt: skip
def test_the_tally_counts_rows_and_what_they_cost(rows, counts, tokens, cost):
    t = Tally()
    t.recount(rows)
    assert (t.succeeded, t.failed, t.skipped, t.pending, t.flagged) == counts
    assert t.prompt_tokens + t.completion_tokens == tokens and t.cost == pytest.approx(cost)


def test_the_tally_follows_a_row_that_changes_and_keeps_its_estimate_apart():
    t = Tally()
    t.recount([RowRecord(1), RowRecord(2)])
    t.replace(RowRecord(1), ANSWER)
    t.estimated += 0.25  # a request whose outcome is unknown, at its worst case
    assert (t.succeeded, t.pending, t.cost, t.answered_cost) == (1, 1, 0.75, 0.5)
    assert t.as_meta()["estimated_usd"] == 0.25 and t.as_meta()["cost_usd"] == 0.75
    t.recount([ANSWER])  # a recount is over rows; the estimate is the job's
    assert t.cost == 0.75


# --- a job's lifecycle, with workers held by a gate the test opens ----------------------------------------


class GatedJob(Job):
    """`n` units of work; each worker takes one and waits for the gate before it is done."""

    kind = "test"

    def __init__(self, n: int) -> None:
        super().__init__("gated")
        self.todo = list(range(n))
        self.done: list[int] = []
        self.gate = threading.Event()
        self.settled: list[str] = []

    def _has_work(self) -> bool:
        return bool(self.todo)

    def _worker_count(self) -> int:
        return 2

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._halt.is_set() or not self.todo:
                    return
                unit = self.todo.pop(0)
            self.gate.wait(10)
            with self._lock:
                self.done.append(unit)

    def _settle(self):
        return (Status.PAUSED, "Paused.") if self.todo else (Status.FINISHED, None)

    def _settled(self) -> None:
        self.settled.append(self.status)


def test_pause_then_resume_while_work_is_in_flight_goes_on_at_once():
    job = GatedJob(5).start()
    assert job.status is R
    job.pause()
    assert job.status is Z and job.active  # two units still in flight
    job.resume()
    assert job.status is R  # not a no-op while the old phase finishes
    job.gate.set()
    assert job.wait(10) and job.status is F and sorted(job.done) == [0, 1, 2, 3, 4]
    assert job.settled[-1] == "finished"


def test_a_cancel_during_the_resume_wait_stands():
    job = GatedJob(5).start()
    job.pause()
    job.resume()
    job.cancel()
    job.gate.set()
    assert job.wait(10) and job.status is C and len(job.done) == 2  # only what was in flight
    assert job.settled[-1] == "cancelled"


def test_nothing_to_do_is_finished_and_settled_at_once():
    job = GatedJob(0).start()
    assert job.wait(1) and job.status is F and job.settled == ["finished"]


def test_a_refused_change_leaves_status_and_message_alone():
    job = GatedJob(3).start()
    job.cancel()
    with job._lock:
        assert not job._change(Status.PAUSED, "Budget reached")
    assert (job.status, job.message) == (C, job._cancel_message())
    job.gate.set()
    assert job.wait(10)


# --- the registry -------------------------------------------------------------------------------------------


def test_the_registry_owns_a_run_id_one_active_job_at_a_time():
    registry = Registry()
    first, made = registry.register("run", lambda: GatedJob(2).start())
    again, made_again = registry.register("run", lambda: GatedJob(2).start())
    assert made and not made_again and again is first  # a double-clicked Start: one job
    first.cancel()
    first.gate.set()
    assert first.wait(10)
    registry.forget_finished(older_than_s=3600)
    assert registry.get("run") is first  # ended a moment ago: a refreshed page still finds it
    replaced, made = registry.register("run", lambda: GatedJob(0))
    assert made and replaced is not first  # an ended job's id goes to the next run of it
    registry.forget_finished(older_than_s=-1)
    assert registry.get("run") is replaced  # never started: not forgotten
