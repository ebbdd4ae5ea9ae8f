"""The review queue on Results under AppTest: flagged rows with reasons, accept, edit, regenerate, kept."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from lib import engine
from lib.cost.pricing import Usage, cost, price_for
from lib.engine import regenerate, runs
from lib.prompts.checks import Checks
from lib.sim import replies
from lib.store import Store
from lib.views import review
from tests.apptest_helpers import (
    all_text,
    choose_prompt,
    edit_workspace,
    goto,
    new_app,
    upload,
    wait_for_run,
    workspace,
)

pytestmark = pytest.mark.usefixtures("app_env")


BANNED = (replies.DEFECT_PHRASE, "amazing")


_OPEN: dict[str, Store] = {}


@pytest.fixture(autouse=True)
def _close_stores():
    """One Store per test's data dir, closed after it (each open Store holds three file descriptors)."""
    yield
    while _OPEN:
        _OPEN.popitem()[1].close()


def store() -> Store:
    """The app's store, as another process would open it (the page's own Store is not shared)."""
    path = os.environ["LEAD_STUDIO_DATA_DIR"]
    if path not in _OPEN:
        _OPEN[path] = Store(path)
    return _OPEN[path]


def run_flagged_list(sim):
    """The four-lead list through the shipped Icebreaker, every answer using a phrase its checks ban."""
    sim.configure(p_defect=1.0, defects=["banned_phrase"])
    at = choose_prompt(upload(new_app()))
    # The simulator's clean answers run 5-40 words: only the banned phrases are checked here.
    edit_workspace(
        at, lambda w: setattr(w, "draft", dataclasses.replace(w.draft, checks=Checks(banned=BANNED)))
    )
    goto(at, "run")
    at.button(key="btn_start").click().run()
    run_id = workspace(at).run_id
    assert wait_for_run(at) == "finished"
    goto(at, "results")
    at.segmented_control(key="res_filter").set_value("Needs review").run()
    assert not at.exception, at.exception
    return at, run_id


def queue_rows(at) -> list[int]:
    """The queue table's row ids (the only table the review view draws)."""
    return [int(i) for i in at.dataframe[0].value.index] if len(at.dataframe) else []


def shown(at) -> str:
    """Every caption, text and label as the user reads it (Markdown escapes taken out)."""
    return all_text(at).replace("\\\\", "")


def edit(at, run_id: str, row_id: int, text: str) -> None:
    """Type an answer into the review form and save it (in one run: a form sends its fields on submit)."""
    at.text_area(key=f"review_text_{row_id}_icebreaker").set_value(text)
    at.button(key=f"FormSubmitter:review_edit_{run_id}_{row_id}-Save edit").click().run()
    assert not at.exception, at.exception


def flags(run_id: str) -> dict[int, str]:
    frame = runs.stored_results(store(), run_id)
    return {int(i): f for i, f in frame["enrich_flags"].items()}


