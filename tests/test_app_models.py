"""Issue 21 in the app, under AppTest against the strict simulator: the model picker's shutdown marks, the
warning before Start, a shut-down model refused, the reasoning effort setting, the workbench's replacement
variant, and a workspace saved on an earlier release's default moved with a word."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lib import models
from lib.models import DEFAULT_MODEL
from lib.views import model_view
from tests.apptest_helpers import (
    APP,
    all_text,
    choose_prompt,
    edit_workspace,
    goto,
    new_app,
    upload,
    wait_for_run,
    wait_for_tries,
)
from tests.apptest_helpers import workspace as saved_workspace
from tests.test_app_workbench import fitted, prompts_dir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("app_env")


def test_the_picker_dates_a_retiring_model_and_leaves_shut_down_ones_out(keyed):
    at = choose_prompt(upload(new_app()))
    picker = at.selectbox(key="model")
    assert picker.value == DEFAULT_MODEL and picker.options[0].startswith(f"{DEFAULT_MODEL} ·")
    labels = {o.split(" · ")[0]: o for o in picker.options}
    assert "o4-mini" not in labels and "gpt-4.1-nano" not in labels  # shut down on 23 Oct 2026
    assert labels["gpt-4o-mini"].endswith("shuts down 14 Jan 2027")
    assert "shuts down" not in labels[DEFAULT_MODEL]


def test_a_retiring_model_warns_before_start_and_a_shut_down_one_cannot_start(keyed):
    at = choose_prompt(upload(new_app()))
    at.selectbox(key="model").set_value("gpt-4o-mini").run()
    goto(at, "run")
    warnings = " ".join(w.value for w in at.warning)
    assert "gpt-4o-mini shuts down on 14 Jan 2027 (in 40 days). OpenAI suggests gpt-6-luna." in warnings
    assert not at.button(key="btn_start").disabled
    # a name typed in that the catalog knows is gone: refused before anything is sent
    edit_workspace(at, lambda w: w.set_setting("model", "o4-mini"))
    at.run()
    errors = " ".join(e.value for e in at.error)
    assert "o4-mini was shut down on 23 Oct 2026" in errors and "gpt-6-luna" in errors
    assert at.button(key="btn_start").disabled
    assert keyed.ledger() == []


@pytest.mark.parametrize(("effort", "sent"), [("auto", "none"), ("medium", "medium")])
def test_the_reasoning_effort_setting_is_what_a_run_sends(keyed, effort, sent):
    at = choose_prompt(upload(new_app()))
    shown = [model_view.EFFORT_WORDS[e] for e in ("auto", *models.model_info(DEFAULT_MODEL).efforts)]
    assert at.selectbox(key="reasoning_effort").options == shown
    at.selectbox(key="reasoning_effort").set_value(effort).run()
    assert saved_workspace(at).effective_effort() == (None if effort == "auto" else effort)
    goto(at, "run")
    at.button(key="btn_start").click().run()
    assert wait_for_run(at) == "finished"
    assert {e["reasoning_effort"] for e in keyed.ledger()} == {sent}
    if sent == "medium":
        assert "hidden reasoning" in all_text(at)


def test_a_model_that_does_not_reason_has_no_effort_box(keyed):
    at = choose_prompt(upload(new_app()))
    at.selectbox(key="model").set_value("gpt-4.1-mini").run()
    assert not [s for s in at.selectbox if s.key == "reasoning_effort"]
    assert "gpt-4.1-mini does not reason" in all_text(at)


@pytest.mark.usefixtures("prompts_dir")
def test_try_on_the_replacement_puts_the_suggested_model_beside_the_answers(keyed, data_dir):
    at = fitted(new_app())
    at.selectbox(key="model").set_value("gpt-4o-mini").run()
    wait_for_tries(at.button(key="btn_try").click().run())
    button = at.button(key="btn_wb_replacement")
    assert button.label == "Try on gpt-6-luna"
    wait_for_tries(button.click().run())
    assert not at.exception, at.exception
    w = saved_workspace(at)
    first, replacement = w.workbench.variants
    assert (first.model, replacement.model) == ("gpt-4o-mini", "gpt-6-luna")
    assert replacement.reasoning_effort == "none" and replacement.temperature is None
    by_model = {m: [e for e in keyed.ledger() if e["model"] == m] for m in ("gpt-4o-mini", "gpt-6-luna")}
    assert len(by_model["gpt-4o-mini"]) == len(by_model["gpt-6-luna"]) == 5
    assert "column is beside the others" in all_text(at)  # offered once


def test_a_workspace_on_an_earlier_release_s_default_moves_with_a_word(keyed):
    at = upload(new_app())
    ws_id = at.session_state["ws_id"]

    def old_default(w):
        w.settings.model, w.settings.model_set = "gpt-4o-mini", False

    edit_workspace(at, old_default)
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["ws"] = ws_id
    again.run()
    assert not again.exception, again.exception
    assert saved_workspace(again).settings.model == DEFAULT_MODEL
    said = all_text(again).replace("\\\\", "")  # Markdown escapes, as the protobuf text shows them
    assert "gpt-4o-mini shuts down on 14 Jan 2027" in said and f"now uses {DEFAULT_MODEL}" in said
    # a model the user chose stays theirs, warned about but never moved
    edit_workspace(again, lambda w: w.set_setting("model", "gpt-4o-mini"))
    third = AppTest.from_file(APP, default_timeout=60)
    third.query_params["ws"] = ws_id
    third.run()
    assert saved_workspace(third).settings.model == "gpt-4o-mini"
