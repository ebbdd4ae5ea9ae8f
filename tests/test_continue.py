"""One way to continue a run (lib.engine.resume.continue_run), whatever stopped it, and the defects of issue
22 it ends: each of these failed before. A run that must be in progress is held at the server (the
simulator's hold gate) or at the store (a gate in front of a read), never raced against the clock."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

import pytest

from lib import batch, engine
from lib.batch.files import BatchLimits
from lib.cost.pricing import Usage, cost
from lib.engine import Endpoint, RunSettings, request_hash
from lib.engine.governor import Governor
from lib.engine.resume import continue_run
from lib.sim import SimConfig, SimServer
from lib.store import Store
from tests.engine_helpers import leads, plan, run, wait_until
from tests.test_guarantees import FailingDisk

FAST_BATCH = {"batch_validating_s": 0.02, "batch_in_progress_s": 0.2, "batch_finalizing_s": 0.02}


@pytest.fixture
def other():
    """A second endpoint: the connection the sidebar shows now."""
    server = SimServer(SimConfig()).start()
    yield server
    server.stop()


def billed(*servers) -> Counter:
    return Counter(int(e["row_id"]) for s in servers for e in s.ledger() if e.get("row_id") is not None)


def start(sim, df, store, key, settings, **plan_kwargs) -> engine.Job:
    return engine.start(
        plan(df, sim.url, **plan_kwargs),
        endpoint=Endpoint(api_key=key, base_url=sim.url),
        settings=settings,
        store=store,
        governor=Governor(),
    )


def test_resume_after_pause_goes_on_while_answers_are_in_flight_with_the_budget_of_the_same_click(
    sim, data_dir
):
    sim.configure(hold=True)
    store = Store(data_dir)
    endpoint = Endpoint(api_key="sk-test-continue-pause", base_url=sim.url)
    job = start(sim, leads(6), store, endpoint.api_key, RunSettings(workers=2, timeout_s=60, budget_usd=1.0))
    # Until one request in this model's shape has succeeded here, requests go one at a time: one is held.
    assert wait_until(lambda: sim.stats()["held_now"] == 1)
    job.pause()
    assert job.snapshot().status == "paused" and job.active  # an answer still to land
    assert continue_run(store, job.id, endpoint, budget_usd=2.5) is job
    snap = job.snapshot()
    assert (snap.status, snap.budget_usd) == ("running", 2.5)  # before: still paused, the old budget
    sim.configure(hold=False)
    assert job.wait(30)
    assert (job.snapshot().status, job.snapshot().succeeded) == ("finished", 6)
    assert billed(sim) == {i: 1 for i in range(1, 7)}
    assert store.run(job.id).meta["run_settings"]["budget_usd"] == 2.5  # a later restart continues with it


def test_answers_a_failing_disk_held_back_are_kept_when_the_run_goes_on_through_another_endpoint(
    sim, other, data_dir
):
    sim.configure(hold=True)
    store = Store(data_dir)
    disk = FailingDisk(store._db, "database or disk is full")
    store._db = disk
    job = start(sim, leads(8), store, "sk-test-continue-disk", RunSettings(workers=4, timeout_s=60))
    assert wait_until(lambda: sim.stats()["held_now"] >= 1)
    disk.failing.set()
    sim.configure(hold=False)  # the answers in flight come back while the disk refuses them
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.status == "paused" and "the disk is full" in snap.message
    held = set(billed(sim))
    assert held and snap.succeeded == 0  # paid for, and held in memory
    disk.failing.clear()
    moved = Endpoint(api_key="sk-test-continue-disk", base_url=other.url)  # the key or URL fixed meanwhile
    assert continue_run(store, job.id, moved) is job
    assert job.wait(30)
    assert (job.snapshot().status, job.snapshot().succeeded) == ("finished", 8)
    assert billed(sim, other) == {i: 1 for i in range(1, 9)}  # before: the held rows were bought again
    assert set(billed(other)) == set(range(1, 9)) - held
    assert {r.row_id for r in Store(data_dir).rows(job.id) if r.status == "succeeded"} == set(range(1, 9))
    assert store.run(job.id).meta["base_url"] == other.url
    for item in job.plan.items:  # new answers are cached under the endpoint they came from
        came_from = sim.url if item.row_id in held else other.url
        assert store.cached(request_hash(item.body, came_from)) is not None, item.row_id


def test_a_continued_run_whose_rows_were_all_done_is_finished_in_the_store(sim, data_dir):
    done = run(sim, leads(5), data_dir)
    store = Store(data_dir)
    store.set_run_status(done.id, "running", None)  # as left by a process killed before its last write
    job = continue_run(store, done.id, Endpoint(api_key="sk-test-engine", base_url=sim.url))
    assert job is not done and job.wait(10)
    assert job.snapshot().status == "finished"
    assert store.run(done.id).status == "finished"  # before: "running" for ever, History offered Resume
    assert len(sim.ledger()) == 5  # nothing sent again


class GatedStore(Store):
    """A store whose paid-answer lookup waits for a gate the test opens: a worker is then held between
    taking its row and asking for the budget."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.reached = threading.Event()
        self.gate = threading.Event()

    def cached(self, request_hash: str):
        self.reached.set()
        assert self.gate.wait(30)
        return super().cached(request_hash)


