"""The workspace in real Chromium: nothing a user set up is lost or silently changed by leaving a page,
reloading, restarting the server, or a button, and requests go only where the sidebar says.

Two OpenAI-compatible servers run on loopback: A is the environment's endpoint (OPENAI_BASE_URL), B the
one a user types. Each test counts what each server received, so a request that went to an endpoint the
user did not choose is caught.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from lib.models import model_info
from lib.sim import SimConfig, SimProcess
from lib.sim.app import key_hash
from lib.store import Store
from lib.views.live_table import suggest_id_columns
from lib.views.model_view import EFFORT_WORDS
from lib.workspace import Workspaces
from tests.browser_helpers import (
    TEST_KEY,
    AppServer,
    browser_tab,
    choose_prompt,
    csv_file,
    goto_page,
    hold_answers,
    in_waves,
    library_prompt,
    prepare_run,
    release_answers,
    request_settings,
    run_caption,
    run_status,
    running_app,
    screenshot,
    scroll_to_top,
    upload,
    wait_finished,
    wait_for,
    wait_held,
)
from tests.conftest import SIM_TODAY
from tests.leadfiles import apollo_rows

SIM_CONFIG = SimConfig(today=SIM_TODAY, latency_ms=150, latency_dist="lognormal", latency_p99_ms=600, seed=5)
VIEWPORT = {"width": 1280, "height": 1000}
TYPED_KEY = "sk-typed-in-browser-7777"
WAVE = "(wave 2)"  # marks the rows a run is held before (tests.browser_helpers.in_waves)
# The library's current Icebreaker: its model, effort, max tokens and temperature are the Run page's defaults.
ICEBREAKER = library_prompt()

expect.set_options(timeout=20_000)
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def servers(chromium):
    """(A, B): A is the environment's endpoint, B the one a user types."""
    a = SimProcess(SIM_CONFIG).start()
    b = SimProcess(SIM_CONFIG).start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def app(tmp_path, servers):
    a, b = servers
    a.reset(SIM_CONFIG)
    b.reset(SIM_CONFIG)
    with running_app(tmp_path, {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": a.url}) as server:
        yield server


@pytest.fixture
def tab(chromium):
    with browser_tab(chromium, VIEWPORT, accept_downloads=True) as page:
        yield page


def ws_id(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"[?&]ws=[\w-]+"))
    return re.search(r"[?&]ws=([\w-]+)", page.url).group(1)


def saved_workspace(app: AppServer, page: Page):
    store = Store(app.data_dir)
    try:
        return Workspaces(store).load(ws_id(page))
    finally:
        store.close()


def sidebar_status(page: Page):
    return page.get_by_test_id("stSidebar").get_by_test_id("stCaptionContainer").filter(has_text="Sending to")


def spin(page: Page, name: str):
    return page.get_by_role("spinbutton", name=name)


def assert_prompt_and_settings(page: Page, *, workers: str) -> None:
    """The Run page shows the Icebreaker prompt's defaults and the user's workers, not reset values."""
    goto_page(page, "Run")
    expect(page.get_by_text("Write or choose a prompt first")).to_have_count(0)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(rf"^{re.escape(ICEBREAKER.model)} ")
    )
    if ICEBREAKER.reasoning_effort:
        effort = sidebar.get_by_role("combobox", name="Reasoning effort")
        expect(effort).to_have_value(EFFORT_WORDS[ICEBREAKER.reasoning_effort])
    expect(spin(page, "Max tokens per answer")).to_have_value(str(ICEBREAKER.max_tokens))
    if model_info(ICEBREAKER.model).supports_temperature:
        temperature = "" if ICEBREAKER.temperature is None else f"{ICEBREAKER.temperature:.2f}"
        expect(spin(page, "Temperature")).to_have_value(temperature)
    else:  # a reasoning model: no temperature to set, and the page says why
        expect(spin(page, "Temperature")).to_have_count(0)
        expect(page.get_by_text(f"{ICEBREAKER.model} does not accept a temperature.")).to_be_visible()
    expect(spin(page, "Parallel workers")).to_have_value(workers)
    expect(page.get_by_text("from the prompt 'Icebreaker'").first).to_be_visible()


def top_of(element: Locator) -> float:
    """Where an element of the live panel starts; asked again when it was caught mid-redraw (no box)."""
    return wait_for(lambda: element.bounding_box(), 10, "the element drawn with a box")["y"]


def header_cells(page: Page) -> list[str]:
    """The column headers glide has drawn in the first (live or results) grid: only columns in view."""
    grid = page.get_by_test_id("stDataFrame").first
    expect(grid.locator("th[role=columnheader]").first).to_be_attached()
    return [h.inner_text().strip() for h in grid.locator("th[role=columnheader]").all()]


