"""Batch mode end to end against the local server's Files and Batch APIs, with the real openai SDK."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import openai
import pytest

from lib import batch
from lib.batch.files import BatchLimits, PreparedChunk, render, row_outcome, split
from lib.cost.pricing import Usage, cost, price_for
from lib.engine import RunSettings
from lib.engine.client import Endpoint
from lib.sim import expected_reply
from lib.sim.batch import parse_multipart
from lib.store import Store
from tests.engine_helpers import leads, wait_until
from tests.engine_helpers import plan as _plan

ROOT = Path(__file__).resolve().parent.parent
FAST = {"batch_validating_s": 0.02, "batch_in_progress_s": 0.2, "batch_finalizing_s": 0.02}


def plan(df, base_url: str):
    """A run plan whose answers are never cut by max_tokens, so each text equals the simulator's reply."""
    return _plan(df, base_url, max_tokens=200)


class Crash(Exception):
    """Raised from a step hook: the process 'dies' there."""


def settings(max_requests: int = 50_000, poll: float = 0.05) -> batch.BatchSettings:
    return batch.BatchSettings(
        poll_interval_s=poll, limits=BatchLimits(max_requests=max_requests), max_call_attempts=3
    )


def job_for(p, sim, data_dir, key: str, *, max_requests: int = 50_000, hook=None) -> batch.BatchJob:
    """A BatchJob on a fresh Store object (as a new process would open it)."""
    endpoint = Endpoint(api_key=key, base_url=sim.url)
    return batch.BatchJob(
        p, endpoint=endpoint, store=Store(data_dir), settings=settings(max_requests), hook=hook
    )


def expected(p) -> dict[int, str]:
    return {i.row_id: expected_reply(i.body["messages"], i.body["model"]) for i in p.items}


def sdk(sim, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=sim.url, max_retries=0, timeout=10)


def billed_rows(sim) -> Counter:
    return Counter(int(e["row_id"]) for e in sim.ledger())


def ledger_cost_at_half(sim, model: str | None = None) -> float:
    """The ledger at the Batch API's half price, each line at its own model's price (or `model`'s)."""
    return sum(
        cost(
            Usage(
                e["prompt_tokens"],
                e["completion_tokens"],
                e["cached_tokens"],
                0,
                e.get("cache_write_tokens", 0),
            ),
            price_for(model or e["model"]),
            batch=True,
        )
        for e in sim.ledger()
    )


# --- the big one: several batches, every row its own answer, cost at half the ledger ---------------------


def test_ten_thousand_rows_in_three_batches(sim, data_dir):
    sim.configure(**FAST, seed=4)
    key = "sk-test-batch-big"
    p = plan(leads(10_000), sim.url)
    job = job_for(p, sim, data_dir, key, max_requests=4_000).start()
    assert job.wait(45), job.snapshot()
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == ("finished", 10_000, 0, 0)
    assert len(job.batch_ids()) == 3 and [c.rows for c in job.progress()] == [4_000, 4_000, 2_000]
    want = expected(p)
    assert all(r.text == want[r.row_id] for r in job.rows())
    # Every line billed once, as a batch line, and our cost is the ledger's tokens at half price.
    ledger = sim.ledger()
    assert all(e["batch"] for e in ledger) and billed_rows(sim) == {i: 1 for i in range(1, 10_001)}
    assert snap.prompt_tokens == sum(e["prompt_tokens"] for e in ledger)
    assert snap.cost_usd == pytest.approx(ledger_cost_at_half(sim), rel=1e-9)
    saving = job.savings()
    assert saving.live_cost_usd == pytest.approx(2 * saving.cost_usd) and saving.saved_usd > 0
    # The server really answered out of order, and the store matches what the job shows.
    client = sdk(sim, key)
    first = client.batches.retrieve(job.batch_ids()[0])
    ids = [json.loads(x)["custom_id"] for x in client.files.content(first.output_file_id).text.splitlines()]
    assert ids != sorted(ids, key=lambda c: int(c.split("-")[1]))
    assert {r.row_id: r.text for r in Store(data_dir).rows(p.run_id)} == {
        r.row_id: r.text for r in job.rows()
    }


