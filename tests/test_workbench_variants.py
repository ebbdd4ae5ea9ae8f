"""Variants over the same sample rows (lib/workbench/variants.py), against the local server: what is sent,
what is reused, and that the cost shown is what the server billed."""

from __future__ import annotations

import socket

import pytest

from lib.cost.pricing import Usage, cost, price_for
from lib.engine import RunSettings
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions
from lib.prompts.templates import PromptSpec
from lib.sim import expected_reply
from lib.store import Store
from lib.workbench.compare import build_matrix, differing_rows, totals
from lib.workbench.variants import CompareError, Variant, run_variants
from tests.engine_helpers import TEMPLATE, leads

OTHER = "Write a short opener for {{ First Name }} who works at {{ Company }}."
ROWS = [2, 4, 5]


def variant(name: str, template: str = TEMPLATE, model: str = "gpt-4o-mini", **options) -> Variant:
    """A variant of the prompt 'test' (the prompt's name is in its requests' prompt_cache_key)."""
    return Variant(
        name, PromptSpec(name="test", template=template), RunOptions(model=model, max_tokens=60, **options)
    )


@pytest.fixture
def store(data_dir):
    s = Store(data_dir)
    yield s
    s.close()


def compare(sim, store, variants, rows=ROWS, df=None, **kwargs):
    return run_variants(
        df if df is not None else leads(6),
        rows,
        variants,
        endpoint=Endpoint(api_key="sk-test-compare", base_url=sim.url),
        store=store,
        settings=RunSettings(workers=4, timeout_s=5),
        governor=Governor(),
        **kwargs,
    )


def billed_usd(sim) -> float:
    return sum(
        cost(Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"]), price_for(e["model"]))
        for e in sim.ledger()
    )


def shown_usd(runs) -> float:
    m = build_matrix(ROWS, {r.variant.name: r.rows for r in runs})
    return sum(totals(m, r.variant.name, r.variant.options.model).cost_usd for r in runs)


def test_two_variants_and_a_copy_of_the_first(sim, store):
    runs = compare(sim, store, [variant("A"), variant("B", OTHER), variant("A again")])
    a, b, again = runs
    assert [r.requests_sent for r in runs] == [3, 3, 0]  # the copy sends nothing
    assert (a.same_as, b.same_as, again.same_as) == (None, None, "A")
    assert again.run_id == a.run_id and a.run_id != b.run_id
    assert all(r.status == "finished" for r in runs)
    for r in runs:
        assert [row.row_id for row in r.rows] == ROWS  # exactly the sample's rows
        assert all(row.status == "succeeded" for row in r.rows)
        assert all(row.text == expected_reply(r.plan.items[i].body["messages"], "gpt-4o-mini")
                   for i, row in enumerate(r.rows))  # fmt: skip
    m = build_matrix(ROWS, {r.variant.name: r.rows for r in runs})
    assert differing_rows(m) == ROWS  # B's words differ on every row; A and its copy agree
    copy = totals(m, "A again", "gpt-4o-mini")
    assert (copy.reused, copy.cost_usd, copy.prompt_tokens, copy.mean_latency_s) == (3, 0.0, 0, None)
    assert copy.cost_if_paid == pytest.approx(totals(m, "A", "gpt-4o-mini").cost_usd)
    assert sim.stats()["billed"] == 6
    assert shown_usd(runs) == pytest.approx(billed_usd(sim), rel=1e-9)  # to the cent and below
    ledger_tokens = sum(e["prompt_tokens"] for e in sim.ledger())
    assert sum(totals(m, r.variant.name, "gpt-4o-mini").prompt_tokens for r in runs) == ledger_tokens
    meta = store.run(b.run_id).meta
    assert (meta["sample"], meta["compare"], meta["variant"]) == (True, True, "B")


def test_a_second_compare_over_the_same_rows_sends_nothing_and_costs_nothing(sim, store):
    compare(sim, store, [variant("A"), variant("B", OTHER)])
    billed = sim.stats()["billed"]
    again = compare(sim, store, [variant("A"), variant("B", OTHER)])
    assert sim.stats()["billed"] == billed == 6
    assert [r.requests_sent for r in again] == [0, 0]
    assert all(row.from_cache for r in again for row in r.rows)
    assert shown_usd(again) == 0.0


def test_one_prompt_on_two_models_and_temperatures_are_different_variants(sim, store):
    runs = compare(
        sim, store,
        [variant("mini"), variant("4o", model="gpt-4o"), variant("warm", temperature=0.9)],
    )  # fmt: skip
    assert [r.requests_sent for r in runs] == [3, 3, 3] and all(r.same_as is None for r in runs)
    assert {e["model"] for e in sim.ledger()} == {"gpt-4o-mini", "gpt-4o"}
    m = build_matrix(ROWS, {r.variant.name: r.rows for r in runs})
    shown = sum(totals(m, r.variant.name, r.variant.options.model).cost_usd for r in runs)
    assert shown == pytest.approx(billed_usd(sim), rel=1e-9)


def test_a_failing_row_is_a_cell_with_an_error_not_the_end_of_the_compare(sim, store):
    df = leads(6, lambda i: f"Company {i} [[sim:context_length]]" if i == 4 else f"Company {i}")
    runs = compare(sim, store, [variant("A"), variant("B", OTHER)], df=df)
    for r in runs:
        rows = {row.row_id: row for row in r.rows}
        assert rows[4].status == "failed" and rows[4].error
        assert rows[2].status == rows[5].status == "succeeded"


def test_a_variant_that_cannot_be_planned_stops_the_compare_before_anything_is_sent(sim, store):
    with pytest.raises(CompareError, match="Variant 'B'.*Title"):
        compare(sim, store, [variant("A"), variant("B", "Hi {{ Title }}")])
    assert sim.stats()["billed"] == 0


def test_an_endpoint_that_is_not_there_stops_each_variant_with_its_rows_pending(store):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = []
    runs = run_variants(
        leads(6),
        ROWS,
        [variant("A"), variant("B", OTHER)],
        endpoint=Endpoint(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1"),
        store=store,
        settings=RunSettings(workers=3, timeout_s=2, max_attempts=2),
        governor=Governor(),
        on_progress=lambda name, snap: seen.append((name, snap.status)),
    )
    assert [r.status for r in runs] == ["failed", "failed"]
    assert all("cannot be reached" in r.message for r in runs)
    assert all(row.status == "pending" for r in runs for row in r.rows)
    assert [name for name, status in seen if status == "failed"][-2:] == ["A", "B"]  # told as each ended


def test_a_variant_that_takes_too_long_is_cancelled_and_the_next_one_still_runs(sim, store):
    slow = variant("slow", TEMPLATE + " [[sim:latency=2500]]")
    runs = compare(sim, store, [slow, variant("B", OTHER)], timeout_s=1.0)
    assert runs[0].status == "cancelled" and "Not finished within 1 s" in runs[0].message
    assert {r.status for r in runs[0].rows} <= {"pending", "succeeded"}  # answers in flight are still kept
    assert runs[1].status == "finished" and all(r.status == "succeeded" for r in runs[1].rows)
