"""The review queue's lib parts: acceptances kept in the store, edited answers checked again, regenerated
answers laid over with every attempt's cost, and the views the pages draw."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.cost.pricing import Usage
from lib.engine import runs
from lib.engine.runs import laid_over, results_frame, reviewed
from lib.prompts import checks
from lib.prompts.checks import Checks
from lib.prompts.library import dump_spec
from lib.prompts.templates import PromptSpec
from lib.store import RowRecord, Store
from lib.views import live_table, review

SPEC = PromptSpec(
    name="Line",
    template="Write about {{ Company }}",
    output_columns=("line",),
    checks=Checks(max_words=5, banned=("amazing",)),
)
META = {"prompt_yaml": dump_spec(SPEC), "columns": ["Company"], "output_columns": {"line": "line"}}
INPUTS = {i: {"Company": c} for i, c in enumerate(["Acme", "Globex", "Initech", "Umbrella", "Hooli"], 1)}
TRUNCATED = "The answer hit the max tokens limit and is cut short."


def answered(row_id: int, text: str, *extra_flags: str, extra_error: str | None = None, **kw) -> RowRecord:
    """A succeeded row judged as the engine judges it: its own flags and sentences, then the checks'."""
    found = checks.check_answer(SPEC.checks, text, INPUTS[row_id])
    error = " ".join([*([extra_error] if extra_error else []), *(f.message for f in found)]) or None
    flags = (*extra_flags, *(f.flag for f in found))
    return RowRecord(row_id, "succeeded", text=text, flags=flags, error=error, **kw)


# ----------------------------------------------------------------------------------- acceptances in the store


def make_run(store: Store, run_id: str, meta: dict | None = None) -> None:
    store.create_run(
        run_id, meta or {"model": "m"}, [(i, f"h{i}", None, INPUTS[i], "pending") for i in INPUTS]
    )


def test_acceptances_survive_a_reopen_and_can_be_taken_back(data_dir):
    store = Store(data_dir)
    make_run(store, "r1")
    make_run(store, "r2")
    store.accept("r1", [2, 4])
    store.accept("r1", [2])  # twice is once
    store.accept("r2", [1])
    store.close()
    store = Store(data_dir)
    assert store.accepted("r1") == {2, 4} and store.accepted("r2") == {1}
    store.accept("r1", [4], accepted=False)
    assert store.accepted("r1") == {2}
    store.delete_run("r1")
    assert store.accepted("r1") == frozenset() and store.accepted("r2") == {1}
    store.close()


def test_regenerations_are_found_by_the_run_they_ask_again(data_dir):
    store = Store(data_dir)
    make_run(store, "parent")
    make_run(store, "other")
    make_run(store, "again-1", {"kind": "regenerate", "regenerates": "parent", "attempt": 1})
    make_run(store, "elsewhere", {"kind": "regenerate", "regenerates": "other", "attempt": 1})
    make_run(store, "again-2", {"kind": "regenerate", "regenerates": "parent", "attempt": 2})
    assert store.regenerations("parent") == ["again-1", "again-2"]
    assert store.regenerations("again-1") == []
    store.close()


# ----------------------------------------------------------------------------------------- reviewed rows

REVIEW_CASES = [
    # (row as answered, the user's edit of `line` or None, accepted?, flags after, error holds, error lacks)
    (answered(1, "Acme is an amazing firm"), None, False, ("quality:banned_phrase",), ["'amazing'"], []),
    (answered(1, "Acme is an amazing firm"), None, True, ("accepted:banned_phrase",), ["'amazing'"], []),
    (answered(1, "Acme is an amazing firm"), "Acme ships fast", False, (), [], ["amazing"]),
    (answered(1, "Acme ships fast"), "Acme is amazing", False, ("quality:banned_phrase",), ["(word 3)"], []),
    (
        answered(1, "Acme is an amazing firm"),
        "Acme: amazing",
        True,
        ("accepted:banned_phrase",),
        ["(word 2)"],  # the sentence is about the edited text
        ["(word 4)"],
    ),
    (
        answered(2, "one two three four five six seven", "truncated", extra_error=TRUNCATED),
        "Globex, briefly",
        False,
        ("truncated",),  # the cut is the model's: the edit leaves it said, the length is fixed
        ["max tokens"],
        ["7 words"],
    ),
    (
        answered(2, "Globex ships fast"),
        "Globex ships parcels to every city twice a day",
        False,
        ("quality:too_long",),
        ["9 words"],
        [],
    ),
    (RowRecord(3, "failed", error="Timed out."), "typed over a failure", False, (), ["Timed out."], []),
]


