"""The promises of docs/guarantees.md, proven against the local server, real HTTP and real processes.

1. No row is lost.  2. Nothing is paid twice.  3. Cost == reported usage; the budget is never crossed.
4. Rate limits are paced; quota and key problems stop the run at once.  5. The key never leaks.
(6, exports carry no live formulas, is in tests/test_hostile.py.)
Every fault case ends with the same invariants checked by `assert_correct_final_state`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from lib import engine, export
from lib.cost.pricing import Usage, cost, price_for
from lib.engine.client import Endpoint, make_client, mask_key, shared_fingerprints
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run, results_frame
from lib.leads import read_leads
from lib.prompts.library import PromptLibrary
from lib.sim import SimConfig, SimProcess, expected_reply
from lib.store import Store
from tests.conftest import SIM_TODAY
from tests.engine_helpers import leads, plan, run, wait_until
from tests.leadfiles import apollo_csv

ROOT = Path(__file__).resolve().parent.parent


# --- shared checks -----------------------------------------------------------------------------------


def expected_texts(p: engine.RunPlan) -> dict[int, str]:
    """What the simulator answers each row: a pure function of the exact request."""
    return {i.row_id: expected_reply(i.body["messages"], i.body["model"]) for i in p.items}


def billed(sim, kind: str | None = None) -> Counter:
    """Billed answers per row id (optionally only those of one kind: "ok" or "malformed")."""
    return Counter(int(e["row_id"]) for e in sim.ledger() if kind is None or e["kind"] == kind)


def ledger_usage(entries: list[dict]) -> Usage:
    total = Usage()
    for e in entries:
        total += Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"], e["reasoning_tokens"])
    return total


def assert_correct_final_state(job: engine.Job, p: engine.RunPlan, sim, data_dir: Path) -> None:
    """The invariants every run must satisfy, whatever the server did."""
    snap = job.snapshot()
    rows = {r.row_id: r for r in job.rows()}
    # 1. Every input row has exactly one state, keyed by its row id.
    assert set(rows) == set(p.inputs)
    assert snap.succeeded + snap.failed + snap.pending + snap.skipped == snap.total == len(p.inputs)
    assert all(r.status in ("succeeded", "failed", "pending", "skipped") for r in rows.values())
    assert all(r.error for r in rows.values() if r.status == "failed"), "a failed row must say why"
    # Each answer belongs to its own row, never to a neighbour.
    expected = expected_texts(p)
    for row_id, row in rows.items():
        if row.status == "succeeded":
            assert row.text == expected[row_id], f"row {row_id} got another row's answer"
    # The journal on disk says exactly what the job says.
    stored = {r.row_id: (r.status, r.text) for r in Store(data_dir).rows(job.id)}
    assert stored == {r.row_id: (r.status, r.text) for r in rows.values()}
    # The server only billed rows of this run, and at most once each (no timeout was shorter than an answer).
    entries = sim.ledger()
    paid = Counter(int(e["row_id"]) for e in entries if e["kind"] == "ok")
    assert set(paid) <= set(p.inputs)
    assert all(n == 1 for n in paid.values()), f"paid twice: {[r for r, n in paid.items() if n > 1]}"
    # 3. Tokens shown == tokens the API reported in every answer we could read (a malformed body is
    # billed but unreadable: its usage cannot be known, see docs/guarantees.md).
    readable = [e for e in entries if e["kind"] == "ok"]
    usage = ledger_usage(readable)
    assert (snap.prompt_tokens, snap.completion_tokens, snap.cached_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
    )
    # The cost shown is those answers' cost plus, as a labelled estimate, the worst case of each request whose
    # outcome is unknown (dropped, timed out, unreadable): never less than what the server billed.
    answered = snap.cost_usd - snap.estimated_usd
    assert answered == pytest.approx(cost(usage, p.price), rel=1e-9, abs=1e-12)
    assert snap.cost_usd >= cost(ledger_usage(entries), p.price) - 1e-12


# --- 1 + 2: kill -9 at random moments, again and again, then resume ------------------------------------

KILL_SEED = int(os.environ.get("KILL_SEED", "6061"))  # set KILL_SEED to explore other moments
KILLS = 4
KILL_ROWS = 1000
KILL_WORKERS = 12


def cli_env(key: str, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY=key, OPENAI_BASE_URL=url, PYTHONPATH=str(ROOT))
    return env


@pytest.mark.faults
def test_repeated_kill_9_at_random_moments_then_resume_loses_nothing_and_repays_only_in_flight(tmp_path):
    rng = random.Random(KILL_SEED)
    source = tmp_path / "leads.csv"
    source.write_bytes(apollo_csv(KILL_ROWS))
    out = tmp_path / "out.csv"
    args = [sys.executable, "-m", "lib", "run", str(source), "--output", str(out), "--prompt", "icebreaker",
            "--workers", str(KILL_WORKERS), "--quiet"]  # fmt: skip
    config = SimConfig(
        today=SIM_TODAY, latency_ms=60, latency_dist="lognormal", latency_p99_ms=250, seed=KILL_SEED
    )
    with SimProcess(config) as server:
        env = cli_env("sk-test-kill-random", server.url)
        at_kill = []
        for _ in range(KILLS):
            before = len(server.ledger())
            proc = subprocess.Popen(
                args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            # A random moment once this process is sending: early (planning done, first answers) or late.
            assert wait_until(lambda b=before: len(server.ledger()) > b, 60), proc.stderr.read()
            time.sleep(rng.uniform(0.0, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stderr.close()
            at_kill.append(len(server.ledger()))
        final = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        entries = server.ledger()
    assert final.returncode == 0, final.stderr
    assert all(n < KILL_ROWS for n in at_kill), f"a kill came after the run ended: {at_kill}"
    summary = json.loads(final.stdout.strip().splitlines()[-1])
    assert (summary["succeeded"], summary["failed"], summary["pending"]) == (KILL_ROWS, 0, 0)

    paid = Counter(int(e["row_id"]) for e in entries)
    assert set(paid) == set(range(1, KILL_ROWS + 1))  # no row lost
    repeats = sum(paid.values()) - KILL_ROWS
    assert repeats <= KILLS * KILL_WORKERS, f"{repeats} repeated requests after {KILLS} kills"
    # The final numbers count each row's reported usage once (repeats were paid to the API, not shown twice).
    first = {}
    for e in entries:
        first.setdefault(int(e["row_id"]), e)
    assert summary["prompt_tokens"] == sum(e["prompt_tokens"] for e in first.values())
    assert summary["completion_tokens"] == sum(e["completion_tokens"] for e in first.values())

    leads_file = read_leads(source.read_bytes(), source.name)
    spec = PromptLibrary().load("icebreaker")
    options = RunOptions(model=spec.model, max_tokens=spec.max_tokens, temperature=spec.temperature)
    expected = expected_texts(plan_run(leads_file.df, spec, options, base_url=server.url))
    rows = list(csv_rows(out))
    assert [int(r["enrich_row_id"]) for r in rows] == list(range(1, KILL_ROWS + 1))
    assert all(r["enrich_status"] == "succeeded" for r in rows)
    assert {int(r["enrich_row_id"]): r["icebreaker"] for r in rows} == expected


def csv_rows(path: Path) -> Iterator[dict]:
    import csv

    yield from csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))


# --- the server misbehaves: every case ends in a correct, explained final state -----------------------


@dataclass(frozen=True)
class FaultCase:
    id: str
    config: dict
    status: str  # the final status the run must reach
    needle: str | None = None  # words the run's message must contain when it stops early
    max_sent_over: int | None = None  # stops within this many requests after the fault starts
    settings: dict = field(default_factory=dict)


ROWS = 120
WORKERS = 16
FAULT_CASES = [
    FaultCase("rpm-limit-with-headers", {"rpm": 6000}, "finished"),
    FaultCase("rpm-limit-no-headers", {"rpm": 6000, "ratelimit_headers": "missing"}, "finished"),
    FaultCase("rpm-limit-zero-headers", {"rpm": 6000, "ratelimit_headers": "zero"}, "finished"),
    FaultCase("429-bursts-no-headers", {"p_429": 0.3, "ratelimit_headers": "missing"}, "finished"),
    FaultCase("5xx", {"p_500": 0.2, "p_503": 0.1}, "finished"),
    FaultCase("dropped-connections", {"p_drop": 0.2}, "finished"),
    FaultCase("hangs", {"p_hang": 0.05, "hang_seconds": 30}, "finished", settings={"timeout_s": 1.0}),
    FaultCase("malformed-json", {"p_malformed": 0.15}, "finished"),
    FaultCase("quota-after-40", {"quota_after": 40}, "paused", "out of credit", max_sent_over=40),
    FaultCase("401-after-40", {"fail_401_after": 40}, "failed", "key was rejected", max_sent_over=40),
    FaultCase("random-quota", {"p_quota": 0.02}, "paused", "out of credit"),
    FaultCase(
        "everything-at-once",
        {
            "p_500": 0.05,
            "p_503": 0.05,
            "p_drop": 0.05,
            "p_malformed": 0.03,
            "p_429": 0.05,
            "p_hang": 0.02,
            "hang_seconds": 30,
        },
        "finished",
        settings={"timeout_s": 1.0},
    ),  # fmt: skip
]
CLEAR = {
    "p_500": 0.0, "p_503": 0.0, "p_429": 0.0, "p_quota": 0.0, "p_drop": 0.0, "p_hang": 0.0,
    "p_malformed": 0.0, "quota_after": None, "fail_401_after": None,
}  # fmt: skip


@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda c: c.id)
def test_server_faults_end_in_a_correct_final_state_and_recover(sim, data_dir, case: FaultCase):
    sim.configure(latency_ms=5, seed=17, **case.config)
    df = leads(ROWS)
    settings = engine.RunSettings(**{"workers": WORKERS, "timeout_s": 5, "max_attempts": 4, **case.settings})
    job = run(sim, df, data_dir, settings=settings, timeout=90)
    p = plan(df, sim.url)
    snap = job.snapshot()
    assert snap.status == case.status, snap
    if case.needle:
        assert case.needle in snap.message
        assert snap.failed == 0, "a key or billing problem is not the rows' fault: they stay pending"
    if case.max_sent_over is not None:
        assert snap.requests_sent <= case.max_sent_over + WORKERS  # only what was already in flight
    assert all(
        r.retryable for r in job.rows() if r.status == "failed"
    )  # transient: "retry failed" picks them up
    assert_correct_final_state(job, p, sim, data_dir)

    # The fault passes: the same run (a new process would build the same plan) completes, paying only the rest.
    sim.configure(**CLEAR)
    again = run(sim, df, data_dir, run_id=job.id, settings=settings, timeout=60)
    if again.snapshot().failed:
        again.retry_failed()
        assert again.wait(60)
    final = again.snapshot()
    assert (final.status, final.succeeded) == ("finished", ROWS)
    assert set(billed(sim, "ok")) == set(p.inputs)
    assert all(n == 1 for n in billed(sim, "ok").values())


def test_5xx_storm_that_passes_mid_run_completes(sim, data_dir):
    """p_500=0.5 for a while, then 0, switched from another thread while the run goes on."""
    sim.configure(latency_ms=20, p_500=0.5, seed=23)
    df = leads(300)
    settings = engine.RunSettings(workers=WORKERS, timeout_s=5, max_attempts=6)
    job = run(sim, df, data_dir, settings=settings, wait=False)
    calm = threading.Timer(1.0, lambda: sim.configure(p_500=0.0))
    calm.start()
    try:
        assert job.wait(90), job.snapshot()
    finally:
        calm.cancel()
    snap = job.snapshot()
    assert snap.status == "finished" and snap.retries > 0
    assert snap.succeeded == 300, snap.recent_errors  # six attempts outlast a one-second storm
    assert_correct_final_state(job, plan(df, sim.url), sim, data_dir)


def test_two_runs_on_one_key_share_its_rate_limit(sim, data_dir, tmp_path):
    """Two users on one key: one governor paces both, so together they stay under the limit."""
    sim.configure(latency_ms=20, rpm=6000)  # 100 requests a second, enforced per second
    key = f"sk-test-shared-{secrets.token_hex(6)}"
    endpoint = Endpoint(api_key=key, base_url=sim.url)
    settings = engine.RunSettings(workers=48, timeout_s=5)
    jobs = [
        engine.start(plan(leads(150, company=lambda i, n=n: f"Co{n}-{i}"), sim.url), endpoint=endpoint,
                     settings=settings, store=Store(tmp_path / f"user{n}"))
        for n in range(2)
    ]  # fmt: skip
    assert all(j.wait(60) for j in jobs)
    assert [j.snapshot().succeeded for j in jobs] == [150, 150]
    limited = sum(j.snapshot().rate_limited for j in jobs)
    assert limited <= 300 * 0.05, f"{limited} 429s: the two runs hammered the key"


# --- disk: full or unwritable mid-run -----------------------------------------------------------------


class FailingDisk:
    """Stands in for the store's SQLite connection: everything passes through, but while `failing` is set
    every write fails exactly as SQLite reports a full or read-only disk (root ignores chmod, so this is
    how a test makes the data directory refuse writes)."""

    WRITES = ("BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT")

    def __init__(self, db: sqlite3.Connection, error: str):
        self._db = db
        self.error = error
        self.failing = threading.Event()

    def execute(self, sql: str, params=()):
        if self.failing.is_set() and sql.lstrip().upper().startswith(self.WRITES):
            raise sqlite3.OperationalError(self.error)
        return self._db.execute(sql, params)

    def __getattr__(self, name: str):
        return getattr(self._db, name)


@pytest.mark.faults
@pytest.mark.parametrize(
    ("sqlite_error", "words"),
    [
        ("database or disk is full", "the disk is full"),
        ("attempt to write a readonly database", "not writable"),
    ],
    ids=["full", "read-only"],
)
def test_disk_failing_mid_run_pauses_keeps_every_answer_and_resume_completes(
    sim, data_dir, sqlite_error, words
):
    sim.configure(latency_ms=30, seed=29)
    df = leads(200)
    p = plan(df, sim.url)
    store = Store(data_dir)
    disk = FailingDisk(store._db, sqlite_error)
    store._db = disk
    job = engine.Job(p, endpoint=Endpoint(api_key="sk-test-disk", base_url=sim.url), store=store,
                     settings=engine.RunSettings(workers=16, timeout_s=5), governor=Governor()).start()  # fmt: skip
    assert wait_until(lambda: job.snapshot().succeeded >= 60)
    disk.failing.set()
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.status == "paused"
    assert words in snap.message and "resume" in snap.message and "Traceback" not in snap.message

    saved = {r.row_id for r in Store(data_dir).rows(job.id) if r.status == "succeeded"}  # a second reader
    paid = set(billed(sim))
    assert saved and saved <= paid
    held = paid - saved  # answers that came in while the disk refused: held in memory, not thrown away
    assert held, "no answer was in flight when the disk failed: the case did not happen"

    job.resume()  # the disk is still failing: nothing is lost, it stays paused with the same words
    assert wait_until(
        lambda: job.snapshot().status == "paused" and words in (job.snapshot().message or ""), 10
    )
    disk.failing.clear()
    job.resume()
    assert wait_until(lambda: job.snapshot().status == "finished", 60), job.snapshot()
    assert job.snapshot().succeeded == 200
    assert all(n == 1 for n in billed(sim).values()), "an answer held in memory was paid for again"
    assert_correct_final_state(job, p, sim, data_dir)


@contextlib.contextmanager
def small_disk(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A real size-limited filesystem (tmpfs) at `path`; skips the test where mounting is not allowed."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root/CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem says ENOSPC."""
    ballast = folder / "ballast"
    with open(ballast, "wb", buffering=0) as f:  # unbuffered: nothing left to flush on close
        for chunk in (1 << 20, 4096):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return ballast