def test_leaving_the_run_page_mid_run_keeps_the_prompt_and_settings(app, servers, tab, tmp_path):
    """Issue 11, step 1 and 5: leave a 2,000-row run for Results and Data, come back: nothing was reset,
    the answer column is in the grid's first screen, and the run goes on with the prompt's max tokens."""
    a, _ = servers
    path = csv_file(tmp_path / "apollo-2000.csv", in_waves(apollo_rows(2000), {40: WAVE}))
    prepare_run(tab, app, path, workers=8)
    hold_answers(a, WAVE)  # the run stands still after 40 rows while the user is away, however fast it is
    tab.get_by_role("button", name="Start run").click()
    wait_held(a, in_flight=8)
    expect(tab.get_by_test_id("stProgress")).to_contain_text("40 of 2,000 rows")
    headers = header_cells(tab)
    ids = suggest_id_columns(apollo_rows(1)[0])
    assert headers[1 : 2 + len(ids)] == [*ids, "icebreaker"], headers  # row, identifying columns, answer
    grid_top = top_of(tab.get_by_test_id("stDataFrame").first)
    bar_top = top_of(tab.get_by_test_id("stProgress"))
    assert grid_top - bar_top < 250, "the live grid sits right under the progress bar"
    scroll_to_top(tab)
    screenshot(tab, "workspace-run-live.png")

    for title in ("Results", "Data"):
        goto_page(tab, title)
        time.sleep(2)
    goto_page(tab, "Prompt")
    expect(tab.get_by_role("textbox", name="Prompt name")).to_have_value("Icebreaker")
    expect(tab.get_by_text("Every placeholder matches a column.")).to_be_visible()
    assert_prompt_and_settings(tab, workers="8")
    assert run_status(tab) == "running"
    tab.get_by_role("button", name="Cancel").click()
    expect(run_caption(tab)).to_contain_text("status: cancelled")
    release_answers(a)
    assert a.ledger(), "the run sent requests"
    run_id = re.search(r"run id ([\w-]+)", run_caption(tab).first.inner_text()).group(1)
    store = Store(app.data_dir)
    try:
        bodies = store.requests(run_id)
    finally:
        store.close()
    assert len(bodies) == 2000
    # The prompt's model, max tokens (never 1), effort and temperature (or none, for a reasoning model).
    settings = request_settings(path)
    assert settings["model"] == ICEBREAKER.model
    assert ICEBREAKER.max_tokens in (settings.get("max_tokens"), settings.get("max_completion_tokens"))
    sent = [{k: v for k, v in b.items() if k != "messages"} for b in bodies.values()]
    assert all(s == settings for s in sent), (settings, next(s for s in sent if s != settings))


def test_a_typed_key_and_endpoint_stay_through_open_results_and_history(app, servers, tab, tmp_path):
    """Issue 11, step 2: after Open results (Run page and History) the sidebar still names the typed
    endpoint and key, and the next sample goes there, never to the environment's endpoint."""
    a, b = servers
    path = csv_file(tmp_path / "leads.csv", apollo_rows(12))
    tab.goto(app.url)
    upload(tab, path)
    sidebar = tab.get_by_test_id("stSidebar")
    key_box = sidebar.locator("input[type=password]")
    key_box.fill(TYPED_KEY)
    key_box.press("Enter")
    url_box = sidebar.get_by_role("textbox", name="API endpoint (base URL)")
    url_box.fill(b.url)
    url_box.press("Enter")
    expect(sidebar_status(tab)).to_contain_text(b.url)
    expect(sidebar_status(tab)).to_contain_text("typed in this session")
    choose_prompt(tab)
    goto_page(tab, "Run")
    tab.get_by_role("button", name="Start run").click()
    wait_finished(tab, 12)
    tab.get_by_role("button", name="Open results").click()
    expect(tab.get_by_role("heading", name="Results", exact=True)).to_be_visible()
    expect(sidebar_status(tab)).to_contain_text(b.url)
    expect(sidebar_status(tab)).to_contain_text("typed in this session")
    expect(url_box).to_have_value(b.url)
    goto_page(tab, "History")
    tab.get_by_role("button", name="Open results").click()
    expect(tab.get_by_role("heading", name="Results", exact=True)).to_be_visible()
    expect(sidebar_status(tab)).to_contain_text("typed in this session")
    goto_page(tab, "Prompt")
    tab.get_by_test_id("stExpander").filter(has_text="Sample:").locator("summary").click()
    tab.get_by_test_id("stRadio").filter(has_text="Which rows").get_by_text("Random rows", exact=True).click()
    # As a person would, go on once the Seed field has come: a click before it arrives sends no seed.
    expect(spin(tab, "Seed")).to_have_value("1")
    sample_rows = spin(tab, "How many")
    sample_rows.fill("3")
    sample_rows.press("Enter")
    tab.get_by_role("button", name="Use these rows").click()
    expect(tab.get_by_text("Sample: 3 random rows (seed 1)")).to_be_visible()
    expect(tab.get_by_test_id("stCaptionContainer").filter(has_text="Sending to").first).to_contain_text(
        b.url
    )
    tab.get_by_role("button", name="Try on these rows").click()
    expect(tab.get_by_text("Try 1", exact=True)).to_be_visible()
    assert a.ledger() == [], "nothing went to the environment's endpoint"
    keys = {e["key_hash"] for e in b.ledger()}
    assert keys == {key_hash(TYPED_KEY)}, "every request carried the typed key"
    assert len(b.ledger()) >= 12


