"""The review queue in real Chromium, during a live run over the simulator answering with defects on purpose:
counts per check grow while the run goes, flagged rows come first, an accepted row leaves the queue and a
reload keeps the acceptance."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from lib.engine import runs
from lib.sim import SimConfig, SimProcess
from lib.store import Store
from lib.views import review
from tests.browser_helpers import (
    TEST_KEY,
    AppServer,
    browser_tab,
    csv_file,
    grid_cell,
    prepare_run,
    run_caption,
    run_status,
    running_app,
    screenshot,
    wait_finished,
    wait_for,
)
from tests.conftest import SIM_TODAY
from tests.leadfiles import apollo_rows

ROWS = 80
# About 4 rows/s on 2 workers: a run of 20 s, slow enough to watch; 30% of the answers break a rule on purpose.
SIM_CONFIG = SimConfig(
    today=SIM_TODAY, latency_ms=450, p_defect=0.3, defects=("placeholder", "banned_phrase"), seed=11
)
VIEWPORT = {"width": 1280, "height": 1100}
SUMMARY = re.compile(r"([\d,]+) rows? needs? review \((.*?)\)(?: · ([\d,]+) accepted)?")

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
    with browser_tab(chromium, VIEWPORT) as page:
        yield page


def summary(page: Page) -> tuple[int, dict[str, int], int] | None:
    """(rows waiting, {check label: rows}, rows accepted) from the panel's review line, or None."""
    line = page.get_by_test_id("stCaptionContainer").filter(has_text=SUMMARY)
    try:
        text = line.first.inner_text(timeout=1_000) if line.count() else ""
    except Exception:  # redrawn between count() and inner_text(): the next poll reads it
        return None
    match = SUMMARY.search(text)
    if not match:
        return None
    counts = {}
    for part in match.group(2).split(" · "):
        name, n = part.rsplit(": ", 1)
        counts[name] = int(n.replace(",", ""))
    return int(match.group(1).replace(",", "")), counts, int((match.group(3) or "0").replace(",", ""))


def queue_ids(page: Page) -> list[int]:
    """The row ids of the flagged rows the panel lists with an Accept button, top first."""
    texts = page.get_by_test_id("stText").filter(has_text=re.compile(r"^Row \d+ · ")).all_inner_texts()
    return [int(re.match(r"Row (\d+)", t).group(1)) for t in texts]


def grid_ids(page: Page, n: int) -> list[int]:
    """The row ids of the live grid's first n rows (column 0 is the row index)."""
    grid = page.get_by_test_id("stDataFrame").first
    return [int(grid_cell(grid, 0, r).inner_text().strip()) for r in range(n)]


def stored_flags(app: AppServer, run_id: str) -> dict[int, str]:
    store = Store(app.data_dir)
    try:
        frame = runs.stored_results(store, run_id)
        return {int(i): f for i, f in frame["enrich_flags"].items()}
    finally:
        store.close()