@pytest.mark.faults
def test_a_really_full_disk_pauses_the_run_and_resume_completes_after_space_is_freed(sim, tmp_path):
    sim.configure(latency_ms=50, seed=31)
    df = leads(400)
    p = plan(df, sim.url)
    with small_disk(tmp_path / "disk", "16m") as disk:
        data_dir = disk / "results"
        job = engine.Job(p, endpoint=Endpoint(api_key="sk-test-fulldisk", base_url=sim.url),
                         store=Store(data_dir), settings=engine.RunSettings(workers=16, timeout_s=5),
                         governor=Governor()).start()  # fmt: skip
        assert wait_until(lambda: job.snapshot().succeeded >= 40)
        ballast = fill(disk)
        assert job.wait(30)
        snap = job.snapshot()
        assert snap.status == "paused" and "the disk is full" in snap.message, snap
        before = {r.row_id for r in Store(data_dir).rows(job.id) if r.status == "succeeded"}
        assert len(before) >= 40
        ballast.unlink()
        job.resume()
        assert wait_until(lambda: job.snapshot().status == "finished", 60), job.snapshot()
        assert job.snapshot().succeeded == 400
        assert all(n == 1 for n in billed(sim).values())
        assert_correct_final_state(job, p, sim, data_dir)
        job.store.close()