def test_retry_failed_rows_goes_to_the_endpoint_shown_now(app, servers, tab, tmp_path):
    """Issue 11, step 3: rows that failed on A are retried on B once the user has typed B."""
    a, b = servers
    a.configure(p_500=1.0)  # every request to A fails: the rows end failed, retryable
    path = csv_file(tmp_path / "leads.csv", apollo_rows(6))
    prepare_run(tab, app, path, workers=3)
    tab.get_by_role("button", name="Start run").click()
    expect(run_caption(tab)).to_contain_text("status: finished", timeout=60_000)
    expect(tab.get_by_test_id("stProgress")).to_contain_text("6 failed")
    sidebar = tab.get_by_test_id("stSidebar")
    url_box = sidebar.get_by_role("textbox", name="API endpoint (base URL)")
    url_box.fill(b.url)
    url_box.press("Enter")
    # The environment's key is never sent to another endpoint: without a typed key nothing can be sent.
    expect(sidebar.get_by_text("needs a key typed in this session")).to_be_visible()
    expect(tab.get_by_role("button", name="Retry failed rows")).to_be_disabled()
    key_box = sidebar.locator("input[type=password]")
    key_box.fill(TYPED_KEY)
    key_box.press("Enter")
    main = tab.get_by_test_id("stMain")
    expect(main.get_by_test_id("stCaptionContainer").filter(has_text="Sending to").first).to_contain_text(
        b.url
    )
    sent_to_a = a.stats()["total"]
    tab.get_by_role("button", name="Retry failed rows").click()
    # The page showed "finished" before the click too: wait for the answers themselves.
    expect(tab.get_by_test_id("stProgress").last).to_contain_text("6 of 6 rows · 6 answered", timeout=60_000)
    wait_finished(tab, 6)
    assert a.stats()["total"] == sent_to_a, "the retry sent nothing to the old endpoint"
    assert sorted(int(e["row_id"]) for e in b.ledger()) == [1, 2, 3, 4, 5, 6]
    assert {e["key_hash"] for e in b.ledger()} == {key_hash(TYPED_KEY)}  # never the environment's key


def test_reload_and_server_restart_bring_back_the_file_prompt_settings_and_run(app, servers, tab, tmp_path):
    """Issue 11, steps 4 and 5: a reload mid-run and a restarted server on the same URL show the same file,
    prompt, settings and run; the run resumes where it stopped."""
    a, _ = servers
    path = csv_file(tmp_path / "apollo-300.csv", in_waves(apollo_rows(300), {20: WAVE}))
    prepare_run(tab, app, path, workers=3)
    budget = spin(tab, "Budget (USD)")
    budget.fill("5")
    budget.press("Enter")
    expect(budget).to_have_value("5.00")
    hold_answers(a, WAVE)  # the run stands still after 20 rows: provably mid-way at the reload and the kill
    tab.get_by_role("button", name="Start run").click()
    wait_held(a, in_flight=3)
    expect(tab.get_by_test_id("stProgress")).to_contain_text("20 of 300 rows")
    url = tab.url
    assert "ws=" in url and TEST_KEY not in url

    tab.reload()
    expect(run_caption(tab)).to_contain_text("status: running")
    expect(tab.get_by_text("Upload a lead list first")).to_have_count(0)
    assert_prompt_and_settings(tab, workers="3")
    expect(spin(tab, "Budget (USD)")).to_have_value("5.00")
    goto_page(tab, "Data")
    expect(tab.get_by_text("File: apollo-300.csv")).to_be_visible()
    expect(tab.get_by_text("Lead table ready.")).to_be_visible()

    goto_page(tab, "Run")
    assert run_status(tab) == "running", "a held run is still running when the server is killed"
    app.kill()
    # Answers made but never delivered: the three held at the kill, and any the app stopped waiting for
    # while they were held (it then sent that row again). They are billed once the gate opens, as the API
    # bills them, and the resumed run must send their rows again: only they may be paid twice.
    undelivered = a.stats()["in_flight"]
    assert undelivered >= 3
    release_answers(a)
    app.start()
    tab.goto(url)  # the Run page of the same workspace, in a new server process
    expect(tab.get_by_text("This run is not running in this server any more")).to_be_visible()
    goto_page(tab, "Data")
    expect(tab.get_by_text("File: apollo-300.csv")).to_be_visible()
    assert_prompt_and_settings(tab, workers="3")
    expect(tab.get_by_text("This run is not running in this server any more")).to_be_visible()
    tab.get_by_role("button", name="Resume run").click()
    wait_finished(tab, 300, timeout=150)
    screenshot(tab, "workspace-resumed.png")
    ws = saved_workspace(app, tab)
    assert ws.lead.file_name == "apollo-300.csv" and ws.draft.name == "Icebreaker"
    assert ws.settings.workers == 3 and ws.settings.budget_usd == 5.0
    billed = [int(e["row_id"]) for e in a.ledger()]
    assert sorted(set(billed)) == list(range(1, 301)), "every row answered once the run resumed"
    assert len(billed) - len(set(billed)) <= undelivered, (
        "only answers that never reached the app were paid twice"
    )
