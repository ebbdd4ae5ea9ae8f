"""Each answer's latency (RowRecord.latency_s): measured by the engine, shared by a pack, kept in the store."""

from __future__ import annotations

import sqlite3

from lib import engine
from lib import store as store_module
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.templates import PromptSpec
from lib.store import RowRecord, Store
from tests.engine_helpers import TEMPLATE, leads, run

SLOW_MS = 400


def slow_row(i: int) -> str:
    return f"Company {i} [[sim:latency={SLOW_MS}]]" if i == 2 else f"Company {i}"


def test_a_slow_answer_has_the_latency_of_its_request(sim, data_dir):
    job = run(sim, leads(4, slow_row), data_dir)
    rows = {r.row_id: r for r in job.rows()}
    assert all(r.status == "succeeded" for r in rows.values())
    assert SLOW_MS / 1000 <= rows[2].latency_s < SLOW_MS / 1000 + 2.0
    assert all(rows[i].latency_s < SLOW_MS / 1000 for i in (1, 3, 4))
    stored = {r.row_id: r.latency_s for r in job.store.rows(job.id)}
    assert stored == {i: r.latency_s for i, r in rows.items()}  # journalled as measured
    job.store.close()


def test_the_governors_wait_is_not_latency(sim, data_dir):
    # 60 RPM client-side: past the first probe requests, each waits about a second for the governor, then
    # the server answers at once.
    job = run(sim, leads(8), data_dir, settings=engine.RunSettings(workers=8, rpm=60, timeout_s=5))
    assert job.snapshot().elapsed_s > 1.0
    assert all(r.latency_s is not None and r.latency_s < 0.5 for r in job.rows())
    job.store.close()


def test_a_reused_answer_has_no_latency(sim, data_dir):
    first = run(sim, leads(3, slow_row), data_dir, run_id="first")
    again = run(sim, leads(3, slow_row), data_dir, run_id="again")
    assert all(r.latency_s is not None for r in first.rows())
    assert all(r.from_cache and r.latency_s is None for r in again.rows())
    first.store.close()
    again.store.close()


def test_rows_of_a_pack_share_the_packs_request_time(sim, data_dir):
    spec = PromptSpec(name="pack", template=TEMPLATE)
    plan = plan_run(
        leads(4, slow_row), spec, RunOptions(model="gpt-4o-mini", max_tokens=60, rows_per_request=2),
        base_url=sim.url,
    )  # fmt: skip
    assert len(plan.packs) == 2
    job = engine.Job(
        plan,
        endpoint=Endpoint(api_key="sk-test", base_url=sim.url),
        settings=engine.RunSettings(workers=2, timeout_s=5),
        store=Store(data_dir),
        governor=Governor(),
    ).start()
    assert job.wait(30)
    rows = {r.row_id: r for r in job.rows()}
    assert all("packed" in r.flags for r in rows.values())
    assert rows[1].latency_s == rows[2].latency_s >= SLOW_MS / 1000  # row 2's pack was slow
    assert rows[3].latency_s == rows[4].latency_s < SLOW_MS / 1000
    job.store.close()


def test_a_store_made_before_latency_gains_the_column(tmp_path):
    old = store_module._SCHEMA.replace("    latency_s REAL,\n", "")
    assert old != store_module._SCHEMA
    db = sqlite3.connect(tmp_path / store_module.DB_NAME)
    db.executescript(old)
    db.execute("INSERT INTO runs VALUES ('r', 0, 0, 'pending', NULL, '{}')")
    db.execute("INSERT INTO rows (run_id, row_id, input_json, status) VALUES ('r', 1, '{}', 'succeeded')")
    db.commit()
    db.close()
    s = Store(tmp_path)
    assert s.rows("r")[0].latency_s is None  # an old answer has no latency: unknown, not 0
    s.record("r", RowRecord(1, status="succeeded", text="x", latency_s=0.75))
    s.close()
    reopened = Store(tmp_path)
    assert reopened.rows("r")[0].latency_s == 0.75
    reopened.close()
