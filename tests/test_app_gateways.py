"""The app's side of issue 13 under AppTest: a deployment name priced as a known model, the patience
setting, and the live panel saying why nothing moves, all kept in the workspace."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import (
    APP,
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


def test_a_deployment_name_is_unpriced_until_priced_as_a_known_model(keyed):
    at = choose_prompt(upload(new_app()))
    # A typed-in model name (AppTest cannot type a new option into the select box): set it in the workspace.
    edit_workspace(at, lambda w: w.set_setting("model", "gpt-4o-mini-json"))
    at.run()
    assert not at.exception, at.exception
    assert "gpt-4o-mini-json · unpriced" in all_text(at)
    assert at.selectbox(key="price_as").value == "(not a known model)"
    assert at.number_input(key="price_in") is not None  # or type a price
    at.selectbox(key="price_as").set_value("gpt-4o-mini").run()
    assert workspace(at).settings.price_aliases == {"gpt-4o-mini-json": "gpt-4o-mini"}
    assert not [n for n in at.number_input if n.key == "price_in"]  # the typed price is not asked for
    goto(at, "run")
    text = all_text(at)
    assert "gpt-4o-mini-json · unpriced" not in text and "gpt-4o-mini-json · priced as gpt-4o-mini" in text
    # A new session on the same URL finds the alias in the workspace.
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["ws"] = at.session_state["ws_id"]
    again.run()
    assert again.selectbox(key="price_as").value == "gpt-4o-mini"
    again.selectbox(key="price_as").set_value("(not a known model)").run()
    assert workspace(again).settings.price_aliases == {}


def test_the_patience_pauses_a_run_the_server_only_refuses(keyed):
    keyed.configure(p_429=1.0, seed=5)
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    at.number_input(key="r_give_up").set_value(7.0).run()
    assert workspace(at).settings.give_up_after_s == 7.0
    at.button(key="btn_start").click().run()
    deadline, seen = time.monotonic() + 15, ""
    while time.monotonic() < deadline and "Nothing moves" not in seen:
        at.run()
        seen = " ".join(t.value for t in at.text)
        time.sleep(0.3)
    assert "Nothing moves: the server has answered 429 (rate limited) for" in seen
    assert wait_for_run(at, timeout=20) == "paused"
    text = all_text(at)
    assert "nothing has succeeded for" in text and "pending" in text