def test_a_cancel_stays_cancelled_when_a_worker_then_finds_the_budget_spent(sim, data_dir):
    store = GatedStore(data_dir)
    settings = RunSettings(workers=1, timeout_s=10, budget_usd=1e-9)  # no request fits
    job = start(sim, leads(3), store, "sk-test-continue-cancel", settings)
    assert store.reached.wait(10)
    job.cancel()
    store.gate.set()
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.status == "cancelled" and "Cancelled" in snap.message  # before: "paused", Budget reached
    assert store.run(job.id).status == "cancelled" and len(sim.ledger()) == 0


def test_a_batch_runs_failed_rows_go_again_with_its_settings_through_the_connection_shown_now(
    sim, other, data_dir
):
    sim.configure(**FAST_BATCH)
    marked = {2, 5}
    p = plan(
        leads(8, lambda i: f"Co {i}" + (" [[sim:batch_error]]" if i in marked else "")),
        sim.url,
        max_tokens=200,
    )
    settings = RunSettings(workers=3, rpm=600, budget_usd=4.0, timeout_s=20)
    p = dataclasses.replace(p, meta={**p.meta, "run_settings": dataclasses.asdict(settings)})
    store = Store(data_dir)
    key = "sk-test-continue-batch"
    job = batch.start(
        p,
        endpoint=Endpoint(api_key=key, base_url=sim.url),
        store=store,
        settings=batch.BatchSettings(poll_interval_s=0.05, limits=BatchLimits(), max_call_attempts=3),
    )
    assert job.wait(30) and job.snapshot().failed == 2
    again = continue_run(store, p.run_id, Endpoint(api_key=key, base_url=other.url), retry_failed=True)
    assert again is job and job.wait(30)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed) == ("finished", 8, 0)
    assert snap.budget_usd == 4.0  # before: no budget, no ceilings (default settings)
    assert job._live is not None and job._live.settings == settings
    assert set(billed(other)) == marked  # before: sent to the batch's old endpoint
    for item in p.items:
        if item.row_id in marked:
            assert store.cached(request_hash(item.body, other.url)) is not None


def test_a_batch_run_with_no_job_here_sends_its_failed_rows_again_live(sim, other, data_dir):
    """After a restart: only the store knows the run; Retry failed rows still takes the run's settings."""
    sim.configure(**FAST_BATCH)
    p = plan(
        leads(4, lambda i: f"Co {i}" + (" [[sim:batch_error]]" if i == 3 else "")), sim.url, max_tokens=200
    )
    settings = RunSettings(workers=2, budget_usd=3.0)
    p = dataclasses.replace(p, meta={**p.meta, "run_settings": dataclasses.asdict(settings)})
    key = "sk-test-continue-batch-restart"
    first = batch.BatchJob(
        p,
        endpoint=Endpoint(api_key=key, base_url=sim.url),
        store=Store(data_dir),
        settings=batch.BatchSettings(poll_interval_s=0.05, max_call_attempts=3),
    ).start()  # not registered: as if another process ran it
    assert first.wait(30) and first.snapshot().failed == 1
    store = Store(data_dir)
    job = continue_run(store, p.run_id, Endpoint(api_key=key, base_url=other.url), retry_failed=True)
    assert job.kind == "batch" and job.wait(30)
    assert (job.snapshot().succeeded, job.snapshot().budget_usd) == (4, 3.0)
    assert set(billed(other)) == {3}


def test_continue_with_retry_failed_resends_only_the_failed_rows_of_a_finished_run(sim, data_dir):
    df = leads(12, company=lambda i: f"Company {i} [[sim:fail_first=2]]" if i % 4 == 0 else f"Company {i}")
    job = start(sim, df, Store(data_dir), "sk-test-continue-retry", RunSettings(workers=4, max_attempts=2))
    assert job.wait(30) and job.snapshot().failed == 3
    before = billed(sim)
    assert continue_run(job.store, job.id, job.endpoint, retry_failed=True) is job
    assert job.wait(30) and (job.snapshot().succeeded, job.snapshot().failed) == (12, 0)
    assert {r for r, n in billed(sim).items() if n != before.get(r, 0)} == {4, 8, 12}


# --- the budget counts what may have been billed ---------------------------------------------------------


def test_with_dropped_connections_billed_the_budget_still_holds_against_the_servers_bill(sim, data_dir):
    """10% of connections drop after the server made (and billed) the answer: each such request keeps its
    worst case as spent, so what the server billed never passes the budget, and the run says how much of its
    cost is an estimate."""
    sim.configure(latency_ms=5, p_drop=0.1, drops_billed=True, seed=23)
    budget = 0.05
    df = leads(2000)
    settings = RunSettings(workers=16, timeout_s=10, budget_usd=budget, max_attempts=6)
    job = run(sim, df, data_dir, settings=settings, timeout=120)
    snap = job.snapshot()
    assert snap.status == "paused" and "Budget reached" in snap.message
    entries = sim.ledger()
    assert any(e["kind"] == "drop" for e in entries), "no connection dropped: the case did not happen"
    p = plan(df, sim.url)
    server_billed = cost(
        sum(
            (Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"]) for e in entries), Usage()
        ),
        p.price,
    )
    assert server_billed <= budget  # before: $0.0539 billed against a $0.05 budget
    assert snap.cost_usd <= budget and snap.cost_usd >= server_billed
    assert snap.estimated_usd > 0
    assert Store(data_dir).run(job.id).meta["estimated_usd"] == pytest.approx(snap.estimated_usd)
