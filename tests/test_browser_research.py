"""Issue 24's journey in real Chromium: switch web research on for a prompt, try it on 5 rows and see each
answer's sources, run the list, see the sources column beside the answers, and open one row's sources.

The local server answers /v1/responses with deterministic web searches and url_citation annotations
(lib/sim/websearch.py), so every source the page shows can be checked against what the server cited.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lib.sim import SimConfig, SimProcess
from lib.store import Store
from tests.browser_helpers import (
    TEST_KEY,
    browser_tab,
    csv_file,
    goto_page,
    run_caption,
    running_app,
    screenshot,
    upload,
    wait_finished,
)
from tests.conftest import SIM_TODAY

SIM_CONFIG = SimConfig(today=SIM_TODAY, latency_ms=40, seed=24)
ROWS = 24
TEMPLATE = "Company: {{ Company }}\nWebsite: {{ Website }}"

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
    with browser_tab(chromium, {"width": 1500, "height": 1100}) as page:
        yield page


def leads(path):
    rows = [["First Name", "Company", "Website"]]
    rows += [[f"Person{i}", f"Firm{i} Ltd", f"https://firm{i}.io"] for i in range(ROWS)]
    return csv_file(path, rows)


def test_switch_web_research_on_try_see_sources_run_and_open_a_rows_sources(app, sim, tab, tmp_path):
    tab.goto(app.url)
    upload(tab, leads(tmp_path / "firms.csv"))
    goto_page(tab, "Prompt")

    # A blank prompt that asks about the company, then web research switched on.
    template = tab.get_by_role("textbox", name="User message template")
    template.fill(TEMPLATE)
    template.press("Tab")
    tab.get_by_test_id("stCheckbox").filter(has_text="Research each row on the web").click()
    expect(tab.get_by_role("spinbutton", name="Most searches a row")).to_be_visible()
    tab.get_by_test_id("stCheckbox").filter(has_text="Flag answers that cite no source").click()
    expect(tab.get_by_text(re.compile(r"Web searches"))).to_be_visible()  # the quote counts calls apart

    # Try 5 rows: each answer with the pages it cites.
    tab.get_by_role("button", name="Try on these rows").click()
    expect(tab.get_by_test_id("stMarkdownContainer").get_by_text("Try 1", exact=True)).to_be_visible(
        timeout=30_000
    )
    ledger = sim.ledger()
    assert len(ledger) == 5 and {e["api"] for e in ledger} == {"responses"}
    expect(tab.get_by_test_id("stText").filter(has_text=re.compile(r"^https://firm0\.io/"))).to_be_visible()
    screenshot(tab, "research-try.png")

    # Run the whole list: the sources column stands beside the answers.
    goto_page(tab, "Run")
    expect(tab.get_by_text(re.compile(r"Sent through the Responses API, with web research"))).to_be_visible()
    tab.get_by_role("button", name="Start run").click()
    wait_finished(tab, ROWS)
    header = tab.locator('th[role="columnheader"]').filter(has_text=re.compile(r"^sources$"))
    expect(header).to_have_count(1)
    tab.get_by_test_id("stProgress").scroll_into_view_if_needed()  # the grid is right below it
    screenshot(tab, "research-run.png")

    # Open one row's sources: its cited pages as a table of links.
    tab.get_by_test_id("stExpander").filter(has_text="Sources of one row").locator("summary").click()
    expect(tab.get_by_text(re.compile(r"Row \d+ cites \d+ pages?:"))).to_be_visible()
    table = tab.get_by_test_id("stDataFrame").filter(
        has=tab.locator('th[role="columnheader"]', has_text="cited for")
    )
    expect(table).to_be_visible()
    screenshot(tab, "research-row-sources.png")
    expect(run_caption(tab)).to_contain_text("status: finished")

    store = Store(app.data_dir)
    try:
        run_id = re.search(r"run id ([\w-]+)", run_caption(tab).inner_text()).group(1)
        meta = store.run(run_id).meta
        rows = store.rows(run_id)
    finally:
        store.close()
    assert meta["api"] == "responses" and meta["web_search"]["max_tool_calls"] == 3
    cited = [r for r in rows if r.sources]
    assert cited and all(s.url.startswith("https://") for r in cited for s in r.sources)
    assert all("quality:no_source" in r.flags for r in rows if not r.sources)
