"""The run engine against the local OpenAI-compatible server: real HTTP, the real SDK, real threads."""

from __future__ import annotations

import math
import time
from statistics import NormalDist

import pytest

from lib import engine
from lib.sim import expected_reply
from lib.store import Store
from tests.engine_helpers import leads, ledger_rows, plan, run, wait_until


def answers(job) -> dict[int, str | None]:
    return {r.row_id: r.text for r in job.rows()}


def assert_each_row_got_its_own_answer(job, df, sim_url):
    p = plan(df, sim_url)
    expected = {i.row_id: expected_reply(i.body["messages"], i.body["model"]) for i in p.items}
    got = {r.row_id: r.text for r in job.rows() if r.status == "succeeded"}
    assert got, "no row succeeded"
    for row_id, text in got.items():
        assert text == expected[row_id], f"row {row_id} got another row's answer"


def test_every_row_gets_its_own_answer_under_concurrency(sim, data_dir):
    sim.configure(latency_ms=30, latency_dist="lognormal", latency_p99_ms=200, seed=3)
    df = leads(300)
    job = run(sim, df, data_dir, settings=engine.RunSettings(workers=48, timeout_s=5))
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == ("finished", 300, 0, 0)
    assert_each_row_got_its_own_answer(job, df, sim.url)
    assert ledger_rows(sim) == {i: 1 for i in range(1, 301)}  # one paid request per row


@pytest.mark.parametrize(
    "faults",
    [
        {"p_500": 0.15, "p_503": 0.05},
        {"p_drop": 0.1},
        {"p_malformed": 0.05},
        {"p_hang": 0.03, "hang_seconds": 30},
        {"p_429": 0.1},
    ],
    ids=["5xx", "dropped", "malformed", "hangs", "spurious-429"],
)
def test_faults_never_lose_or_mix_up_rows(sim, data_dir, faults):
    sim.configure(latency_ms=5, seed=11, **faults)
    df = leads(150)
    job = run(
        sim, df, data_dir, settings=engine.RunSettings(workers=24, timeout_s=1.5, max_attempts=5), timeout=90
    )
    snap = job.snapshot()
    assert snap.status == "finished" and snap.pending == 0
    assert snap.succeeded + snap.failed == 150
    assert snap.succeeded >= 140  # with five attempts nearly every row gets through
    assert all(r.retryable for r in job.rows() if r.status == "failed")
    assert_each_row_got_its_own_answer(job, df, sim.url)
    stored = {r.row_id: (r.status, r.text) for r in Store(data_dir).rows(job.id)}
    assert stored == {r.row_id: (r.status, r.text) for r in job.rows()}  # the journal matches what we show


def test_token_totals_equal_the_server_ledger(sim, data_dir):
    sim.configure(latency_ms=2, p_500=0.1, seed=5)
    job = run(sim, leads(200), data_dir)
    snap = job.snapshot()
    billed = sim.ledger()
    assert snap.prompt_tokens == sum(e["prompt_tokens"] for e in billed)
    assert snap.completion_tokens == sum(e["completion_tokens"] for e in billed)
    assert snap.prompt_tokens > 0


def test_rate_limit_is_respected_with_few_429s(sim, data_dir):
    sim.configure(latency_ms=40, rpm=3000, tpm=10_000_000)  # 50 requests a second, enforced per second
    job = run(sim, leads(250), data_dir, settings=engine.RunSettings(workers=100, timeout_s=5), timeout=60)
    snap = job.snapshot()
    assert snap.succeeded == 250
    assert snap.rate_limited <= 250 * 0.03, f"{snap.rate_limited} 429s"
    assert snap.elapsed_s >= 250 / 50 * 0.8  # paced, not a burst


@pytest.mark.parametrize("headers", ["missing", "zero"])
def test_rate_limit_without_headers_falls_back_to_backoff(sim, data_dir, headers):
    sim.configure(latency_ms=20, rpm=1800, ratelimit_headers=headers)
    job = run(sim, leads(120), data_dir, settings=engine.RunSettings(workers=60, timeout_s=5), timeout=90)
    snap = job.snapshot()
    assert snap.succeeded == 120 and snap.pending == 0
    assert snap.rate_limited > 0  # it had to learn the limit from 429s


