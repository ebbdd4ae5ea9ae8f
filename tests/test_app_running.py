"""A run that is going is visible on every page, and the sidebar does not contradict it (AppTest).

The local server holds the answer of one row (SimConfig.hold), so the run is provably running while the
pages are drawn: three of four rows answered, the fourth on the wire.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from lib import engine
from tests.apptest_helpers import APP, choose_prompt, goto, new_app, upload, wait_for_run, workspace

pytestmark = pytest.mark.usefixtures("app_env")

HELD = "Umbrella"  # the fourth row's company: its answer waits at the server
PAGES = ("data", "prompt", "run", "results", "history")


def plain(text: str) -> str:
    """A caption as a person reads it (without the Markdown escapes)."""
    return text.replace("\\", "")


def running_lines(at: AppTest) -> list[str]:
    return [plain(c.value) for c in at.main.caption if plain(c.value).startswith(("Running:", "Starting:"))]


def open_links(at: AppTest) -> list[str]:
    return [link.proto.page for link in at.main.get("page_link") if link.proto.label == "open"]


def held_run(sim, at: AppTest):
    """Start the run on the Run page with the fourth row held; returns the job once three rows are in."""
    sim.configure(hold=HELD)
    goto(at, "run")
    at.button(key="btn_start").click().run()
    job = engine.get_job(workspace(at).run_id)
    deadline_ok = _wait(lambda: job.snapshot().done == 3 and sim.stats()["held_now"] == 1)
    assert deadline_ok, job.snapshot()
    return job


def _wait(predicate, timeout: float = 20.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_every_page_says_the_run_is_going_with_its_progress_and_a_link_to_it(keyed):
    at = choose_prompt(upload(new_app()))
    try:
        job = held_run(keyed, at)
        assert job.snapshot().status == "running"
        for page in PAGES:
            goto(at, page)
            lines = running_lines(at)
            assert len(lines) == 1, (page, lines)
            assert re.fullmatch(r"Running: Icebreaker on 4 rows · 75% · \$0\.\d+", lines[0]), lines[0]
            # The link opens the Run page, from every page but the Run page itself.
            assert open_links(at) == ([] if page == "run" else ["run"]), page
    finally:
        keyed.configure(hold=False)
    assert wait_for_run(goto(at, "run")) == "finished"
    for page in ("data", "run"):
        goto(at, page)
        assert running_lines(at) == [], "nothing goes: no line"


def test_a_reloaded_tab_without_the_typed_key_says_where_the_run_sends(sim):
    """A key typed in one tab starts the run; a reload (a new session on the same URL) has no key. The
    sidebar says where the going run sends, masked, and not "No API key" under a visibly going run."""
    secret = "sk-typed-secret-ABCDEF123456"
    first = new_app()
    first.toggle(key="demo_mode").set_value(False).run()
    first.text_input(key="api_key_input").input(secret).run()
    first.text_input(key="base_url_input").input(sim.url).run()
    first = choose_prompt(upload(first))
    try:
        held_run(sim, first)
        again = AppTest.from_file(APP, default_timeout=60)
        again.query_params["ws"] = first.session_state["ws_id"]
        again.run()
        goto(again, "data")
        status = " ".join(plain(c.value) for c in again.sidebar.caption)
        host = sim.url.split("//")[1].split("/")[0]
        assert f"The run going now sends to {host} with key sk-…3456." in status, status
        assert "type it again to start or resume" in status
        assert not status.startswith("No API key")
        assert secret not in status
        assert re.fullmatch(r"Running: Icebreaker on 4 rows · 75% · \$0\.\d+", running_lines(again)[0])
    finally:
        sim.configure(hold=False)
    assert wait_for_run(goto(first, "run")) == "finished"
    goto(again, "data")
    status = " ".join(plain(c.value) for c in again.sidebar.caption)
    assert status.startswith("No API key"), "the run ended: the tab's own state is all there is to say"
