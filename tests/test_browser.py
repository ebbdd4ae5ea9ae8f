"""End to end in headless Chromium: the real Streamlit server, a real browser, the simulator as the API.

Each test starts its own app server (fresh data dir, so no answer cache or run history leaks between
tests) with the key and endpoint of a session-wide simulator subprocess in its environment. All tests
run in one xdist worker, one after the other (xdist_group "browser").
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from playwright.sync_api import expect

from lib.engine.runs import stored_results
from lib.leads import read_leads
from lib.sim import SimConfig, SimProcess
from lib.store import Store
from lib.views.live_table import suggest_id_columns
from tests.browser_helpers import (
    TEST_KEY,
    AppServer,
    choose_prompt,
    csv_file,
    edit_cell,
    expected_answers,
    goto_page,
    grid_cell,
    guarded,
    hold_answers,
    in_waves,
    library_prompt,
    prepare_run,
    read_export,
    release_answers,
    run_caption,
    run_status,
    screenshot,
    scroll_to_top,
    upload,
    wait_finished,
    wait_held,
)
from tests.conftest import SIM_TODAY
from tests.leadfiles import apollo_rows

SIM_CONFIG = SimConfig(today=SIM_TODAY, latency_ms=150, latency_dist="lognormal", latency_p99_ms=600, seed=11)
VIEWPORT = {"width": 1400, "height": 1300}
ANSWER = "icebreaker"  # the Icebreaker prompt's output column

expect.set_options(timeout=15_000)


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sim_process(chromium_path):
    """The OpenAI-compatible simulator in its own process (its own GIL), with ~150 ms answers."""
    sim = SimProcess(SIM_CONFIG).start()
    yield sim
    sim.stop()


@pytest.fixture
def api(sim_process):
    """The simulator with an empty ledger and default limits for this test."""
    sim_process.reset(SIM_CONFIG)
    return sim_process


@pytest.fixture
def app(tmp_path, api):
    """A Streamlit server on a free port, fresh data dir, the simulator's URL and a test key in its env."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = AppServer(
        data_dir, tmp_path / "streamlit.log", {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": api.url}
    )
    server.start()
    print(f"streamlit log: {server.log_path}")
    yield server
    server.stop()


def new_context(chromium):
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def ctx(chromium):
    context = new_context(chromium)
    yield context
    context.close()


@pytest.fixture
def tab(ctx):
    return ctx.new_page()


def run_id_of(page) -> str:
    caption = run_caption(page)
    expect(caption).to_be_visible()
    return re.search(r"run id ([\w-]+)", caption.first.inner_text()).group(1)


# --- 1. the whole journey ---------------------------------------------------------------------------

