"""The "Read websites" step in real Chromium: upload, allow the local host, read, watch the live progress.

The local sites run in this process on 127.0.0.1; the app (its own process) reads them. 127.0.0.2 stands
for an address that is not allowed, and must see no connection.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect, sync_playwright

from tests import web_sites as W
from tests.browser_helpers import CHROMIUM_ARGS, AppServer, csv_file, require_chromium, screenshot, upload

pytestmark = pytest.mark.browser


@pytest.fixture
def sites():
    s = W.Sites()
    yield s
    s.stop()


def steady(handler) -> W.Reply:
    """A site that takes 1.5 s: long enough to see the progress move while it is read."""
    time.sleep(1.5)
    return W.html(W.HOMEPAGE)


def test_read_websites_in_the_browser_with_live_progress(tmp_path, sites):
    chromium_path = require_chromium()
    slow_but_fine = sites.add("steady", {"/": steady, "/robots.txt": W.Reply(404)})
    leads = csv_file(
        tmp_path / "leads.csv",
        [
            ["First Name", "Company", "Website"],
            ["Dana", "Fernhill Analytics", sites.home.url],
            ["Jürgen", "Brauerei Huber", sites.soup.address],
            ["Sam", "Gone Ltd", sites.missing.url],
            ["Li", "Private Co", sites.outside.url],
            ["Ann", "Steady Co", slow_but_fine.url],
        ],
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = AppServer(data_dir, tmp_path / "streamlit.log", {}).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(20_000)
            page.goto(app.url)
            upload(page, leads)
            hosts = page.get_by_role("textbox", name="Intranet hosts that may be read")
            hosts.fill("127.0.0.1")
            hosts.blur()
            page.wait_for_timeout(500)
            page.get_by_role("button", name="Read websites").click()
            # The live panel redraws while the job runs: the progress text moves without a click.
            expect(page.get_by_text("of 5 rows").first).to_be_visible()
            expect(page.get_by_text("3 of 5 rows have website text")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("answered 404").first).to_be_visible()
            # Done: the page was redrawn whole, so the job's buttons are gone and the columns can be removed.
            expect(page.get_by_role("button", name="Pause")).to_have_count(0)
            expect(page.get_by_role("button", name="Remove the website columns")).to_be_visible()
            page.get_by_text("3 of 5 rows have website text").scroll_into_view_if_needed()
            screenshot(page, "read-websites.png")
            browser.close()
    finally:
        app.stop()
    assert sites.outside.connections == 0
    assert "/" in sites.home.paths() and "/" in slow_but_fine.paths()