def test_quota_pauses_at_once_and_never_retries(sim, data_dir):
    sim.configure(latency_ms=5, quota_after=20)
    job = run(sim, leads(300), data_dir, settings=engine.RunSettings(workers=8, timeout_s=5))
    snap = job.snapshot()
    assert snap.status == "paused"
    assert "credit" in snap.message and "Billing" in snap.message
    assert snap.succeeded == 20
    assert snap.requests_sent <= 20 + 8  # only what was in flight when the first quota error came back
    assert snap.pending == 280 and snap.failed == 0
    assert sim.stats()["by_kind"].get("quota", 0) <= 8


@pytest.mark.parametrize(
    ("key", "config", "model", "needle"),
    [
        ("sk-invalid-123456789", {}, "gpt-4o-mini", "key was rejected"),
        ("sk-test-ok", {"fail_401_after": 10}, "gpt-4o-mini", "key was rejected"),
        ("sk-test-ok", {}, "gpt-9-imaginary", "does not exist"),
    ],
    ids=["bad-key", "key-revoked-mid-run", "unknown-model"],
)
def test_auth_and_model_errors_stop_the_run_quickly_with_one_message(
    sim, data_dir, key, config, model, needle
):
    sim.configure(latency_ms=5, **config)
    job = run(
        sim, leads(200), data_dir, key=key, model=model, settings=engine.RunSettings(workers=8, timeout_s=5)
    )
    snap = job.snapshot()
    assert snap.status == "failed"
    assert needle in snap.message
    assert key not in snap.message
    assert snap.requests_sent <= config.get("fail_401_after", 0) + 8
    assert snap.failed == 0  # rows are not blamed for a key problem: they stay pending
    assert snap.pending + snap.succeeded == 200


@pytest.mark.parametrize(
    ("directive", "status", "flag", "retryable"),
    [
        ("[[sim:context_length]]", "failed", None, False),
        ("[[sim:length]]", "succeeded", "truncated", False),
        ("[[sim:content_filter]]", "failed", "content_filter", False),
        ("[[sim:refusal]]", "failed", "refusal", False),
        ("[[sim:fail_first=10]]", "failed", None, True),
    ],
)
def test_row_specific_outcomes(sim, data_dir, directive, status, flag, retryable):
    df = leads(20, company=lambda i: f"Company {i} {directive}" if i == 7 else f"Company {i}")
    job = run(sim, df, data_dir, settings=engine.RunSettings(workers=4, timeout_s=5, max_attempts=3))
    rows = {r.row_id: r for r in job.rows()}
    assert rows[7].status == status
    assert (flag in rows[7].flags) if flag else not rows[7].flags
    assert rows[7].retryable == retryable
    if status == "failed":
        assert rows[7].error
    assert all(rows[i].status == "succeeded" for i in rows if i != 7)
    assert job.snapshot().status == "finished"


def test_retry_failed_resends_only_failed_rows(sim, data_dir):
    df = leads(30, company=lambda i: f"Company {i} [[sim:fail_first=3]]" if i % 10 == 0 else f"Company {i}")
    job = run(sim, df, data_dir, settings=engine.RunSettings(workers=6, timeout_s=5, max_attempts=2))
    assert job.snapshot().failed == 3
    before = ledger_rows(sim)
    assert job.retry_failed() == 3
    assert job.wait(30)
    snap = job.snapshot()
    assert (snap.succeeded, snap.failed) == (30, 0)
    after = ledger_rows(sim)
    resent = {r for r in after if after[r] != before.get(r, 0)}
    assert resent == {10, 20, 30}


def test_budget_pauses_before_crossing_and_resumes_higher(sim, data_dir):
    sim.configure(latency_ms=5)
    df = leads(400)
    # gpt-4o-mini: each request's worst case is ~40 prompt tokens + 60 output tokens, about $0.00004.
    settings = engine.RunSettings(workers=8, timeout_s=5, budget_usd=0.004)
    job = run(sim, df, data_dir, settings=settings)
    snap = job.snapshot()
    assert snap.status == "paused" and "Budget" in snap.message
    assert snap.cost_usd <= 0.004
    assert 0 < snap.succeeded < 400
    job.resume(budget_usd=1.0)
    assert wait_until(lambda: job.snapshot().status == "finished", 30)
    assert job.snapshot().succeeded == 400
    assert sum(ledger_rows(sim).values()) == 400  # nothing paid twice across the pause