FORMULA_CELLS = {  # (row position, column) -> text a spreadsheet would run as a formula
    (3, "Company"): '=HYPERLINK("http://evil.example","click")',
    (5, "Title"): "+1 VP Sales",
    (8, "City"): "@Boston",
    (10, "# Employees"): "-12",
}
EDIT = "=2+2 written by hand"
WAVES = {40: "(wave 2)", 80: "(wave 3)"}  # first row position of each wave -> its mark (after the Title)


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_journey_sample_run_reload_second_tab_edit_and_exports(app, api, ctx, tab, tmp_path):
    rows = in_waves(apollo_rows(200), WAVES)
    header = rows[0]
    for (pos, column), text in FORMULA_CELLS.items():
        rows[1 + pos][header.index(column)] = text
    path = csv_file(tmp_path / "apollo-leads.csv", rows)
    df = read_leads(path.read_bytes(), path.name).df
    ids = [int(i) for i in df.index]
    answers = expected_answers(path)
    # Grid column of the answer: 0 is row_id, then the identifying columns, then the answer.
    answer_col = 1 + len(suggest_id_columns([str(c) for c in df.columns]))

    # Data: what the reader detected.
    tab.goto(app.url)
    upload(tab, path)
    detected = tab.get_by_test_id("stText").filter(has_text="Encoding")
    for fact in ("200 rows, 12 columns.", "Encoding: UTF-8.", "Delimiter: comma."):
        expect(detected).to_contain_text(fact)

    # Prompt from the library, tried on the Prompt page: the first 5 rows' real answers, side by side.
    choose_prompt(tab)
    tab.get_by_role("button", name="Try on these rows").click()
    expect(tab.get_by_text("Try 1", exact=True)).to_be_visible()
    for pos in range(5):
        expect(tab.get_by_test_id("stText").filter(has_text=answers[ids[pos]])).to_have_count(1)
    goto_page(tab, "Run")
    workers = tab.get_by_role("spinbutton", name="Parallel workers")
    workers.fill("2")  # two requests in flight at most: the simulator's gate below holds two
    workers.press("Enter")
    expect(workers).to_have_value("2")
    expect(
        tab.get_by_text("answer lengths of the sample tried on the Prompt page (5 answers)")
    ).to_be_visible()

    # Start; the run id goes into the URL. The simulator holds the answers to the second wave of rows: the
    # run stands still after the first 40, however fast the model answers.
    hold_answers(api, WAVES[40])
    tab.get_by_role("button", name="Start run").click()
    run_id = run_id_of(tab)
    expect(run_caption(tab)).to_contain_text(f"status: running · run id {run_id}")
    wait_held(api, in_flight=2)
    bar = tab.get_by_test_id("stProgress")
    expect(bar).to_contain_text("40 of 200 rows")
    scroll_to_top(tab)
    screenshot(tab, "browser-run-midway.png")

    # Edit an answer in the live table; it survives the next live refreshes and the rows that arrive
    # after it. The table is put in the list's order first (flagged rows would come first otherwise).
    toggle = tab.get_by_role("switch", name="Flagged rows first")
    expect(toggle).to_be_checked()
    tab.get_by_text("Flagged rows first").click()
    try:  # the panel redraws twice a second: a click that lands mid-redraw is repeated, as a person would
        expect(toggle).not_to_be_checked(timeout=3_000)
    except AssertionError:
        tab.get_by_text("Flagged rows first").click()
    expect(toggle).not_to_be_checked()
    expect(tab.get_by_text("Flagged rows come first")).to_have_count(0)
    grid = tab.get_by_test_id("stDataFrame").first
    expect(grid_cell(grid, 0, 0)).to_have_text(str(ids[0]))
    edit_cell(tab, grid, answer_col, 2, answers[ids[2]], EDIT)
    edited = grid_cell(grid, answer_col, 2)
    expect(edited).to_have_text(EDIT)
    # The second wave goes through (the workers only reach the third in seconds; the gate closes in ms).
    release_answers(api)
    hold_answers(api, WAVES[80])
    wait_held(api, in_flight=2)
    expect(bar).to_contain_text("80 of 200 rows")
    expect(edited).to_have_text(EDIT)

    # Reload mid-run: a new browser session re-attaches to the same run, held where it was.
    tab.reload()
    expect(run_caption(tab)).to_contain_text(f"run id {run_id}")
    assert run_id_of(tab) == run_id
    assert run_status(tab) == "running", "a held run is still running after the reload"
    expect(tab.get_by_test_id("stProgress")).to_contain_text("80 of 200 rows")
    grid = tab.get_by_test_id("stDataFrame").first
    expect(grid_cell(grid, answer_col, 2)).to_have_text(EDIT)

    # A second tab on the same URL shows the same run, with its progress (not a new one from zero).
    second = ctx.new_page()
    second.goto(tab.url)
    expect(run_caption(second)).to_contain_text(f"status: running · run id {run_id}")
    expect(second.get_by_test_id("stProgress")).to_contain_text("80 of 200 rows")
    second.close()

    # The answers flow again: the run goes on to the end in the reloaded page.
    release_answers(api)
    wait_finished(tab, 200)
    screenshot(tab, "browser-run-finished.png")
    expect(grid_cell(grid, answer_col, 2)).to_have_text(EDIT)

    # Results: CSV and XLSX, checked row by row against the input and the simulator's answers.
    goto_page(tab, "Results")
    expect(tab.get_by_text(f"run {run_id}")).to_be_visible()
    for fmt, label in (("csv", "Download CSV"), ("xlsx", "Download XLSX")):
        with tab.expect_download() as download:
            tab.get_by_role("button", name=label).click()
        target = tmp_path / f"export.{fmt}"
        download.value.save_as(target)
        exported = read_export(target)
        assert [int(r["enrich_row_id"]) for r in exported] == ids, f"{fmt}: every row, in input order"
        for row_id, out in zip(ids, exported, strict=True):
            for column in df.columns:
                assert out[column] == guarded(df.loc[row_id, column], fmt), (fmt, row_id, column)
            want = EDIT if row_id == ids[2] else answers[row_id]
            assert out[ANSWER] == guarded(want, fmt), (fmt, row_id)
            assert out["enrich_status"] == "succeeded", (fmt, row_id)
        assert exported[0]["Zip"] == "02134", f"{fmt}: leading-zero ZIP intact"
        mark = "'" if fmt == "csv" else ""  # XLSX holds text cells: exact, and never a formula
        assert exported[3]["Company"] == mark + FORMULA_CELLS[(3, "Company")], f"{fmt}: formula inert"
        assert exported[2][ANSWER] == mark + EDIT, f"{fmt}: the edit is exported, inert"


