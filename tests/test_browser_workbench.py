"""Issue 14's journey in real Chromium: a library prompt whose fields don't match a HubSpot export is fitted
in two clicks, tried on 5 rows, a rule is changed and it is tried again with both tries side by side, one
answer is liked and becomes an example, a variant is chosen and the run started; a reload in the middle of
the run finds everything where it was.

The local server answers by the prompt as well as the row (SimConfig.prompt_sensitive), as a model would:
a changed rule changes the answers, so the two tries differ.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from lib.sim import SimConfig, SimProcess
from lib.store import Store
from lib.workspace import Workspaces
from tests.browser_helpers import (
    TEST_KEY,
    AppServer,
    browser_tab,
    csv_file,
    goto_page,
    run_caption,
    run_status,
    running_app,
    screenshot,
    upload,
    wait_done_at_least,
)
from tests.conftest import SIM_TODAY
from tests.leadfiles import hubspot_rows

SIM_CONFIG = SimConfig(today=SIM_TODAY, latency_ms=150, seed=3, prompt_sensitive=True)
ROWS = 1500  # 2 workers at 150 ms: the run lasts well past the reload
RULE = "- Mention the company by name."

expect.set_options(timeout=20_000)
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def sim(chromium):
    server = SimProcess(SIM_CONFIG).start()
    yield server
    server.stop()


@pytest.fixture
def app(tmp_path, sim):
    sim.reset(SIM_CONFIG)
    with running_app(tmp_path, {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": sim.url}) as server:
        yield server


@pytest.fixture
def tab(chromium):
    with browser_tab(chromium, {"width": 1400, "height": 1000}) as page:
        yield page


def saved_workspace(app: AppServer, page: Page):
    ws_id = re.search(r"[?&]ws=([\w-]+)", page.url).group(1)
    store = Store(app.data_dir)
    try:
        return Workspaces(store).load(ws_id)
    finally:
        store.close()


def variant_heading(page: Page, label: str):
    return page.get_by_test_id("stMarkdownContainer").get_by_text(label, exact=True)


def test_fit_try_compare_like_choose_run_and_reload(app, sim, tab, tmp_path):
    rows = hubspot_rows(ROWS)
    first = rows[0].index("First Name")
    for i, row in enumerate(rows[1:], start=1):  # every lead its own request: no answer is reused
        row[first] = f"{row[first]} {i}"
    path = csv_file(tmp_path / "hubspot-contacts.csv", rows)
    tab.goto(app.url)
    upload(tab, path)
    goto_page(tab, "Prompt")

    # The icebreaker names Title and Company; HubSpot says Job Title and Company Name. Two clicks: open the
    # prompt, confirm the suggested columns.
    tab.get_by_test_id("stSelectbox").filter(has_text="Start from").click()
    tab.get_by_role("option", name="Icebreaker", exact=True).click()
    fit = tab.get_by_test_id("stDataFrame").filter(has_text="Placeholder")
    expect(fit).to_be_visible()
    expect(tab.get_by_role("button", name="Try on these rows")).to_be_disabled()
    screenshot(tab, "workbench-fit.png")
    tab.get_by_role("button", name="Use these columns").click()
    expect(tab.get_by_text(re.compile(r"Fitted to this file: .*Company → Company Name"))).to_be_visible()
    assert sim.ledger() == []

    # Try 5 rows.
    tab.get_by_role("button", name="Try on these rows").click()
    expect(variant_heading(tab, "Try 1")).to_be_visible()
    assert len(sim.ledger()) == 5

    # Change a rule: the answers are stale until tried again, with Ctrl+Enter from the text box.
    system = tab.get_by_role("textbox", name="System message")
    system.click()
    system.press("Control+End")
    system.type("\n" + RULE)
    system.press("Control+Enter")
    expect(variant_heading(tab, "Try 2")).to_be_visible(timeout=30_000)
    expect(variant_heading(tab, "Try 1")).to_be_visible()  # the earlier answers stay beside the new ones
    assert len(sim.ledger()) == 10
    expect(tab.get_by_text(re.compile(r"\d of 5 rows have answers that differ"))).to_be_visible()
    ws = saved_workspace(app, tab)
    assert [v.label for v in ws.workbench.variants] == ["Try 1", "Try 2"]
    assert RULE in ws.workbench.variants[1].draft.system and RULE not in ws.workbench.variants[0].draft.system
    screenshot(tab, "workbench-two-tries.png")

    # Only rows that differ, and the word-level difference between the tries.
    tab.get_by_test_id("stCheckbox").filter(has_text="Only differing rows").click()
    tab.get_by_test_id("stExpander").filter(has_text="Word-level difference").locator("summary").click()
    expect(
        tab.get_by_test_id("stText").filter(has_text=re.compile(r"\[-.+-\]|\{\+.+\+\}")).first
    ).to_be_visible()

    # Like Try 2's first answer and make it an example.
    try2 = ws.workbench.variants[1]
    examples_before = len(ws.draft.examples)
    thumbs = tab.get_by_test_id("stFeedback").get_by_role("radio", name="Thumbs up")
    thumbs.nth(1).click()  # row 1: Try 1's cell, then Try 2's
    expect(tab.get_by_role("button", name="Add as example")).to_be_visible()
    tab.get_by_role("button", name="Add as example").click()
    expect(tab.get_by_text(re.compile(r"answer is now example \d"))).to_be_visible()
    ws = saved_workspace(app, tab)
    assert len(ws.draft.examples) == examples_before + 1
    assert any(r.vote == 1 for r in ws.workbench.ratings.values())

    # Try once more with the example, and choose that variant.
    tab.get_by_role("button", name="Try on these rows").click()
    expect(variant_heading(tab, "Try 3")).to_be_visible(timeout=30_000)
    tab.get_by_role("button", name="Use this").nth(2).click()
    expect(tab.get_by_text("This variant is now the run's prompt")).to_be_visible()
    ws = saved_workspace(app, tab)
    chosen = ws.workbench.variants[2]
    assert ws.draft.examples == chosen.draft.examples and len(chosen.draft.examples) == examples_before + 1
    assert try2.key != chosen.key
    sent_so_far = len(sim.ledger())

    # Start the run; reload in the middle.
    goto_page(tab, "Run")
    workers = tab.get_by_role("spinbutton", name="Parallel workers")
    workers.fill("2")
    workers.press("Enter")
    expect(workers).to_have_value("2")
    tab.get_by_role("button", name="Start run").click()
    wait_done_at_least(tab, 20)
    tab.reload()
    expect(run_caption(tab)).to_be_visible()
    assert run_status(tab) == "running"
    screenshot(tab, "workbench-run-after-reload.png")
    goto_page(tab, "Prompt")
    for label in ("Try 1", "Try 2", "Try 3"):
        expect(variant_heading(tab, label)).to_be_visible()
    expect(tab.get_by_role("textbox", name="System message")).to_contain_text(RULE)
    expect(tab.get_by_text(re.compile(r"Fitted to this file: .*Title → Job Title"))).to_be_visible()
    liked = tab.get_by_test_id("stFeedback").get_by_role("radio", name="Thumbs up", checked=True)
    expect(liked).to_have_count(1)
    goto_page(tab, "Run")
    assert run_status(tab) == "running"
    tab.get_by_role("button", name="Cancel").click()
    expect(run_caption(tab)).to_contain_text("status: cancelled")

    # The run sent the chosen variant's prompt, and the rows tried already were not paid twice.
    store = Store(app.data_dir)
    try:
        run_id = saved_workspace(app, tab).run_id
        meta = store.run(run_id).meta
        bodies = store.requests(run_id)
        rows = {r.row_id: r for r in store.rows(run_id)}
    finally:
        store.close()
    assert meta["prompt_name"] == "Icebreaker" and meta["prompt_edited"] is True and meta["prompt_hash"]
    assert meta["prompt_mapping"]["Company"] == "Company Name"
    assert all(RULE in b["messages"][0]["content"] for b in bodies.values())
    assert all(rows[i].from_cache and rows[i].status == "succeeded" for i in ws.workbench.row_ids)
    assert len(sim.ledger()) - sent_so_far == sum(
        1 for r in rows.values() if r.status == "succeeded" and not r.from_cache
    ), "every answer of the run was paid once, the tried rows not again"


def test_a_reload_mid_try_finds_the_try_going_and_its_answers_land(app, sim, tab, tmp_path):
    """Try returns at once and the page polls the try; a reload while the server holds every answer finds
    the same try still going (its run id is in the workspace the URL names), and the answers land after."""
    path = csv_file(tmp_path / "hubspot-contacts.csv", hubspot_rows(12))
    tab.goto(app.url)
    upload(tab, path)
    goto_page(tab, "Prompt")
    tab.get_by_test_id("stSelectbox").filter(has_text="Start from").click()
    tab.get_by_role("option", name="Icebreaker", exact=True).click()
    tab.get_by_role("button", name="Use these columns").click()
    expect(tab.get_by_text(re.compile(r"Fitted to this file: .*Company → Company Name"))).to_be_visible()

    progress = tab.get_by_test_id("stProgress").filter(has_text="Try 1: 0 of 5 rows answered")
    sim.configure(hold=True)
    try:
        tab.get_by_role("button", name="Try on these rows").click()
        expect(progress).to_be_visible()
        expect(tab.get_by_role("button", name="Stop trying")).to_be_visible()
        screenshot(tab, "workbench-try-running.png")
        tab.reload()
        expect(progress).to_be_visible()
        expect(tab.get_by_role("button", name="Stop trying")).to_be_visible()
        screenshot(tab, "workbench-try-after-reload.png")
        assert sim.ledger() == [], "the server held every answer: nothing landed before the reload"
        assert [v.label for v in saved_workspace(app, tab).workbench.variants] == ["Try 1"]
    finally:
        sim.configure(hold=False)
    expect(variant_heading(tab, "Try 1")).to_be_visible(timeout=30_000)
    expect(tab.get_by_test_id("stProgress")).to_have_count(0)
    expect(tab.get_by_test_id("stText").filter(has_text="SIM[")).to_have_count(5)
    assert len(sim.ledger()) == 5, "one request per row: the reload sent nothing again"
    screenshot(tab, "workbench-try-landed.png")