def test_review_queue_during_a_live_run(app, sim, tab, tmp_path):
    path = csv_file(tmp_path / "apollo-80.csv", apollo_rows(ROWS))
    prepare_run(tab, app, path, workers=2)
    tab.get_by_role("button", name="Start run").click()

    # Counts per check show up and grow while the run goes.
    first = wait_for(lambda: summary(tab), 30, "the review line in the live panel")
    time.sleep(4)
    later = wait_for(lambda: (s := summary(tab)) and s[0] > first[0] and s, 20, "the count growing")
    assert run_status(tab) == "running", "the run ended before the counts could be seen growing"
    assert set(later[1]) <= {review.label(c) for c in review.CHECK_LABELS}
    tab.get_by_role("heading", name=re.compile("^Run of ")).scroll_into_view_if_needed()
    screenshot(tab, "review-live-counts.png")

    # Flagged rows first: the grid opens on the rows the queue lists.
    ids = wait_for(lambda: (q := queue_ids(tab)) and len(q) >= 3 and q, 20, "three flagged rows listed")
    wait_for(lambda: grid_ids(tab, 3) == queue_ids(tab)[:3], 10, "the grid's first rows = the queue's")
    expect(tab.get_by_text("Flagged rows come first; edits stay with their row.")).to_be_visible()

    # Accept one while the run goes: it leaves the queue and is counted as accepted.
    accepted = ids[0]
    row_line = tab.get_by_test_id("stHorizontalBlock").filter(
        has=tab.get_by_test_id("stText").filter(has_text=re.compile(rf"^Row {accepted} · "))
    )
    row_line.get_by_role("button", name="Accept").click()
    wait_for(lambda: (s := summary(tab)) and s[2] == 1, 10, "one row accepted")
    wait_for(lambda: (q := queue_ids(tab)) and accepted not in q, 10, "the accepted row gone from the queue")
    assert run_status(tab) == "running"
    screenshot(tab, "review-live-accepted.png")

    run_id = re.search(r"run id ([\w-]+)", run_caption(tab).first.inner_text()).group(1)
    wait_finished(tab, ROWS, timeout=90)
    waiting, counts, kept = wait_for(lambda: summary(tab), 10, "the review line after the run")
    flags = stored_flags(app, run_id)
    assert kept == 1 and flags[accepted].startswith("accepted:")
    assert waiting == sum(
        review.is_quality_flagged(f) for f in flags.values()
    )  # the page says what is stored
    assert sum(counts.values()) >= waiting > 0

    # Accept another once it has finished: the count drops by one.
    second = wait_for(lambda: queue_ids(tab), 10, "the queue after the run (the page redraws as it ends)")[0]
    tab.get_by_test_id("stHorizontalBlock").filter(
        has=tab.get_by_test_id("stText").filter(has_text=re.compile(rf"^Row {second} · "))
    ).get_by_role("button", name="Accept").click()
    wait_for(lambda: (s := summary(tab)) and s[0] == waiting - 1 and s[2] == 2, 10, "the count dropping")

    # A reload keeps both acceptances (they are in the store, not in the session).
    tab.reload()
    expect(run_caption(tab)).to_contain_text("status: finished")
    after = wait_for(lambda: summary(tab), 20, "the review line after a reload")
    assert after[0] == waiting - 1 and after[2] == 2
    listed = wait_for(lambda: queue_ids(tab), 10, "the queue after the reload")
    assert accepted not in listed and second not in listed
    expect(tab.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(tab.get_by_role("button", name="Open the review queue")).to_be_visible()
    screenshot(tab, "review-after-reload.png")

    # The queue on Results: the flagged, not accepted rows, with counts per check.
    tab.get_by_role("button", name="Open the review queue").click()
    expect(tab.get_by_role("heading", name="Results", exact=True)).to_be_visible()
    expect(tab.get_by_text(f"Needs review ({waiting - 1})")).to_be_visible()
    expect(tab.get_by_role("button", name=f"Regenerate flagged rows ({waiting - 1})")).to_be_visible()
    expect(tab.get_by_text("Why it is flagged")).to_be_visible()
    screenshot(tab, "review-results-queue.png")

    # Regenerate the rest from the queue: one billed request per flagged row, and fewer rows left.
    billed = len(sim.ledger())
    tab.get_by_role("button", name=f"Regenerate flagged rows ({waiting - 1})").click()
    wait_for(lambda: len(sim.ledger()) == billed + waiting - 1, 60, "each flagged row asked once more")

    def settled():
        """The page's count once it says what is stored (the answers of the attempt land one by one)."""
        s = summary(tab)
        stored = sum(review.is_quality_flagged(f) for f in stored_flags(app, run_id).values())
        return s if s and s[0] < waiting - 1 and s[0] == stored else None

    left = wait_for(settled, 30, "fewer rows waiting after regenerate, as stored")
    assert left[2] == 2  # the accepted rows were not asked again
    screenshot(tab, "review-results-regenerated.png")