# --- crashes between journalled steps ----------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        "prepared",
        "upload:sent",
        "upload:saved",
        "create:sent",
        "create:saved",
        "poll",
        "merge:parsed",
        "merge:saved",
    ],
)
def test_crash_at_any_step_then_restart_loses_and_duplicates_nothing(sim, data_dir, step):
    """Crash at chunk 1's step, restart on the same data dir: one file and one batch per chunk, each row billed once."""
    sim.configure(**FAST)
    key = f"sk-test-batch-crash-{step.replace(':', '-')}"
    p = plan(leads(30), sim.url)

    def crash(name: str, index: int) -> None:
        if name == step and index == 1:
            raise Crash(step)

    first = job_for(p, sim, data_dir, key, max_requests=10, hook=crash).start()
    assert first.wait(20) and first.status == "failed" and "Crash" in (first.message or "")
    second = job_for(p, sim, data_dir, key, max_requests=10).start()
    assert second.wait(20), second.snapshot()
    snap = second.snapshot()
    assert (snap.status, snap.succeeded, snap.pending) == ("finished", 30, 0)
    want = expected(p)
    assert all(r.text == want[r.row_id] for r in second.rows())
    client = sdk(sim, key)
    batches = list(client.batches.list(limit=100))
    assert sorted(b.metadata[batch.META_CHUNK] for b in batches) == ["0", "1", "2"]  # no second batch
    assert len(list(client.files.list(purpose="batch"))) == 3  # no second upload
    assert billed_rows(sim) == {i: 1 for i in range(1, 31)}
    assert sorted(second.batch_ids()) == sorted(b.id for b in batches)


def test_cli_killed_while_polling_picks_up_the_same_batches(sim, tmp_path):
    """kill -9 the CLI while its batch runs at the server; the same command again merges it, once."""
    sim.configure(batch_validating_s=0.02, batch_in_progress_s=4.0, batch_finalizing_s=0.02)
    leads_csv = tmp_path / "leads.csv"
    leads_csv.write_text("First Name,Company\n" + "".join(f"P{i},Co {i}\n" for i in range(1, 121)))
    args = ["run", str(leads_csv), "--output", str(tmp_path / "out.csv"), "--template",
            "Say hi to {{ First Name }} at {{ Company }}.", "--mode", "batch", "--poll-interval", "0.1",
            "--batch-max-requests", "50", "--data-dir", str(tmp_path / "data")]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "lib", *args], **cli_env(sim, tmp_path, popen=True))
    db = tmp_path / "data" / "studio.sqlite3"
    assert wait_until(lambda: submitted(db) == 3, timeout=30), proc.stderr.read() if proc.poll() else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert len(list(sdk(sim, "sk-test-cli-batch").batches.list())) == 3
    again = subprocess.run([sys.executable, "-m", "lib", *args], timeout=60, **cli_env(sim, tmp_path))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["succeeded"], summary["pending"], summary["status"]) == (120, 0, "finished")
    assert len(summary["batch_ids"]) == 3
    assert len(list(sdk(sim, "sk-test-cli-batch").batches.list())) == 3  # picked up, not sent again
    assert billed_rows(sim) == {i: 1 for i in range(1, 121)}
    assert summary["cost_usd"] == pytest.approx(ledger_cost_at_half(sim), rel=1e-6)