# --- 2. double-clicked Start ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_double_clicked_start_makes_one_run(app, api, tab, tmp_path):
    path = csv_file(tmp_path / "leads.csv", apollo_rows(40))
    prepare_run(tab, app, path)
    tab.get_by_role("button", name="Start run").dblclick()
    run_id = run_id_of(tab)
    wait_finished(tab, 40)
    store = Store(app.data_dir)
    try:
        assert [r.run_id for r in store.runs()] == [run_id]
    finally:
        store.close()
    billed = Counter(int(e["row_id"]) for e in api.ledger())
    assert billed == Counter(range(1, 41)), "each row sent exactly once"


# --- 3. kill -9 of the server mid-run, restart, resume from History -----------------------------------


@pytest.mark.browser
@pytest.mark.faults
@pytest.mark.xdist_group("browser")
def test_server_killed_mid_run_resumes_without_losing_rows(app, api, tab, tmp_path):
    total, workers, answered = 150, 4, 40
    wave = "(wave 2)"
    path = csv_file(tmp_path / "leads.csv", in_waves(apollo_rows(total), {answered: wave}))
    answers = expected_answers(path)
    prepare_run(tab, app, path, workers=workers)
    hold_answers(api, wave)  # the run stands still after the first wave: provably mid-way when killed
    tab.get_by_role("button", name="Start run").click()
    run_id = run_id_of(tab)
    wait_held(api, in_flight=workers)
    expect(tab.get_by_test_id("stProgress")).to_contain_text(f"{answered} of {total} rows")

    app.kill()
    # The answers in flight at the kill go out now and are billed, as the API bills them; none is stored.
    release_answers(api)
    store = Store(app.data_dir)
    try:
        statuses = Counter(r.status for r in store.rows(run_id))
    finally:
        store.close()
    assert statuses["succeeded"] == answered, f"killed mid-run, journal after the kill: {statuses}"

    app.start()  # same port, same data dir
    tab.goto(f"{app.url}/history")
    expect(tab.get_by_role("heading", name="History", exact=True)).to_be_visible()
    version = library_prompt().version  # the run's prompt is the library's current version
    expect(tab.get_by_role("combobox", name="Run")).to_have_value(
        re.compile(
            rf"· run of Icebreaker v{version}(, edited \(#[0-9a-f]{{8}}\))? on leads\.csv · .* · running$"
        )
    )
    tab.get_by_role("button", name="Resume run").click()
    expect(run_caption(tab)).to_contain_text(f"run id {run_id}")
    wait_finished(tab, total)

    store = Store(app.data_dir)
    try:
        results = stored_results(store, run_id)
    finally:
        store.close()
    assert list(results.index) == list(answers), "no lost rows"
    assert (results["enrich_status"] == "succeeded").all()
    assert results[ANSWER].to_dict() == answers
    billed = Counter(int(e["row_id"]) for e in api.ledger())
    assert set(billed) == set(answers)
    duplicates = sum(n - 1 for n in billed.values())
    assert duplicates <= workers, f"{duplicates} rows billed twice; at most the {workers} in flight may be"