@pytest.mark.parametrize(("row", "edit", "accept", "flags", "holds", "lacks"), REVIEW_CASES)
def test_edited_answers_are_checked_again_and_accepted_ones_no_longer_flagged(
    row, edit, accept, flags, holds, lacks
):
    edits = {row.row_id: {"line": edit}} if edit is not None else {}
    out = reviewed({row.row_id: row}, META, INPUTS, edits, {row.row_id} if accept else ())[row.row_id]
    assert out.flags == flags
    for words in holds:
        assert words in (out.error or "")
    for words in lacks:  # no sentence about text the answer no longer has
        assert words not in (out.error or "")


def test_repeated_openers_are_read_from_the_answers_as_edited():
    rows = {i: answered(i, f"As a leader, {INPUTS[i]['Company']}") for i in (1, 2, 3, 4)}
    rows[5] = answered(5, "Hooli ships fast")
    flagged = reviewed(rows, META)
    assert {i for i, r in flagged.items() if checks.REPEATED_OPENER in r.flags} == {1, 2, 3, 4}
    edits = {1: {"line": "Acme ships fast"}, 2: {"line": "Globex ships well"}}
    after = reviewed(rows, META, INPUTS, edits)
    assert {i for i, r in after.items() if checks.REPEATED_OPENER in r.flags} == set()  # 2 of 5 is no pattern
    accepted = reviewed(rows, META, INPUTS, {}, {3})
    assert accepted[3].flags == ("accepted:repeated_opener",)  # not flagged again by the list-level check
    assert runs.with_list_checks(list(accepted.values()), META)  # idempotent on its own output
    assert reviewed(accepted, META, INPUTS, {}, {3})[3].flags == ("accepted:repeated_opener",)


def test_the_results_table_carries_acceptances_and_rechecked_edits():
    rows = [answered(1, "Acme is an amazing firm"), answered(2, "Globex is amazing"), answered(3, "Initech")]
    frame = results_frame({i: INPUTS[i] for i in (1, 2, 3)}, rows, META, {2: {"line": "Globex ships"}}, {1})
    assert list(frame["enrich_flags"]) == ["accepted:banned_phrase", "", ""]
    assert list(frame["line"]) == ["Acme is an amazing firm", "Globex ships", "Initech"]
    assert list(live_table.filter_results(frame, "Flagged").index) == []  # accepted is not flagged


# --------------------------------------------------------------------------------- regenerated answers

PAID = {"usage": Usage(100, 20), "cost_usd": 0.002}


@pytest.mark.parametrize(
    ("attempts", "text", "cost", "from_cache"),
    [
        ([], "first", 0.002, False),
        ([[RowRecord(1, "succeeded", text="second", **PAID)]], "second", 0.004, False),
        (
            [
                [RowRecord(1, "failed", error="Timed out.", **PAID)],
                [RowRecord(1, "succeeded", text="third", **PAID)],
            ],
            "third",
            0.006,  # a failed attempt was billed too
            False,
        ),
        ([[RowRecord(1, "pending")]], "first", 0.002, False),  # an attempt still going changes nothing
        ([[RowRecord(1, "succeeded", text="cached", from_cache=True, **PAID)]], "cached", 0.002, False),
    ],
)
def test_regenerated_answers_are_laid_over_with_every_attempts_cost(attempts, text, cost, from_cache):
    (row,) = laid_over([RowRecord(1, "succeeded", text="first", **PAID)], attempts)
    assert row.text == text and row.cost_usd == pytest.approx(cost) and row.from_cache is from_cache
    assert row.usage.prompt_tokens == round(cost / 0.002) * 100


def test_a_regenerated_answer_of_a_reused_row_carries_only_what_was_paid():
    reused = RowRecord(1, "succeeded", text="old", from_cache=True, **PAID)
    (row,) = laid_over([reused], [[RowRecord(1, "succeeded", text="new", **PAID)]])
    assert row.cost_usd == pytest.approx(0.002) and not row.from_cache


# -------------------------------------------------------------------------------------------------- views