def cli_env(sim, cwd: Path, *, popen: bool = False) -> dict:
    """subprocess keyword arguments running the CLI against the simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-cli-batch", OPENAI_BASE_URL=sim.url, PYTHONPATH=str(ROOT))
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} if popen else {"capture_output": True}
    return {"cwd": cwd, "env": env, "text": True, **pipes}


def submitted(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM batch_chunks WHERE batch_id IS NOT NULL").fetchone()[0]
    except sqlite3.Error:
        return 0


# --- partial failure, expiry, cancel -----------------------------------------------------------------


def test_line_errors_and_expiry_become_failed_rows_then_resend_live_finishes_them(sim, data_dir):
    sim.configure(**FAST, batch_expire_after=15)
    key = "sk-test-batch-partial"
    marked = {3, 7}
    p = plan(
        leads(40, company=lambda i: f"Co {i}" + (" [[sim:batch_error]]" if i in marked else "")), sim.url
    )
    job = job_for(p, sim, data_dir, key, max_requests=20).start()
    assert job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.pending, snap.succeeded + snap.failed) == ("finished", 0, 40)
    assert [c.status for c in job.progress()] == ["merged", "merged"]
    rows = {r.row_id: r for r in job.rows()}
    assert all(rows[i].status == "failed" and "(500)" in rows[i].error and rows[i].retryable for i in marked)
    expired = [r for r in rows.values() if r.status == "failed" and "expired" in (r.error or "")]
    assert len(expired) == 10  # 5 lines of each 20-line batch never ran
    assert snap.failed == 12 and billed_rows(sim) == {i: 1 for i in rows if rows[i].status == "succeeded"}
    batch_cost = snap.cost_usd

    live = job.resend_live(RunSettings(workers=8, timeout_s=5))
    assert live is not None and job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed) == ("finished", 40, 0)
    want = expected(p)
    assert all(r.text == want[r.row_id] for r in job.rows())
    assert billed_rows(sim) == {i: 1 for i in range(1, 41)}  # failed batch lines were not billed
    live_lines = [e for e in sim.ledger() if not e.get("batch")]
    assert len(live_lines) == 12 and snap.cost_usd > batch_cost
    assert job.resend_live() is None  # nothing left to send


def test_cancel_keeps_what_ran_and_resume_sends_the_rest(sim, data_dir):
    sim.configure(batch_validating_s=0.02, batch_in_progress_s=3.0, batch_finalizing_s=0.02)
    p = plan(leads(200), sim.url)
    job = job_for(p, sim, data_dir, "sk-test-batch-cancel").start()
    assert wait_until(lambda: any(c.completed > 20 for c in job.progress()), timeout=20)
    job.cancel()
    assert job.wait(20)
    snap = job.snapshot()
    assert snap.status == "cancelled" and 0 < snap.succeeded < 200 and snap.failed == 0
    assert snap.succeeded + snap.pending == 200  # what did not run stays pending, not failed
    sim.configure(batch_in_progress_s=0.1)
    job.resume()
    assert wait_until(lambda: job.status == "finished", timeout=20) and job.wait(5)
    assert job.snapshot().succeeded == 200 and len(job.batch_ids()) == 2
    assert billed_rows(sim) == {i: 1 for i in range(1, 201)}


# --- the command line --------------------------------------------------------------------------------


def test_cli_batch_mode_end_to_end(sim, tmp_path):
    sim.configure(**FAST)
    leads_csv = tmp_path / "leads.csv"
    leads_csv.write_text("First Name,Company\n" + "".join(f"P{i},Co {i}\n" for i in range(1, 31)))
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lib", "run", str(leads_csv), "--output", str(out), "--template",
         "Say hi to {{ First Name }} at {{ Company }}.", "--mode", "batch", "--poll-interval", "0.1"],
        timeout=60, **cli_env(sim, tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["rows"], summary["succeeded"], summary["status"], summary["mode"]) == (
        30,
        30,
        "finished",
        "batch",
    )
    assert len(summary["batch_ids"]) == 1 and summary["requests_sent"] == 30
    assert summary["cost_usd"] == pytest.approx(ledger_cost_at_half(sim), rel=1e-6)
    assert summary["cost_live_usd"] == pytest.approx(2 * summary["cost_usd"], rel=1e-6)
    rows = json.loads(out.read_text())
    assert [r["enrich_status"] for r in rows] == ["succeeded"] * 30
    bad = subprocess.run(
        [sys.executable, "-m", "lib", "run", str(leads_csv), "--output", str(out), "--template", "{{ Company }}",
         "--mode", "batch", "--budget", "0.0000001"],
        timeout=60, **cli_env(sim, tmp_path),
    )  # fmt: skip
    assert bad.returncode == 2 and "worst case" in bad.stderr


# --- pure parts: splitting, parsing --------------------------------------------------------------------


def test_split_respects_count_and_byte_limits_and_is_reproducible():
    p = plan(leads(25), "http://x/v1")
    by_count = split(p.items, BatchLimits(max_requests=10))
    assert [len(c.row_ids) for c in by_count] == [10, 10, 5]
    line = len(render(p.items[:1]))
    by_bytes = split(p.items, BatchLimits(max_bytes=line * 4))
    assert all(c.nbytes <= line * 4 + 2 for c in by_bytes) and sum(len(c.row_ids) for c in by_bytes) == 25
    again = split(p.items, BatchLimits(max_requests=10))
    assert again == by_count
    items = {i.row_id: i for i in p.items}
    chunk: PreparedChunk = by_count[1]
    import hashlib

    assert hashlib.sha256(render([items[r] for r in chunk.row_ids])).hexdigest() == chunk.sha256


def test_error_lines_map_to_reasons():
    item = plan(leads(1), "http://x/v1").items[0]
    price = price_for("gpt-4o-mini")
    expired = {"custom_id": "row-1", "response": None, "error": {"code": "batch_expired", "message": "x"}}
    row, cache = row_outcome(item, expired, price, None)
    assert row.status == "failed" and row.retryable and "expired" in row.error and cache is None
    cancelled = {"custom_id": "row-1", "response": None, "error": {"code": "batch_cancelled", "message": "x"}}
    assert row_outcome(item, cancelled, price, None) == (None, None)
    too_long = {
        "custom_id": "row-1",
        "response": {
            "status_code": 400,
            "body": {"error": {"message": "m", "code": "context_length_exceeded"}},
        },
    }
    row, _ = row_outcome(item, too_long, price, None)
    assert not row.retryable and "too long" in row.error


def test_multipart_parser_reads_what_the_sdk_sends(sim):
    client = sdk(sim, "sk-test-batch-files")
    data = b'{"a": 1}\n' * 1000 + "é\r\n--tricky".encode()
    made = client.files.create(file=("in put.jsonl", data, "application/jsonl"), purpose="batch")
    assert (made.filename, made.bytes, made.purpose) == ("in put.jsonl", len(data), "batch")
    assert client.files.content(made.id).content == data
    assert [f.id for f in client.files.list(purpose="batch")] == [made.id]
    assert client.files.delete(made.id).deleted
    assert parse_multipart(b"", "application/json") is None
    other = sdk(sim, "sk-test-batch-other")
    assert list(other.files.list()) == []  # files belong to the key that uploaded them


# --- the run page --------------------------------------------------------------------------------------


def test_run_page_sends_as_batch_and_shows_its_batches(sim, data_dir, monkeypatch):
    from lib import engine
    from lib.views import prompt_draft
    from tests.apptest_helpers import (
        choose_prompt,
        goto,
        new_app,
        patch_pages_directory,
        upload,
        wait_for_run,
        workspace,
    )

    patch_pages_directory(monkeypatch)
    monkeypatch.setenv("LEAD_STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-page")
    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    sim.configure(**FAST)
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    assert any(c.value.startswith("As a batch: $") for c in at.caption)
    at.checkbox(key="r_batch").check().run()
    assert at.button(key="btn_start").label == "Send as batch"
    at.button(key="btn_start").click().run()
    job = engine.get_job(workspace(at).run_id)
    assert isinstance(job, batch.BatchJob)
    assert wait_for_run(at) == "finished"
    captions = "\n".join(c.value for c in at.caption)
    assert "Batch 1 · 4 rows · merged" in captions and "if sent live" in captions
    assert all(e["batch"] for e in sim.ledger()) and len(sim.ledger()) == 4
    # The suggestion appears for big lists only.
    assert prompt_draft.suggest_batch(_quote(rows=4, high=0.01)) is None
    assert "save about $2.50" in prompt_draft.suggest_batch(_quote(rows=6_000, low=5.0, high=9.0))


def _quote(*, rows: int, low: float = 0.0, high: float = 0.0):
    from lib.cost.quote import Quote

    return Quote(rows, 0, True, None, 0, 0, low, high, "test")