def test_cancel_then_rerun_pays_only_for_the_rest(sim, data_dir):
    sim.configure(latency_ms=40)
    df = leads(400)
    job = run(sim, df, data_dir, wait=False, settings=engine.RunSettings(workers=10, timeout_s=5))
    assert wait_until(lambda: job.snapshot().succeeded >= 50)
    job.cancel()
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.status == "cancelled" and snap.pending > 0
    # A new process would build the same plan: the same run id resumes from the journal.
    again = run(sim, df, data_dir, run_id=job.id)
    assert again.snapshot().succeeded == 400
    counts = ledger_rows(sim)
    assert set(counts) == set(range(1, 401))
    assert sum(counts.values()) - 400 <= 10  # at most the requests in flight at the cancel are repeated


@pytest.mark.parametrize(
    ("company", "sent"),
    [("Same Co", 1), ("Same Co [[sim:fail_first=2]]", 3)],  # the shared request fails twice, then is answered
    ids=["answered-first-time", "after-server-errors"],
)
def test_identical_rows_are_paid_for_once(sim, data_dir, company, sent):
    df = leads(40, company=lambda i: company)
    df["First Name"] = "Same"
    job = run(sim, df, data_dir)
    snap = job.snapshot()
    assert snap.succeeded == 40
    assert snap.requests_sent == sent and snap.cache_hits == 39
    assert len(sim.ledger()) == 1


def test_answers_are_reused_across_runs_of_the_same_request(sim, data_dir):
    df = leads(25)
    run(sim, df, data_dir)
    second = run(sim, df, data_dir)  # a new run id: a different job, the same requests
    assert second.snapshot().cache_hits == 25
    assert second.snapshot().cost_usd == 0.0  # already paid by the first run
    assert len(sim.ledger()) == 25


@pytest.mark.parametrize("model", ["gpt-5-mini", "o3", "gpt-4.1-mini"])
def test_model_families_get_parameters_they_accept(sim, data_dir, model):
    spec_temperature = 0.3  # gpt-5 and o-series reject it: it must be left out, not sent
    df = leads(5)
    from lib.engine.runs import RunOptions, plan_run
    from lib.prompts.templates import PromptSpec

    p = plan_run(
        df,
        PromptSpec(name="t", template="Hi {{ Company }}"),
        RunOptions(model=model, max_tokens=50, temperature=spec_temperature),
        base_url=sim.url,
    )
    job = engine.Job(
        p,
        endpoint=engine.Endpoint(api_key="sk-test-fam", base_url=sim.url),
        settings=engine.RunSettings(workers=2, timeout_s=5),
        store=Store(data_dir),
    ).start()
    assert job.wait(20)
    assert job.snapshot().succeeded == 5, job.snapshot().recent_errors


def test_snapshot_is_immutable_and_consistent(sim, data_dir):
    sim.configure(latency_ms=20)
    job = run(sim, leads(100), data_dir, wait=False)
    seen = []
    while not job.wait(0.05):
        snap = job.snapshot()
        assert snap.succeeded + snap.failed + snap.skipped + snap.pending == snap.total
        seen.append(snap)
    final = job.snapshot()
    assert final.cost_series and final.cost_series[-1][1] == pytest.approx(final.cost_usd)
    with pytest.raises(AttributeError):
        final.status = "x"  # frozen


def test_registry_reattaches_active_jobs_and_forgets_ended_ones(sim, data_dir):
    sim.configure(latency_ms=300)
    endpoint = engine.Endpoint(api_key="sk-test-registry", base_url=sim.url)
    p = plan(leads(30), sim.url)
    job = engine.start(
        p, endpoint=endpoint, settings=engine.RunSettings(workers=2, timeout_s=5), store=Store(data_dir)
    )
    assert engine.start(p, endpoint=endpoint, settings=engine.RunSettings(), store=Store(data_dir)) is job
    engine.forget_finished(older_than_s=0)
    assert engine.get_job(p.run_id) is job  # still running: a refreshed page must find it
    job.cancel()
    assert job.wait(10)
    engine.forget_finished(older_than_s=0)
    assert engine.get_job(p.run_id) is None  # ended: results live on in the store only
    assert Store(data_dir).run(p.run_id).status == "cancelled"


