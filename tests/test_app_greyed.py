"""A greyed-out button says why (AppTest): every disabled widget on every page carries a tooltip from
lib.views.why_not, in the states where buttons grey out: no key in this tab, a reload that forgot the
typed key (Regenerate on Results, the case the issue met), a run going."""

from __future__ import annotations

import dataclasses

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget

from lib.prompts.checks import Checks
from lib.sim import replies
from lib.views import labels, why_not
from tests.apptest_helpers import APP, choose_prompt, edit_workspace, goto, new_app, upload, wait_for_run

pytestmark = pytest.mark.usefixtures("app_env")

PAGES = ("data", "prompt", "run", "results", "history")


def widgets(at: AppTest) -> list[Widget]:
    found: list[Widget] = []

    def walk(node) -> None:
        if isinstance(node, Widget):
            found.append(node)
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return found


def greyed_without_a_reason(at: AppTest) -> list[str]:
    return [
        f"{type(w).__name__} {w.key or getattr(w.proto, 'label', '')!r}"
        for w in widgets(at)
        if getattr(w.proto, "disabled", False) and not getattr(w.proto, "help", "")
    ]


def every_page_says_why(at: AppTest) -> None:
    for page in PAGES:
        goto(at, page)
        assert greyed_without_a_reason(at) == [], page


def helps(at: AppTest, key: str) -> tuple[bool, str]:
    button = at.button(key=key)
    return button.disabled, button.proto.help


def test_without_a_key_the_greyed_buttons_say_how_to_get_one():
    at = new_app()
    at.toggle(key="demo_mode").set_value(False).run()
    at = choose_prompt(upload(at))
    disabled, said = helps(at, "btn_try")
    assert disabled and said.startswith("Nothing can be sent: ") and "offline demo" in said
    goto(at, "run")
    assert helps(at, "btn_start") == (True, said)
    every_page_says_why(at)


def test_after_a_reload_regenerate_says_the_typed_key_is_gone(sim):
    """A typed key runs a list whose answers are all flagged; a reload (a new session on the URL) has no
    key: Regenerate is greyed, and its tooltip says why and what to do."""
    sim.configure(p_defect=1.0, defects=["banned_phrase"])
    first = new_app()
    first.toggle(key="demo_mode").set_value(False).run()
    first.text_input(key="api_key_input").input("sk-typed-secret-ABCDEF123456").run()
    first.text_input(key="base_url_input").input(sim.url).run()
    first = choose_prompt(upload(first))
    banned = Checks(banned=(replies.DEFECT_PHRASE,))
    edit_workspace(first, lambda w: setattr(w, "draft", dataclasses.replace(w.draft, checks=banned)))
    goto(first, "run")
    first.button(key="btn_start").click().run()
    assert wait_for_run(first) == "finished"
    assert helps(first, "btn_regenerate_run")[0] is False

    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["ws"] = first.session_state["ws_id"]
    again.run()
    goto(again, "run")
    disabled, said = helps(again, "btn_regenerate_run")
    assert disabled and said == why_not.no_connection(_no_key_connection())
    goto(again, "results")
    again.segmented_control(key="res_filter").set_value("Needs review").run()
    assert helps(again, "btn_regenerate_all") == (True, said)
    assert greyed_without_a_reason(again) == []
    every_page_says_why(again)


def test_while_a_run_goes_start_says_why_it_is_greyed(keyed):
    at = choose_prompt(upload(new_app()))
    keyed.configure(hold=True)
    try:
        goto(at, "run")
        at.button(key="btn_start").click().run()
        assert helps(at, "btn_start") == (True, why_not.RUN_GOING_HERE)
        every_page_says_why(at)
    finally:
        keyed.configure(hold=False)
    assert wait_for_run(goto(at, "run")) == "finished"


def _no_key_connection():
    from lib.engine.client import choose_connection

    return choose_connection(demo=False, demo_url=None, typed_key=None, typed_base_url="", env={})


def test_the_reasons_are_plain_words():
    said = why_not.no_connection(_no_key_connection())
    assert said and "reload forgets" in said and labels.md_escape(said)
    assert why_not.why(None, why_not.when(False, "x"), why_not.when(True, "y"), "z") == "y"
    assert why_not.why(None, None) is None