# --- 4. two browser sessions, one key, one rate limit ------------------------------------------------


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_two_sessions_on_one_key_share_the_rate_limit(app, api, chromium, tab, tmp_path):
    rows = apollo_rows(160)
    first = csv_file(tmp_path / "first.csv", rows[:81])
    second = csv_file(tmp_path / "second.csv", [rows[0], *rows[81:]])
    api.configure(rpm=2400)  # 40 requests a second; each run alone would send ~100 a second
    other_ctx = new_context(chromium)
    try:
        other = other_ctx.new_page()
        prepare_run(tab, app, first)
        prepare_run(other, app, second)
        hold_answers(api)  # no answer comes until both runs are going, however fast the model is
        tab.get_by_role("button", name="Start run").click()
        other.get_by_role("button", name="Start run").click()
        expect(run_caption(tab)).to_contain_text("status: running")
        expect(run_caption(other)).to_contain_text("status: running")
        assert run_id_of(tab) != run_id_of(other)
        release_answers(api)
        wait_finished(tab, 80)
        wait_finished(other, 80)
    finally:
        other_ctx.close()
    stats = api.stats()
    assert stats["billed"] == 160
    assert stats["status_429"] <= 0.03 * stats["total"], stats


# --- 5. hostile lead text stays text ---------------------------------------------------------------

HOSTILE = (
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    "![x](http://127.0.0.1:9/x.png)",
)
ICEBREAKER_COLUMNS = ["First Name", "Title", "Company", "Industry", "City", "# Employees"]


def assert_inert(page, fetched: list[str]) -> None:
    assert page.evaluate("window.__xss") is None, "hostile text ran as script"
    assert page.locator("img[src='x'], img[src*='127.0.0.1:9']").count() == 0
    assert not fetched, f"hostile markdown fetched {fetched}"


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_hostile_lead_text_is_never_rendered_as_html(app, tab, tmp_path):
    img, script, markdown = HOSTILE
    rows = [
        [*ICEBREAKER_COLUMNS, img],
        [img, markdown, script, "software", "Boston", "50", script],
        [script, img, markdown, markdown, img, "10", markdown],
        ["Ann", "VP Sales", f"Acme {img} {markdown}", "", "Austin", "5", ""],
    ]
    path = csv_file(tmp_path / "hostile.csv", rows)
    fetched: list[str] = []
    tab.on("request", lambda r: fetched.append(r.url) if "127.0.0.1:9/" in r.url else None)

    tab.goto(app.url)
    upload(tab, path)
    expect(tab.get_by_text("3 rows, 7 columns.")).to_be_visible()
    assert_inert(tab, fetched)
    choose_prompt(tab)
    preview = tab.get_by_test_id("stCode").filter(has_text="First name:").last  # after the few-shot turns
    for text in (img, markdown, script):  # shown literally, inside the row's fenced data
        expect(preview).to_contain_text(text)
    expect(tab.get_by_test_id("stCode").filter(has_text="{{ First Name }}")).to_contain_text(img)
    assert_inert(tab, fetched)

    tab.get_by_role("button", name="Try on these rows").click()
    expect(tab.get_by_text("Try 1", exact=True)).to_be_visible()
    assert_inert(tab, fetched)
    goto_page(tab, "Run")
    expect(tab.get_by_text("sample tried on the Prompt page (3 answers)")).to_be_visible()
    tab.get_by_role("button", name="Start run").click()
    wait_finished(tab, 3)
    grid = tab.get_by_test_id("stDataFrame").first
    expect(grid_cell(grid, 1, 0)).to_have_text(img)
    assert_inert(tab, fetched)
    for title in ("Results", "History", "Data"):
        goto_page(tab, title)
        assert_inert(tab, fetched)