def test_simultaneous_starts_of_one_run_make_one_job(sim, data_dir):
    import threading

    sim.configure(latency_ms=100)
    endpoint = engine.Endpoint(api_key="sk-test-double", base_url=sim.url)
    p = plan(leads(20), sim.url)
    jobs, barrier = [], threading.Barrier(8)

    def click():
        barrier.wait()
        jobs.append(
            engine.start(p, endpoint=endpoint, settings=engine.RunSettings(workers=4), store=Store(data_dir))
        )

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(j) for j in jobs}) == 1
    assert jobs[0].wait(20) and jobs[0].snapshot().succeeded == 20
    assert sum(ledger_rows(sim).values()) == 20  # one run's worth of requests


@pytest.mark.parametrize(
    ("directive", "status", "attempts", "timeouts"),
    [
        # Hung for good: cut at the 1 s floor (20 ms answers suggest far less), then at 2 s; failed.
        ("[[sim:hang]]", "failed", 2, ["1.0 s", "2.0 s"]),
        # Merely slow (2.5 s against 20 ms for the rest): 1 s, then 2 s, then the 4 s third try gets it.
        ("[[sim:latency=2500]]", "succeeded", 3, ["1.0 s", "2.0 s"]),
    ],
    ids=["hung", "slow"],
)
def test_timeout_adapts_to_answers_and_doubles_for_a_row_that_timed_out(
    sim, data_dir, directive, status, attempts, timeouts
):
    sim.configure(latency_ms=20)
    # The last row goes out after 100+ answers, when the timeout has adapted to them.
    df = leads(150, company=lambda i: f"Company {i} {directive}" if i == 150 else f"Company {i}")
    settings = engine.RunSettings(workers=2, timeout_s=30, max_attempts=attempts)
    started = time.monotonic()
    job = run(sim, df, data_dir, settings=settings)
    elapsed = time.monotonic() - started
    rows = {r.row_id: r for r in job.rows()}
    assert rows[150].status == status and rows[150].attempts == attempts
    said = [e.message for e in job.snapshot().recent_errors if e.row_id == 150]
    for t in timeouts:
        assert any(f"No answer within {t}" in m for m in said), said
    # What a cut-off answer may cost: the server can bill each attempt it finished (at most `attempts`).
    assert ledger_rows(sim)[150] <= (attempts if status == "succeeded" else 0)
    assert all(rows[i].status == "succeeded" for i in range(1, 150))
    assert elapsed < 15, "the 30 s setting must not be what cuts a hung request once answers are known"


# 256 answer times spread as a lognormal with median 0.8 s and p99 4 s (the benchmark's (b)), by quantile.
SKEWED = [0.8 * math.exp(math.log(5) / 2.3263 * NormalDist().inv_cdf((k + 0.5) / 256)) for k in range(256)]


@pytest.mark.parametrize(
    ("answers", "at_least", "at_most"),
    [
        ([0.5] * 256, 1.0, 1.0),  # every answer 0.5 s: twice the slowest, at the 1 s floor
        ([0.02] * 256, 1.0, 1.0),  # fast and steady: the floor
        ([0.5] * 254 + [5.0, 6.0], 12.0, 12.0),  # a rare slow kind of answer: twice the slowest seen
        # Skewed like real answers: ~20 s, where about one answer in a million would be cut off.
        (SKEWED, 15.0, 25.0),
        (
            SKEWED + [200.0],
            30.0,
            30.0,
        ),  # the setting caps
    ],
    ids=["steady", "fast", "rare-slow", "skewed", "capped"],
)
def test_adaptive_timeout_sits_past_any_real_answer(answers, at_least, at_most):
    assert at_least <= engine.adaptive_timeout(answers, setting=30.0) <= at_most