def billed(sim) -> float:
    """What the simulator billed, priced as the app prices it."""
    return sum(
        cost(Usage(e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"]), price_for(e["model"]))
        for e in sim.ledger()
    )


def wait_for_attempt(run_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if regenerate.running_attempt(store(), run_id) is None:
            return
        time.sleep(0.1)
    raise AssertionError("the regenerate attempt did not end")


def test_review_queue_lists_flagged_rows_with_counts_and_reasons(keyed):
    at, run_id = run_flagged_list(keyed)
    assert queue_rows(at) == [1, 2, 3, 4]
    text = shown(at)
    assert "4 rows need review (banned phrase: 4)" in text
    assert "Needs review (4)" in text
    queue = at.dataframe[0].value
    assert set(queue["checks"]) == {"banned phrase"}
    assert all(replies.DEFECT_PHRASE in reason for reason in queue["reason"])
    assert at.selectbox(key="review_row").value == 1

    # Regenerate the picked rows only: two requests, two rows out of the queue.
    keyed.configure(p_defect=1.0, defects=[])
    before = len(keyed.ledger())
    at.multiselect(key="review_pick").set_value([2, 4]).run()
    at.button(key="btn_regenerate_picked").click().run()
    wait_for_attempt(run_id)
    at.run()
    assert not at.exception, at.exception
    assert len(keyed.ledger()) == before + 2
    assert queue_rows(at) == [1, 3]


def test_accept_edit_and_regenerate_rows_from_the_queue(keyed):
    at, run_id = run_flagged_list(keyed)

    # Accept: the row leaves the queue, its flag reads accepted:…, and a new session still finds it so.
    at.button(key="btn_accept_1").click().run()
    assert queue_rows(at) == [2, 3, 4]
    assert store().accepted(run_id) == {1}
    assert flags(run_id)[1] == "accepted:banned_phrase"
    assert "3 rows need review (banned phrase: 3) · 1 accepted" in shown(at)

    # An edit that still uses the phrase stays flagged; one without it leaves the queue.
    at.selectbox(key="review_row").set_value(2).run()
    edit(at, run_id, 2, f"{replies.DEFECT_PHRASE}, Acme.")
    assert not at.exception, at.exception
    assert queue_rows(at) == [2, 3, 4]
    at.selectbox(key="review_row").set_value(2).run()
    edit(at, run_id, 2, "Saw Acme's new office in Boston.")
    assert queue_rows(at) == [3, 4]
    assert flags(run_id)[2] == ""
    assert store().edits(run_id)[2] == {"icebreaker": "Saw Acme's new office in Boston."}

    # Regenerate one row: asked again with the rule it broke, billed, the earlier answer kept.
    keyed.configure(p_defect=1.0, defects=[])
    before = len(keyed.ledger())
    at.selectbox(key="review_row").set_value(3).run()
    at.button(key="btn_regenerate_3").click().run()
    wait_for_attempt(run_id)
    at.run()
    assert not at.exception, at.exception
    assert queue_rows(at) == [4]
    ledger = keyed.ledger()
    assert len(ledger) == before + 1
    (attempt,) = store().regenerations(run_id)
    (body,) = store().requests(attempt).values()
    assert "banned phrase" in body["messages"][-1]["content"]  # the follow-up turn names the broken rule
    frame = runs.stored_results(store(), run_id)
    assert replies.DEFECT_PHRASE not in frame.loc[3, "icebreaker"]
    assert replies.DEFECT_PHRASE in store().rows(run_id)[2].text  # the first answer stays, for review
    assert regenerate.earlier_answers(store(), run_id, 3) == [store().rows(run_id)[2].text]

    # Regenerate the rest in one go: only row 4 is left to ask (1 accepted, 2 edited, 3 regenerated).
    at.button(key="btn_regenerate_all").click().run()
    wait_for_attempt(run_id)
    at.run()
    assert queue_rows(at) == []
    assert "No answer waits for review." in shown(at)
    assert len(keyed.ledger()) == before + 2
    assert len(store().regenerations(run_id)) == 2
    frame = runs.stored_results(store(), run_id)
    assert frame["enrich_cost_usd"].sum() == pytest.approx(billed(keyed), rel=1e-6)  # every attempt
    assert frame["enrich_cost_usd"].sum() == pytest.approx(regenerate.spent(store(), run_id), rel=1e-9)

    # Taking an acceptance back puts the row in the queue again.
    job = engine.get_job(run_id)
    assert job is not None and not job.active
    at.multiselect(key="review_unaccept").set_value([1]).run()
    at.button(key="btn_unaccept").click().run()
    assert queue_rows(at) == [1]
    assert store().accepted(run_id) == frozenset()


def test_the_live_table_puts_flagged_rows_first_and_keeps_edits_on_their_row(keyed):
    keyed.configure(p_defect=0.5, defects=["banned_phrase"])
    at = choose_prompt(upload(new_app()))
    edit_workspace(
        at, lambda w: setattr(w, "draft", dataclasses.replace(w.draft, checks=Checks(banned=BANNED)))
    )
    goto(at, "run")
    at.button(key="btn_start").click().run()
    run_id = workspace(at).run_id
    assert wait_for_run(at) == "finished"
    frame = runs.stored_results(store(), run_id)
    flagged = [int(i) for i, f in frame["enrich_flags"].items() if f]
    assert 0 < len(flagged) < 4, "the seed gives some flagged rows and some clean ones"
    grid = at.data_editor[0].value
    order = [int(i) for i in grid.index]
    assert order == flagged + [i for i in (1, 2, 3, 4) if i not in flagged]
    assert "Flagged rows come first; edits stay with their row." in shown(at)
    assert f"{len(flagged)} row" in shown(at) and "(banned phrase: " in shown(at)

    # An edit at the grid's first position lands on the first flagged row, not on row 1.
    key = review.editor_key(run_id, order, [1, 2, 3, 4])
    at.session_state[key] = {
        "edited_rows": {0: {"icebreaker": "Fixed by hand."}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert store().edits(run_id) == {flagged[0]: {"icebreaker": "Fixed by hand."}}
    assert [int(i) for i in at.data_editor[0].value.index][: len(flagged) - 1] == flagged[1:]  # checked again

    # Accept from the panel; then Regenerate flagged rows (N) asks the rest again, live.
    if len(flagged) > 2:
        at.button(key=f"btn_live_accept_{flagged[1]}").click().run()
        assert store().accepted(run_id) == {flagged[1]}
    left = [i for i in flagged[1:] if i not in store().accepted(run_id)]
    before = len(keyed.ledger())
    keyed.configure(defects=[])
    at.button(key="btn_regenerate_run").click().run()
    assert not at.exception, at.exception
    wait_for_attempt(run_id)
    at.run()
    assert len(keyed.ledger()) == before + len(left)
    frame = runs.stored_results(store(), run_id)
    assert not any(review.is_quality_flagged(f) for f in frame["enrich_flags"])
    assert not [b for b in at.button if b.key == "btn_regenerate_run"]  # nothing left to ask