def frame_of(flags: list[str]) -> pd.DataFrame:
    ids = list(range(1, len(flags) + 1))
    return pd.DataFrame(
        {
            "Company": [f"Co{i}" for i in ids],
            "line": [f"answer {i}" for i in ids],
            "enrich_error": [f"why {i}" if f else "" for i, f in zip(ids, flags, strict=True)],
            "enrich_flags": flags,
        },
        index=pd.Index(ids, name="row_id"),
    )


FLAGS = [
    "",
    "quality:too_long",
    "accepted:banned_phrase",
    "truncated,quality:too_long,quality:placeholder",
    "",
]


def test_counts_and_summary_leave_accepted_rows_out():
    frame = frame_of(FLAGS)
    assert review.counts(frame) == {"too_long": 2, "placeholder": 1}
    assert review.waiting(frame) == 2
    assert (
        review.summary_text(frame)
        == "2 rows need review (too long: 2 · left-over placeholder: 1) · 1 accepted"
    )
    assert review.summary_text(frame_of(["", "accepted:too_long"])) == "No answer needs review · 1 accepted."
    assert review.summary_text(frame_of(["quality:too_long"])) == "1 row needs review (too long: 1)"


def test_the_queue_lists_flagged_rows_with_checks_and_reasons():
    queue = review.queue(frame_of(FLAGS), ["line"], ["Company"])
    assert list(queue.index) == [2, 4]
    assert list(queue.columns) == ["Company", "checks", "reason", "line"]
    assert list(queue["checks"]) == ["too long", "too long, left-over placeholder"]
    assert list(queue["reason"]) == ["why 2", "why 4"]
    assert review.queue(frame_of(["", ""]), ["line"]).empty
    assert (
        review.row_label(frame_of(FLAGS), 4, ["Company"]) == "Row 4 · Co4 · too long, left-over placeholder"
    )
    assert review.row_label(frame_of(FLAGS), 1, ["Company"]) == "Row 1 · Co1"


@pytest.mark.parametrize(
    ("flags", "order"),
    [
        (["", "", ""], [1, 2, 3]),
        (["", "quality:too_long", ""], [2, 1, 3]),
        (["accepted:too_long", "", "quality:placeholder"], [3, 1, 2]),
    ],
)
def test_the_live_table_puts_flagged_rows_first_under_a_key_per_order(flags, order):
    frame = frame_of(flags)
    assert review.live_order(frame) == order
    key = review.editor_key("run1", order, [1, 2, 3])
    assert (key == "editor_run1") is (order == [1, 2, 3])
    assert key == review.editor_key("run1", list(order), [1, 2, 3])  # the same order, the same key
    edits = live_table.merge_editor_edits({}, {0: {"line": "typed"}}, order, ["line"])
    assert edits == {order[0]: {"line": "typed"}}  # position 0 of the order drawn, not of the run


# ------------------------------------------------------------------- asking again from the app, budgeted


def flagged_run(sim, data_dir):
    """Eight rows over the simulator, every answer using a banned phrase; the run in the store."""
    from lib.sim import replies
    from tests.test_quality import live_run, quality_plan

    sim.configure(p_defect=1.0, defects=["banned_phrase"])
    plan = quality_plan(sim, 8)
    job = live_run(sim, plan, data_dir, "sk-test-review")
    job.store.close()
    sim.configure(defects=[])  # asked again, the simulator answers cleanly
    assert replies.DEFECT_PHRASE in job.rows()[0].text
    return plan


