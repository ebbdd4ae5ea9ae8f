"""Quality flags end to end: the simulator answers with defects on purpose, over real HTTP, live and batch.

Exactly the defective rows are flagged (each with its own check), every row still succeeds, and the cost
is what the server billed.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lib import batch, engine
from lib.batch.files import BatchLimits
from lib.cost.pricing import Usage, cost, price_for
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run, quality_counts, results_frame, with_list_checks
from lib.leads import read_leads
from lib.models import DEFAULT_MODEL
from lib.prompts import checks
from lib.prompts.checks import Checks
from lib.prompts.templates import PromptSpec
from lib.sim import SimConfig, replies
from lib.store import Store
from tests.conftest import SIM_TODAY
from tests.engine_helpers import leads
from tests.leadfiles import apollo_csv
from tests.test_cli import cli, read_output, summary

TEMPLATE = "Write one line for {{ Company }} and {{ First Name }}."
# Clean simulator answers have at most 44 words and name the company; the defects break one rule each.
CHECKS = Checks(max_words=55, banned=(replies.DEFECT_PHRASE,), mention=("Company",), max_opener_share=0.05)
FLAG_OF = {
    "placeholder": checks.PLACEHOLDER,
    "too_long": checks.TOO_LONG,
    "banned_phrase": checks.BANNED,
    "missing_mention": checks.MISSING_MENTION,
    "repeated_opener": checks.REPEATED_OPENER,
}
FAST_BATCH = {"batch_validating_s": 0.02, "batch_in_progress_s": 0.2, "batch_finalizing_s": 0.02}


def quality_plan(sim, n: int, spec_checks: Checks = CHECKS):
    df = leads(n, company=lambda i: f"Acme{i} Freight")
    spec = PromptSpec(name="quality", template=TEMPLATE, checks=spec_checks)
    return plan_run(df, spec, RunOptions(model=DEFAULT_MODEL, max_tokens=400), base_url=sim.url)


def defects_of(plan, p_defect: float, kinds=replies.DEFECTS) -> dict[int, str | None]:
    return {
        i.row_id: replies.chosen_defect(i.body["messages"], i.body["model"], p_defect, kinds)
        for i in plan.items
    }


def quality_flags(rows) -> dict[int, set[str]]:
    return {r.row_id: {f for f in r.flags if f.startswith("quality:")} for r in rows}


def ledger_cost(sim, *, batch_price: bool = False) -> float:
    price = price_for(DEFAULT_MODEL)
    return sum(
        cost(Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"]), price, batch=batch_price)
        for e in sim.ledger()
    )


def live_run(sim, plan, data_dir, key: str) -> engine.Job:
    job = engine.Job(
        plan,
        endpoint=Endpoint(api_key=key, base_url=sim.url),
        settings=engine.RunSettings(workers=8, timeout_s=10),
        store=Store(data_dir),
        governor=Governor(),
    ).start()
    assert job.wait(60), job.snapshot()
    return job


@pytest.mark.parametrize("defect", replies.DEFECTS)
def test_each_defect_is_flagged_on_exactly_its_rows(sim, data_dir, defect):
    sim.configure(p_defect=0.3, defects=[defect])
    plan = quality_plan(sim, 40)
    want = defects_of(plan, 0.3, [defect])
    assert 4 <= sum(d is not None for d in want.values()) <= 30  # the rate gives some of each, not all
    job = live_run(sim, plan, data_dir, f"sk-test-quality-{defect}")
    snap = job.snapshot()
    assert (snap.succeeded, snap.failed) == (40, 0)  # flags, not failures
    rows = with_list_checks(job.rows(), plan.meta)
    got = quality_flags(rows)
    assert got == {row_id: ({FLAG_OF[d]} if d else set()) for row_id, d in want.items()}
    for row in rows:  # each flagged row says which rule broke
        assert bool(row.error) == bool(got[row.row_id])
    assert quality_counts(rows) == {FLAG_OF[defect].removeprefix("quality:"): sum(map(bool, want.values()))}
    assert snap.cost_usd == pytest.approx(ledger_cost(sim), rel=1e-9)


def test_mixed_defects_live_and_batch_flag_the_same_rows(sim, data_dir, tmp_path):
    sim.configure(p_defect=0.4, **FAST_BATCH)
    plan = quality_plan(sim, 80)
    want = defects_of(plan, 0.4)
    assert set(want.values()) == {None, *replies.DEFECTS}  # every defect occurs
    live = live_run(sim, plan, data_dir, "sk-test-quality-mixed")
    assert live.snapshot().cost_usd == pytest.approx(ledger_cost(sim), rel=1e-9)
    frame = results_frame(plan.inputs, live.rows(), plan.meta)
    by_flags = {
        int(row_id): {f for f in flags.split(",") if f.startswith("quality:")}
        for row_id, flags in frame["enrich_flags"].items()
    }
    assert by_flags == {row_id: ({FLAG_OF[d]} if d else set()) for row_id, d in want.items()}
    assert all(frame.loc[r, "enrich_status"] == "succeeded" for r in by_flags)
    assert all(frame.loc[r, "enrich_error"] for r, f in by_flags.items() if f)

    # An empty ledger: the batch's bill alone.
    sim.reset(SimConfig(today=SIM_TODAY, p_defect=0.4, **FAST_BATCH))
    job = batch.BatchJob(
        plan,
        endpoint=Endpoint(api_key="sk-test-quality-batch", base_url=sim.url),
        store=Store(tmp_path / "batch-data"),
        settings=batch.BatchSettings(poll_interval_s=0.05, limits=BatchLimits(), max_call_attempts=3),
    ).start()
    assert job.wait(45), job.snapshot()
    assert job.snapshot().cost_usd == pytest.approx(ledger_cost(sim, batch_price=True), rel=1e-9)
    assert quality_flags(with_list_checks(job.rows(), plan.meta)) == quality_flags(
        with_list_checks(live.rows(), plan.meta)
    )


# --- the command line ----------------------------------------------------------------------------------

CLI_TEMPLATE = "Write one line for {{ Company }} ({{ First Name }}, {{ Title }}, {{ Email }})."
CLI_CHECKS = [
    "--check-max-words",
    "55",
    "--check-banned",
    replies.DEFECT_PHRASE,
    "--check-mention",
    "Company",
]


def test_cli_checks_count_flagged_rows_per_check(sim, tmp_path):
    kinds = ["placeholder", "too_long", "banned_phrase", "missing_mention"]
    sim.configure(p_defect=0.35, defects=kinds)
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(60))
    out = tmp_path / "out.csv"
    proc = cli("run", str(path), "--output", str(out), "--template", CLI_TEMPLATE, "--max-tokens", "400",
               "--workers", "8", *CLI_CHECKS, sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    df = read_leads(path.read_bytes(), path.name).df
    spec = PromptSpec(name="command-line", template=CLI_TEMPLATE)
    plan = plan_run(df, spec, RunOptions(model=DEFAULT_MODEL, max_tokens=400), base_url=sim.url)
    want = Counter(d for d in defects_of(plan, 0.35, kinds).values() if d)
    assert set(want) == set(kinds)
    assert result["quality"] == dict(want) and result["succeeded"] == 60
    assert result["cost_usd"] == pytest.approx(ledger_cost(sim), rel=1e-6)
    flagged = [r for r in read_output(out) if r["enrich_flags"]]
    assert len(flagged) == sum(want.values()) and all(r["enrich_error"] for r in flagged)


CLI_ERRORS = [
    (["--check-mention", "Compnay"], "no column named 'Compnay'. Did you mean 'Company'?"),
    (["--check-max-words", "0"], "--check-max-words must be a whole number of at least 1"),
    (["--check-banned", " "], "--check-banned needs a phrase"),
]


@pytest.mark.parametrize(("args", "needle"), CLI_ERRORS)
def test_cli_bad_check_options_are_clear(tmp_path, args, needle):
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(5))
    proc = cli("check", str(path), "--template", CLI_TEMPLATE, *args, sim_url=None, cwd=tmp_path)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_cli_check_shows_the_prompt_checks_with_the_options_on_top(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(5))
    proc = cli("check", str(path), "--prompt", "icebreaker", "--check-banned", "synergy", "--check-max-chars",
               "200", sim_url=None, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown = summary(proc)["checks"]
    assert shown["max_words"] == 25 and shown["max_chars"] == 200
    assert shown["banned_phrases"][-1] == "synergy" and "quick question" in shown["banned_phrases"]


@pytest.mark.parametrize(
    ("changes", "ok"),
    [({"p_defect": 0.5}, True), ({"p_defect": 1.5}, False), ({"defects": ["too_long", "typo"]}, False)],
)
def test_simulator_defect_settings_are_checked(changes, ok):
    if ok:
        assert SimConfig(**changes).p_defect == changes["p_defect"]
    else:
        with pytest.raises(ValueError, match="p_defect"):
            SimConfig(**changes)


# --- regenerate ----------------------------------------------------------------------------------------


def test_cli_regenerate_twice_leaves_few_flagged_rows_and_bills_every_attempt(sim, tmp_path):
    kinds = ["placeholder", "too_long", "banned_phrase", "missing_mention"]
    sim.configure(p_defect=0.3, defects=kinds)
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(60))
    out = tmp_path / "out.csv"
    base = ["run", str(path), "--output", str(out), "--template", CLI_TEMPLATE, "--max-tokens", "400",
            "--workers", "8", *CLI_CHECKS]  # fmt: skip
    first = summary(cli(*base, "--data-dir", str(tmp_path / "once"), sim_url=sim.url, cwd=tmp_path))
    flagged_once = sum(first["quality"].values())
    assert flagged_once >= 10
    sim.reset(SimConfig(today=SIM_TODAY, p_defect=0.3, defects=kinds))
    proc = cli(
        *base, "--regenerate", "2", "--data-dir", str(tmp_path / "twice"), sim_url=sim.url, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    asked = result["regenerated"]
    assert asked[0] == flagged_once and len(asked) <= 2  # only flagged rows are asked again
    left = sum(result["quality"].values())
    assert left <= flagged_once // 4 and (len(asked) < 2 or left <= asked[1])
    ledger = sim.ledger()
    assert len(ledger) == 60 + sum(asked) == result["requests_sent"]  # each attempt billed and counted
    assert result["cost_usd"] == pytest.approx(ledger_cost(sim), rel=1e-6)
    assert result["succeeded"] == 60
    rows = read_output(out)
    assert sum(bool(r["enrich_flags"]) for r in rows) == left
    exported = sum(float(r["enrich_cost_usd"] or 0) for r in rows)  # every attempt on its row
    assert exported == pytest.approx(ledger_cost(sim), rel=1e-6)


def test_regenerate_asks_with_the_broken_rule_and_keeps_the_earlier_answer(sim, data_dir):
    from lib.engine.regenerate import latest, regenerate_plan
    from lib.engine.runs import stored_results

    sim.configure(p_defect=1.0, defects=["banned_phrase"])
    plan = quality_plan(sim, 6)
    job = live_run(sim, plan, data_dir, "sk-test-regen")
    again = regenerate_plan(plan, job.rows(), 1, sim.url)
    assert again is not None and [i.row_id for i in again.items] == [i.row_id for i in plan.items]
    for item, old in zip(again.items, sorted(job.rows(), key=lambda r: r.row_id), strict=True):
        extra = item.body["messages"][-2:]
        assert extra[0] == {"role": "assistant", "content": old.text}
        assert "banned phrase" in extra[1]["content"] and replies.DEFECT_PHRASE in extra[1]["content"]
    sim.configure(defects=[])  # still answering as in defect mode (naming the company), but cleanly
    second = live_run(sim, again, data_dir, "sk-test-regen")
    rows = latest(job.rows(), second.rows())
    assert quality_counts(with_list_checks(rows, plan.meta)) == {}
    earlier = Store(data_dir).rows(plan.run_id)  # the first answers stay in their run, for review
    assert all(replies.DEFECT_PHRASE in r.text for r in earlier)
    shown = stored_results(Store(data_dir), plan.run_id)  # the results show the regenerated ones
    assert not any(replies.DEFECT_PHRASE in t for t in shown[plan.meta["output_columns"]["output"]])
    assert set(shown["enrich_flags"]) == {""}
    assert shown["enrich_cost_usd"].sum() == pytest.approx(ledger_cost(sim), rel=1e-6)  # both attempts
    assert regenerate_plan(plan, rows, 2, sim.url) is None  # nothing flagged: nothing to ask


def test_cli_regenerate_stays_under_the_budget(sim, tmp_path):
    kinds = ["too_long"]
    sim.configure(p_defect=0.5, defects=kinds)
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(60))
    base = ["run", str(path), "--output", str(tmp_path / "out.csv"), "--template", CLI_TEMPLATE,
            "--max-tokens", "400", "--workers", "4", *CLI_CHECKS]  # fmt: skip
    first = summary(cli(*base, "--data-dir", str(tmp_path / "a"), sim_url=sim.url, cwd=tmp_path))
    # Room for the first answers plus a few of the ~30 asked again (each reserves 400 output tokens), not all.
    budget = first["cost_usd"] + 0.0015
    sim.reset(SimConfig(today=SIM_TODAY, p_defect=0.5, defects=kinds))
    proc = cli(*base, "--regenerate", "2", "--budget", f"{budget:.10f}", "--data-dir", str(tmp_path / "b"),
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    result = summary(proc)
    assert result["cost_usd"] <= budget + 1e-12
    assert result["cost_usd"] == pytest.approx(ledger_cost(sim), rel=1e-6)
    assert "budget" in result["regenerate_stopped"].lower()
    assert 60 < len(sim.ledger()) < 60 + first["quality"]["too_long"]


@pytest.mark.parametrize(
    ("meta", "kind"),
    [({}, "run"), ({"sample": True}, "sample"), ({"kind": "regenerate", "attempt": 2}, "regenerate 2")],
)
def test_history_names_regenerate_attempts(meta, kind):
    from lib.store import RunRecord
    from lib.views.history import history_frame

    record = RunRecord("r", 1_700_000_000.0, 1_700_000_000.0, "finished", None, {"prompt_name": "p", **meta})
    assert list(history_frame([record])["kind"]) == [kind]


@pytest.mark.parametrize("rows_per_request", [1, 5], ids=["one-row-per-request", "packed-5"])
def test_packed_answers_are_checked_like_any_other(sim, data_dir, rows_per_request):
    """max_words=2 breaks every answer: 10 of 10 flagged, one row per request or packed (before: 0 packed)."""
    spec = PromptSpec(name="quality", template=TEMPLATE, checks=Checks(max_words=2))
    options = RunOptions(model="gpt-4o-mini", max_tokens=400, rows_per_request=rows_per_request)
    plan = plan_run(leads(10, company=lambda i: f"Acme{i} Freight"), spec, options, base_url=sim.url)
    assert len(plan.packs) == (2 if rows_per_request == 5 else 0)
    job = live_run(sim, plan, data_dir, f"sk-test-quality-packed-{rows_per_request}")
    rows = job.rows()
    assert job.snapshot().succeeded == 10 and job.snapshot().flagged == 10
    assert all(checks.TOO_LONG in r.flags for r in rows)
    assert all(("packed" in r.flags) == (rows_per_request > 1) for r in rows)
    assert quality_counts(rows) == {checks.TOO_LONG.removeprefix("quality:"): 10}


def test_cli_regenerate_asks_again_at_the_runs_service_tier(sim, tmp_path):
    """The command line's --regenerate is lib's (regenerate.Rounds): the attempt goes at the run's tier and
    ceilings (before, its own copy sent it at the default tier)."""
    from lib.store import Store

    sim.configure(p_defect=1.0, defects=["banned_phrase"])
    path = tmp_path / "leads.csv"
    path.write_bytes(apollo_csv(6))
    data = tmp_path / "data"
    proc = cli("run", str(path), "--output", str(tmp_path / "out.csv"), "--template", CLI_TEMPLATE, "--model",
               "gpt-5-mini", "--max-tokens", "400", "--workers", "2", "--service-tier", "flex", "--rpm", "900",
               "--regenerate", "1", *CLI_CHECKS, "--data-dir", str(data), sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    result = summary(proc)
    assert result["regenerated"] == [6], proc.stderr
    store = Store(data)
    (attempt,) = [r for r in store.runs() if r.meta.get("kind") == "regenerate"]
    assert {r.service_tier for r in store.rows(attempt.run_id)} == {"flex"}
    assert (
        attempt.meta["run_settings"]["service_tier"] == "flex" and attempt.meta["run_settings"]["rpm"] == 900
    )
    assert all(e["service_tier"] == "flex" for e in sim.ledger())