@pytest.mark.faults
def test_the_command_line_refuses_a_read_only_data_dir_in_plain_words(sim, tmp_path):
    source = tmp_path / "leads.csv"
    source.write_bytes(apollo_csv(5))
    with small_disk(tmp_path / "ro", "1m", read_only=True) as folder:
        proc = subprocess.run(
            [sys.executable, "-m", "lib", "run", str(source), "--output", str(tmp_path / "out.csv"),
             "--prompt", "icebreaker", "--data-dir", str(folder / "results")],
            cwd=tmp_path, env=cli_env("sk-test-ro", sim.url), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert "the folder is not writable" in proc.stderr and "Traceback" not in proc.stderr
    assert len(sim.ledger()) == 0  # nothing is sent (and paid) when nothing could be recorded


# --- 3: cost to the token; the budget is never crossed ------------------------------------------------


def test_cost_shown_is_the_cost_of_the_usage_each_answer_reported(sim, data_dir):
    """Per row and in total, including cached prompt tokens and hidden reasoning tokens."""
    sim.configure(latency_ms=3)
    system = "You write for a sales team. " + "Be brief and specific. " * 300  # > 1024 tokens: prompt caching
    spec_template = "Write one line for {{ First Name }} at {{ Company }}."
    from lib.prompts.templates import PromptSpec

    df = leads(60)
    spec = PromptSpec(name="cost", system=system, template=spec_template)
    p = plan_run(df, spec, RunOptions(model="gpt-5-mini", max_tokens=400), base_url=sim.url)
    job = engine.Job(p, endpoint=Endpoint(api_key="sk-test-cost", base_url=sim.url), store=Store(data_dir),
                     settings=engine.RunSettings(workers=4, timeout_s=5), governor=Governor()).start()  # fmt: skip
    assert job.wait(60)
    snap = job.snapshot()
    entries = {int(e["row_id"]): e for e in sim.ledger()}
    assert snap.succeeded == 60 and len(entries) == 60
    assert (
        snap.cached_tokens > 0 and snap.reasoning_tokens > 0
    )  # the interesting parts of the price are there
    for row in job.rows():
        e = entries[row.row_id]
        reported = Usage(
            e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"], e["reasoning_tokens"]
        )
        assert row.usage == reported
        assert row.cost_usd == cost(reported, price_for("gpt-5-mini"))
    total = ledger_usage(list(entries.values()))
    assert (snap.prompt_tokens, snap.completion_tokens, snap.cached_tokens, snap.reasoning_tokens) == (
        total.prompt_tokens,
        total.completion_tokens,
        total.cached_tokens,
        total.reasoning_tokens,
    )
    assert snap.cost_usd == pytest.approx(cost(total, price_for("gpt-5-mini")), rel=1e-9)


@pytest.mark.parametrize(
    ("budget", "workers", "faults"),
    [(0.002, 4, {}), (0.003, 64, {}), (0.0025, 32, {"p_500": 0.2, "p_429": 0.05})],
    ids=["few-workers", "many-in-flight", "with-faults"],
)
def test_budget_is_never_crossed_not_even_by_requests_in_flight(sim, data_dir, budget, workers, faults):
    sim.configure(latency_ms=40, latency_dist="lognormal", latency_p99_ms=150, seed=37, **faults)
    df = leads(600)
    settings = engine.RunSettings(workers=workers, timeout_s=5, budget_usd=budget, max_attempts=6)
    job = run(sim, df, data_dir, settings=settings, wait=False)
    while not job.wait(0.02):
        assert job.snapshot().cost_usd <= budget
    snap = job.snapshot()
    assert snap.status == "paused" and "Budget reached" in snap.message
    assert 0 < snap.succeeded < 600
    # What the API actually billed, in-flight answers included, stays within the budget.
    p = plan(df, sim.url)
    assert cost(ledger_usage(sim.ledger()), p.price) <= budget
    assert_correct_final_state(job, p, sim, data_dir)


# --- 5: the key never leaks ---------------------------------------------------------------------------


class CapturedLogs(logging.Handler):
    """Every record of every logger at the lowest level, formatted, with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record) + repr(record.args) + repr(record.__dict__.get("headers", "")))


@contextlib.contextmanager
def all_logs() -> Iterator[CapturedLogs]:
    handler = CapturedLogs()
    names = ["", "openai", "httpx2", "httpcore2", "httpx", "httpcore", "lib"]
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(1)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for n, level in old.items():
            logging.getLogger(n).setLevel(level)


def places_holding(key: str, places: dict[str, bytes | str]) -> list[str]:
    """Names of the places whose content contains the key (as text or bytes)."""
    needle = key.encode()
    return [
        name for name, blob in places.items() if (needle in blob if isinstance(blob, bytes) else key in blob)
    ]


def data_dir_files(folder: Path) -> dict[str, bytes]:
    """Every file under the folder (the SQLite database, its WAL and shared-memory files, exports)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def exports_of(job: engine.Job) -> dict[str, bytes]:
    frame = results_frame(job.plan.inputs, job.rows(), job.plan.meta, job.edits())
    return {f"export.{fmt}": export.export_bytes(frame, fmt) for fmt in ("csv", "xlsx", "json")}


def reprs_of(job: engine.Job) -> dict[str, str]:
    snap = job.snapshot()
    return {
        "repr(endpoint)": repr(job.endpoint),
        "endpoint.describe()": job.endpoint.describe(),
        "repr(job)": repr(job),
        "repr(vars(job))": repr({k: v for k, v in vars(job).items()}),
        "repr(snapshot)": repr(snap),
        "repr(rows)": repr(job.rows()),
        "repr(plan)": repr(job.plan),
    }


KEY_STYLES = {
    "openai": lambda: f"sk-proj-{secrets.token_urlsafe(24)}",
    "gsk-style": lambda: f"gsk_{secrets.token_hex(20)}",
    "azure-style": lambda: secrets.token_hex(16),  # 32 hex digits, nothing key-like about it
}


def test_key_never_in_debug_logs_reprs_store_or_exports_of_a_faulty_run(sim, data_dir):
    key = KEY_STYLES["openai"]()
    sim.configure(latency_ms=3, p_500=0.1, p_429=0.05, p_drop=0.05, p_malformed=0.05, quota_after=80, seed=41)
    environ = dict(os.environ)
    with all_logs() as logs:
        job = run(sim, leads(120), data_dir, key=key, settings=engine.RunSettings(workers=8, timeout_s=5))
        assert (
            job.snapshot().status == "paused" and job.snapshot().recent_errors
        )  # errors were logged and shown
        places = {"logs": "\n".join(logs.texts), **reprs_of(job), **exports_of(job)}
    assert len(logs.texts) > 100  # the SDK and HTTP stack really logged at DEBUG
    places.update(data_dir_files(data_dir))
    assert "studio.sqlite3" in places
    assert places_holding(key, places) == []
    assert dict(os.environ) == environ  # a key given to a run never lands in the process environment
    assert mask_key(key) in job.endpoint.describe()


class EchoingServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server of the careless kind: its error messages repeat the caller's key."""

    status = 401
    request_lines: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        key = self.headers.get("authorization", "").partition(" ")[2]
        type(self).request_lines.append(self.requestline)
        message = f"Incorrect API key provided: {key}. The key {key} cannot be used here."
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        ).encode()
        self.send_response(type(self).status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def echoing_server(status: int) -> Iterator[str]:
    handler = type("Echo", (EchoingServer,), {"status": status, "request_lines": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("style", list(KEY_STYLES))
@pytest.mark.parametrize("status", [401, 403, 404, 400, 500, 418])
def test_a_server_message_that_echoes_the_key_is_scrubbed_everywhere(data_dir, status, style):
    key = KEY_STYLES[style]()
    with echoing_server(status) as (url, handler), all_logs() as logs:
        p = plan(leads(3), url)
        job = engine.Job(p, endpoint=Endpoint(api_key=key, base_url=url), store=Store(data_dir),
                         settings=engine.RunSettings(workers=1, timeout_s=5, max_attempts=1),
                         governor=Governor()).start()  # fmt: skip
        assert job.wait(20)
        places = {"logs": "\n".join(logs.texts), **reprs_of(job), **exports_of(job)}
        request_lines = list(handler.request_lines)
    snap = job.snapshot()
    shown = [
        snap.message or "",
        *(e.message for e in snap.recent_errors),
        *(r.error or "" for r in job.rows()),
    ]
    assert any("Incorrect API key provided" in s for s in shown) or status == 401  # the echo did reach us
    places["messages"] = "\n".join(shown)
    places["urls"] = "\n".join(request_lines)
    places.update(data_dir_files(data_dir))
    assert request_lines, "no request reached the server"
    assert places_holding(key, places) == []


def test_the_command_line_never_prints_or_writes_the_key(sim, tmp_path):
    """OPENAI_LOG=debug turns on the SDK's own logging to stderr; a quota stop adds the error paths."""
    key = KEY_STYLES["openai"]()
    source = tmp_path / "leads.csv"
    source.write_bytes(apollo_csv(30))
    sim.configure(quota_after=20, p_500=0.1, seed=43)
    env = {**cli_env(key, sim.url), "OPENAI_LOG": "debug"}
    outputs = {}
    for ext in ("xlsx", "json"):  # the first run stops at the quota (exit 3), the second resumes and finishes
        out = tmp_path / f"out.{ext}"
        proc = subprocess.run(
            [sys.executable, "-m", "lib", "run", str(source), "--output", str(out), "--prompt", "icebreaker",
             "--workers", "4", "--data-dir", str(tmp_path / "results")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        outputs[f"stdout {ext}"], outputs[f"stderr {ext}"] = proc.stdout, proc.stderr
        sim.configure(quota_after=None)
    assert "credit" in outputs["stderr xlsx"] and "HTTP Request" in outputs["stderr xlsx"]  # debug logs on
    assert json.loads(outputs["stdout json"].strip().splitlines()[-1])["succeeded"] == 30
    outputs.update(data_dir_files(tmp_path))
    assert places_holding(key, outputs) == []


def _typed_key_run(sim, data_dir, key: str, n: int = 5) -> engine.Job:
    """A run as the app starts one with a key typed in the sidebar: through the registry, shared client."""
    endpoint = Endpoint(api_key=key, base_url=sim.url)
    return engine.start(
        plan(leads(n), sim.url), endpoint=endpoint, settings=engine.RunSettings(workers=4, timeout_s=5),
        store=Store(data_dir), governor=Governor(),
    )  # fmt: skip


def test_a_typed_keys_client_goes_when_its_run_ends_and_is_forgotten(sim, data_dir):
    """The README: a typed key is kept for that browser session only. Its client lived in a process-wide
    cache for the life of the server; now it goes (closed) with the last run that used it."""
    key = "sk-typed-in-the-sidebar-" + secrets.token_hex(8)
    fingerprint = Endpoint(api_key=key, base_url=sim.url).fingerprint
    job = _typed_key_run(sim, data_dir, key)
    assert job.wait(30) and job.snapshot().succeeded == 5
    client = job.client
    assert fingerprint in shared_fingerprints(), "kept while the run is kept (a reload re-attaches)"
    engine.forget_finished(older_than_s=0)
    assert engine.get_job(job.id) is None
    assert fingerprint not in shared_fingerprints()
    assert client.is_closed()


@pytest.mark.parametrize(
    "steps",
    [
        # (what happens, is the key's client still shared afterwards)
        [("close first", True), ("close second", False)],
        [("close second", True), ("close first", False)],
        [("close first", True), ("close first", True), ("close second", False)],  # twice counts once
    ],
    ids=["first-then-second", "second-then-first", "closed-twice"],
)
def test_two_runs_on_one_typed_key_share_a_client_until_both_are_closed(sim, data_dir, steps):
    key = "sk-typed-in-the-sidebar-" + secrets.token_hex(8)
    fingerprint = Endpoint(api_key=key, base_url=sim.url).fingerprint
    jobs = {"first": _typed_key_run(sim, data_dir, key), "second": _typed_key_run(sim, data_dir, key)}
    assert all(j.wait(30) for j in jobs.values())
    assert jobs["first"].client is jobs["second"].client
    for step, shared in steps:
        jobs[step.split()[1]].close()
        assert (fingerprint in shared_fingerprints()) == shared, step


def test_a_closed_run_that_is_resumed_takes_a_client_again(sim, data_dir):
    key = "sk-typed-in-the-sidebar-" + secrets.token_hex(8)
    fingerprint = Endpoint(api_key=key, base_url=sim.url).fingerprint
    sim.configure(latency_ms=50)
    job = _typed_key_run(sim, data_dir, key, n=40)
    assert wait_until(lambda: job.snapshot().succeeded >= 4)
    job.cancel()
    assert job.wait(30) and job.snapshot().pending > 0
    job.close()
    assert fingerprint not in shared_fingerprints()
    job.resume()
    assert wait_until(lambda: job.snapshot().status == "finished", 60), job.snapshot()
    assert job.snapshot().succeeded == 40 and job.snapshot().failed == 0
    assert fingerprint in shared_fingerprints()
    job.close()
    assert fingerprint not in shared_fingerprints()


def test_building_clients_and_running_with_a_typed_key_leaves_os_environ_alone(sim, data_dir):
    """What the app does with a key typed into one browser session (the session side: tests/test_app.py)."""
    key = KEY_STYLES["azure-style"]()
    before = dict(os.environ)
    endpoint = Endpoint(api_key=key, base_url=sim.url)
    make_client(endpoint, timeout_s=5)
    job = run(sim, leads(5), data_dir, key=key)
    assert job.snapshot().succeeded == 5
    assert dict(os.environ) == before
    assert key not in repr(endpoint) and key not in str(pd.Series({"e": endpoint}))