@pytest.mark.parametrize(
    ("budget", "asked"),
    [
        (None, 6),  # rows 2 and 5: accepted and edited, left as they are
        ("spent", None),  # nothing left of the budget: refused, nothing sent
        ("spent+", 6),  # what is left is the attempt's budget
    ],
)
def test_start_again_asks_flagged_rows_under_what_is_left_of_the_budget(sim, data_dir, budget, asked):
    from lib.engine import regenerate
    from lib.engine.client import Endpoint
    from tests.test_quality import ledger_cost

    plan = flagged_run(sim, data_dir)
    store = Store(data_dir)
    store.accept(plan.run_id, [2])
    store.save_edits(plan.run_id, {5: {"output": "An edit that names no company."}})
    spent = regenerate.spent(store, plan.run_id)
    assert spent == pytest.approx(ledger_cost(sim), rel=1e-9) and spent > 0
    limit = {None: None, "spent": spent, "spent+": spent + 0.01}[budget]
    record = store.run(plan.run_id)
    store.set_run_status(plan.run_id, record.status, None, run_settings={"workers": 4, "budget_usd": limit})
    assert regenerate.askable(store, plan.run_id) == [1, 3, 4, 6, 7, 8]
    endpoint = Endpoint(api_key="sk-test-review", base_url=sim.url)
    billed = len(sim.ledger())
    if asked is None:
        with pytest.raises(regenerate.RegenerateError, match="budget"):
            regenerate.start_again(store, plan.run_id, endpoint)
        assert len(sim.ledger()) == billed
        store.close()
        return
    sim.configure(hold=True)  # the attempt stays in flight until the second click has been made
    job = regenerate.start_again(store, plan.run_id, endpoint)
    assert regenerate.start_again(store, plan.run_id, endpoint) is job  # a second click: the same attempt
    sim.configure(hold=False)
    assert job.wait(30)
    assert len(sim.ledger()) == billed + asked
    assert job.snapshot().budget_usd == (None if limit is None else pytest.approx(limit - spent))
    frame = runs.stored_results(store, plan.run_id)
    waiting = {int(i) for i, f in frame["enrich_flags"].items() if review.is_quality_flagged(f)}
    assert waiting == {5}  # the edit breaks must-mention; the asked rows are clean; row 2 is accepted
    assert frame["enrich_cost_usd"].sum() == pytest.approx(ledger_cost(sim), rel=1e-9)
    assert regenerate.spent(store, plan.run_id) == pytest.approx(ledger_cost(sim), rel=1e-9)
    assert [len(regenerate.earlier_answers(store, plan.run_id, i)) for i in (1, 2)] == [1, 0]
    store.close()


@pytest.mark.parametrize(
    ("live", "stamp", "after_s", "order"),
    [
        (True, "same", 1.0, [1, 2, 3]),  # a run going: a new flag waits for the next refresh
        (True, "same", 10.0, [2, 1, 3]),  # ... which comes every 10 s
        (True, "accepted one", 1.0, [2, 1, 3]),  # the user's own change shows at once
        (False, "same", 0.0, [2, 1, 3]),  # a run that stopped: every draw
    ],
)
def test_the_live_order_is_kept_a_while_so_the_grid_is_not_remounted_each_redraw(live, stamp, after_s, order):
    sorter = review.LiveOrder(every_s=10.0)
    assert sorter.view(frame_of(["", "", ""]), live=True, stamp="same", now=100.0)[0] == [1, 2, 3]
    later = frame_of(["", "quality:too_long", ""])
    got, shown = sorter.view(later, live=live, stamp=stamp, now=100.0 + after_s)
    assert got == order and [int(i) for i in shown.index] == order
    assert list(shown["enrich_flags"]) == [later.loc[i, "enrich_flags"] for i in order]  # today's cells


def test_start_again_goes_at_the_runs_tier_and_ceilings_and_a_cancel_stops_the_attempt(sim, data_dir):
    """One regenerate in lib for the app and the CLI: the attempt carries the run's service tier, ceilings and
    what is left of its budget; a cancel (Ctrl-C on the command line) stops it with its rows pending."""
    from lib.engine import regenerate
    from lib.engine.client import Endpoint
    from tests.engine_helpers import wait_until

    plan = flagged_run(sim, data_dir)
    store = Store(data_dir)
    record = store.run(plan.run_id)
    kept = {"workers": 2, "rpm": 700, "tpm": 90_000, "service_tier": "priority", "budget_usd": 5.0}
    store.set_run_status(plan.run_id, record.status, None, run_settings=kept)
    spent = regenerate.spent(store, plan.run_id)
    sim.configure(hold=True)  # the attempt stays in flight until it has been cancelled
    job = regenerate.start_again(store, plan.run_id, Endpoint(api_key="sk-test-review", base_url=sim.url))
    s = job.settings
    assert (s.workers, s.rpm, s.tpm, s.service_tier) == (2, 700, 90_000, "priority")
    assert s.budget_usd == pytest.approx(5.0 - spent)
    assert wait_until(lambda: sim.stats()["held_now"] >= 1)
    job.cancel()
    sim.configure(hold=False)
    assert job.wait(20) and job.snapshot().status == "cancelled"
    assert job.snapshot().pending > 0  # the rows not sent stay pending: the attempt can be continued
    store.close()
