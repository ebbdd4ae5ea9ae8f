"""Issue 21 over real HTTP: the strict simulator refuses what OpenAI refuses, and the engine learns from it.

Every run here goes through the SDK to lib/sim on loopback; the simulator's rules are its own (lib/sim/models.py),
so a model the client's catalog does not know is as strict in these tests as it would be at OpenAI.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from lib import engine
from lib.engine.runs import RunOptions, plan_run
from lib.prompts import templates
from lib.prompts.library import PromptLibrary
from lib.prompts.templates import PromptSpec
from lib.store import Store
from tests.engine_helpers import leads

SPEC = PromptSpec(name="t", template="Write one friendly line for {{ First Name }} at {{ Company }}.")
# A name no catalog knows, refusing what reasoning models refuse: max_tokens, a temperature, effort "none".
ACME = {
    "acme-reasoner-2": {"reasoning": True, "efforts": ["low", "medium", "high"], "default_effort": "medium"}
}


def start(sim, df, data_dir, *, model, key="sk-test-shapes", wait=True, **options):
    p = plan_run(df, SPEC, RunOptions(model=model, **options), base_url=sim.url)
    job = engine.start(
        p,
        endpoint=engine.Endpoint(api_key=key, base_url=sim.url),
        settings=engine.RunSettings(workers=16, timeout_s=10),
        store=Store(data_dir),
    )
    if wait:
        assert job.wait(120)
    return job


def refusals(sim) -> Counter:
    """The 400s the simulator answered, by the parameter it named (from its own counters)."""
    return Counter({k: v for k, v in sim.stats()["by_status"].items() if k == "400"})


@pytest.mark.parametrize("model", ["gpt-6-luna", "acme-reasoner-2"])
def test_a_300_row_run_answers_every_row_and_pays_each_once(sim, data_dir, model):
    sim.configure(extra_models=ACME)
    job = start(sim, leads(300), data_dir, model=model, max_tokens=60, temperature=0.7)
    snap = job.snapshot()
    assert (snap.succeeded, snap.failed, snap.pending) == (300, 0, 0), snap.recent_errors
    assert Counter(int(e["row_id"]) for e in sim.ledger()) == Counter(range(1, 301))  # each row billed once
    refused = sim.stats()["by_status"].get("400", 0)
    if model == "gpt-6-luna":  # the catalog knows it: nothing refused, nothing adjusted
        assert refused == 0 and snap.adjustments == ()
    else:  # one refusal per refused parameter, not one per row
        assert refused == 3
        assert snap.adjustments == (
            "acme-reasoner-2 does not take max_tokens: sent as max_completion_tokens.",
            "acme-reasoner-2 does not take a temperature: sent without it.",
            "acme-reasoner-2 does not take reasoning effort 'none': sent with 'low' (it takes low, medium, high).",
        )
    assert {e["reasoning_effort"] for e in sim.ledger()} == {"none" if model == "gpt-6-luna" else "low"}
    assert snap.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in job.rows()))


def test_the_fix_is_remembered_by_the_next_run(sim, data_dir):
    sim.configure(extra_models=ACME)
    start(sim, leads(20), data_dir, model="acme-reasoner-2", max_tokens=60, temperature=0.7)
    assert sim.stats()["by_status"]["400"] == 3
    sim.reset(sim.config)  # a new ledger and counters, the same rules
    again = start(sim, leads(40), data_dir, model="acme-reasoner-2", max_tokens=60, temperature=0.7)
    assert again.snapshot().succeeded == 40
    assert sim.stats()["by_status"].get("400", 0) == 0  # the store taught the second run
    assert again.snapshot().adjustments == ()
    assert Store(data_dir).run(again.id).meta.get("adjusted") is None


def test_an_unknown_model_behind_a_gateway_wording_is_learnt_too(sim, data_dir):
    sim.configure(extra_models=ACME, error_style="litellm")
    job = start(sim, leads(30), data_dir, model="acme-reasoner-2", max_tokens=60, temperature=0.7)
    assert job.snapshot().succeeded == 30, job.snapshot().recent_errors
    assert sim.stats()["by_status"]["400"] == 3


@pytest.mark.parametrize(
    ("effort", "cap", "reasoning", "cut"),
    [("none", 80, False, False), ("medium", 80, True, True), ("medium", 2000, True, False)],
)
def test_effort_none_against_medium(sim, data_dir, effort, cap, reasoning, cut):
    job = start(sim, leads(24), data_dir, model="gpt-6-luna", max_tokens=cap, reasoning_effort=effort)
    rows = job.rows()
    spent = sum(r.usage.reasoning_tokens for r in rows)
    assert (spent > 0) is reasoning
    assert job.snapshot().reasoning_tokens == spent
    cut_rows = [r for r in rows if "reasoning_cut" in r.flags]
    assert bool(cut_rows) is cut
    for row in cut_rows:
        assert "hidden reasoning" in row.error and row.status == "succeeded"
    assert {e["reasoning_effort"] for e in sim.ledger()} == {effort}


def test_a_model_past_its_shutdown_stops_before_anything_is_paid(sim, data_dir):
    job = start(sim, leads(10), data_dir, model="o4-mini", max_tokens=60)  # shut down 23 Oct 2026
    snap = job.snapshot()
    assert snap.status == "failed" and snap.pending == 10 and snap.requests_sent == 0
    assert "shut down on 23 Oct 2026" in snap.message and "gpt-6-luna" in snap.message
    assert sim.stats()["total"] == 0 and sim.ledger() == []


def test_a_404_model_not_found_stops_with_every_row_pending(sim, data_dir):
    # The server shut a model down that the catalog still thinks is current: the first 404 stops the run.
    sim.configure(extra_models={"acme-old": {"shutdown_date": "2026-11-30"}})
    job = start(sim, leads(50), data_dir, model="acme-old", max_tokens=60)
    snap = job.snapshot()
    assert snap.status == "failed" and snap.succeeded == 0 and snap.failed == 0 and snap.pending == 50
    assert "does not exist" in snap.message and sim.ledger() == []
    assert sim.stats()["by_status"].get("404", 0) <= 2  # found with the first request, not 50 times


@pytest.mark.parametrize("name", PromptLibrary().names())
def test_every_library_prompt_answers_a_sample_on_its_model_as_shipped(sim, data_dir, name):
    """Each shipped prompt tried again on a sample against the strict server: no refusal, no hidden thinking."""
    spec = PromptLibrary().load(name)
    fields = templates.placeholders(spec.system) + templates.placeholders(spec.template)
    df = pd.DataFrame({f: [f"{f} value {i}" for i in range(1, 6)] for f in dict.fromkeys(fields)})
    df.index = pd.RangeIndex(1, 6, name="row_id")
    options = RunOptions(
        model=spec.model,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        reasoning_effort=spec.reasoning_effort,
    )
    job = engine.start(
        plan_run(df, spec, options, base_url=sim.url),
        endpoint=engine.Endpoint(api_key="sk-test-library", base_url=sim.url),
        settings=engine.RunSettings(workers=4, timeout_s=10),
        store=Store(data_dir),
    )
    assert job.wait(60)
    snap = job.snapshot()
    assert snap.succeeded == 5 and snap.adjustments == (), (snap.recent_errors, snap.adjustments)
    assert sim.stats()["by_status"].get("400", 0) == 0
    assert {e["reasoning_effort"] for e in sim.ledger()} == {"none"}
    # (the simulator's replies are longer than a company name: a short cap may cut them, but never thinking)
    assert not any("reasoning_cut" in r.flags for r in job.rows())
