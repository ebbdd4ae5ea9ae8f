"""Issue 21 in real Chromium: a prompt on a model that shuts down next month is warned about in the sidebar and
before Start, and the workbench puts it beside OpenAI's suggested replacement on the same sample rows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lib.sim import SimConfig, SimProcess
from tests.browser_helpers import TEST_KEY, browser_tab, csv_file, goto_page, running_app, screenshot, upload
from tests.conftest import SIM_TODAY
from tests.leadfiles import hubspot_rows

SIM_CONFIG = SimConfig(today=SIM_TODAY, latency_ms=50, seed=5)

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


def test_a_retiring_model_is_warned_about_and_tried_on_its_replacement(app, sim, tab, tmp_path):
    path = csv_file(tmp_path / "hubspot-contacts.csv", hubspot_rows(40))
    tab.goto(app.url)
    upload(tab, path)
    goto_page(tab, "Prompt")
    tab.get_by_test_id("stSelectbox").filter(has_text="Start from").click()
    tab.get_by_role("option", name="Icebreaker", exact=True).click()
    tab.get_by_role("button", name="Use these columns").click()

    sidebar = tab.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Model").click()
    tab.keyboard.type("gpt-4o-mini")  # the list is long: filter it as a person would
    tab.get_by_role("option", name=re.compile(r"^gpt-4o-mini · .*shuts down 14 Jan 2027$")).click()
    expect(
        sidebar.get_by_text(re.compile(r"gpt-4o-mini shuts down on 14 Jan 2027 \(in 40 days\)"))
    ).to_be_visible()
    expect(sidebar.get_by_text("gpt-4o-mini does not reason: no effort is sent.")).to_be_visible()

    tab.get_by_role("button", name="Try on these rows").click()
    expect(tab.get_by_test_id("stMarkdownContainer").get_by_text("Try 1", exact=True)).to_be_visible()
    tab.get_by_role("button", name="Try on gpt-6-luna").click()
    heading = tab.get_by_test_id("stMarkdownContainer").get_by_text("Icebreaker · gpt-6-luna", exact=True)
    expect(heading).to_be_visible(timeout=30_000)
    expect(tab.get_by_text("gpt-6-luna · effort none").first).to_be_visible()
    models = [e["model"] for e in sim.ledger()]
    assert models.count("gpt-4o-mini") == 5 and models.count("gpt-6-luna") == 5
    screenshot(tab, "workbench-replacement.png")

    goto_page(tab, "Run")
    expect(tab.get_by_test_id("stAlert").filter(has_text="OpenAI suggests gpt-6-luna").first).to_be_visible()
    expect(tab.get_by_role("button", name="Start run")).to_be_enabled()
    screenshot(tab, "run-retiring-model.png")
