"""lib.engine.resume: Resume and Retry act on the connection shown now, with the run's own settings."""

from __future__ import annotations

import csv
import dataclasses
import io

from lib import engine
from lib.engine import Endpoint, RunSettings, runs
from lib.engine.resume import continue_run, stored_settings
from lib.leads import read_leads
from lib.prompts.library import PromptLibrary
from lib.sim import SimConfig, SimServer
from lib.store import Store
from tests.conftest import SIM_TODAY
from tests.leadfiles import apollo_rows


def _plan(base_url: str, settings: RunSettings):
    buf = io.StringIO()
    csv.writer(buf).writerows(apollo_rows(6))
    df = read_leads(buf.getvalue().encode(), "leads.csv").df
    meta = {"run_settings": dataclasses.asdict(settings)}
    options = runs.RunOptions(model="gpt-4o-mini", max_tokens=80)
    return runs.plan_run(df, PromptLibrary().load("Icebreaker"), options, base_url=base_url, meta=meta)


def test_failed_rows_are_retried_on_the_endpoint_shown_now(sim, data_dir):
    other = SimServer(SimConfig(today=SIM_TODAY)).start()
    try:
        sim.configure(p_500=1.0)
        store = Store(data_dir)
        settings = RunSettings(workers=2, max_attempts=2)
        first = Endpoint("sk-test-resume-0001", sim.url)
        plan = _plan(sim.url, settings)
        job = engine.start(plan, endpoint=first, settings=settings, store=store)
        assert job.wait(60) and job.snapshot().failed == 6
        sent_to_first = sim.stats()["total"]
        again = continue_run(
            store, plan.run_id, Endpoint("sk-test-resume-0001", other.url), retry_failed=True
        )
        assert again.wait(60) and again.snapshot().succeeded == 6
        assert sim.stats()["total"] == sent_to_first, "nothing more went to the old endpoint"
        assert sorted(int(e["row_id"]) for e in other.ledger()) == [1, 2, 3, 4, 5, 6]
        assert store.run(plan.run_id).meta["base_url"] == other.url
    finally:
        other.stop()


def test_a_run_with_no_job_here_resumes_with_the_settings_it_started_with(sim, data_dir):
    store = Store(data_dir)
    settings = RunSettings(workers=3, rpm=120, budget_usd=1.5)
    plan = _plan(sim.url, settings)
    store.create_run(
        plan.run_id,
        dict(plan.meta),
        [(i.row_id, i.request_hash, i.body, plan.inputs[i.row_id], "pending") for i in plan.items],
    )
    assert stored_settings(store, plan.run_id) == settings  # as after a restart: only the store knows
    job = continue_run(store, plan.run_id, Endpoint("sk-test-resume-0002", sim.url))
    assert job.settings == settings
    assert job.wait(60) and job.snapshot().succeeded == 6
