"""The Data page's "Read websites" step under AppTest, against local sites on loopback."""

from __future__ import annotations

import time

import pytest

from lib import engine, web
from tests import leadfiles as L
from tests import web_sites as W
from tests.apptest_helpers import (
    all_text,
    choose_prompt,
    goto,
    new_app,
    upload,
    workspace,
)

pytestmark = pytest.mark.usefixtures("app_env")


@pytest.fixture
def sites():
    s = W.Sites()
    yield s
    s.stop()


def leads(sites: W.Sites) -> bytes:
    return L.csv_bytes(
        [
            ["First Name", "Company", "Website"],
            ["Dana", "Fernhill Analytics", sites.home.url],
            ["Jürgen", "Brauerei Huber", sites.soup.address],
            ["Sam", "Gone Ltd", sites.missing.url],
            ["Li", "Private Co", sites.outside.url],
        ]
    )


def wait_for_websites(at, timeout: float = 30.0) -> None:
    """run_every never fires under AppTest: rerun until the job has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if any("rows have website text" in c.value for c in at.caption):
            return
        time.sleep(0.2)
    raise AssertionError("the websites were not read in time")


def test_read_websites_adds_the_columns_and_the_website_prompt_then_checks(sites):
    at = upload(new_app(), "leads.csv", leads(sites))
    assert at.selectbox(key="d_web_column").value == "Website"  # guessed from the header
    at.text_area(key="d_web_hosts").input("127.0.0.1").run()
    at.button(key="btn_web_start").click().run()
    assert not at.exception, at.exception
    wait_for_websites(at)
    text = all_text(at)
    assert "2 of 4 rows have website text" in text
    assert "answered 404" in text and "refused: private or local address" in text
    assert sites.outside.connections == 0
    assert "Fernhill turns messy CRM data" in text  # the preview shows website_text
    # The website-analysis prompt finds every column it needs on a list that had only a Website column.
    choose_prompt(at, "Website analysis")
    assert "There is no column named" not in all_text(at)


def test_pause_and_cancel_from_the_page(sites, monkeypatch):
    monkeypatch.setenv("LEAD_STUDIO_ALLOW_HOSTS", "127.0.0.1")  # the app-wide setting, nothing typed
    slow = [sites.add(f"slow{i}", {"/": W.slow(40.0), "/robots.txt": W.Reply(404)}) for i in range(3)]
    rows = [["Company", "Website"]] + [[f"S{i}", s.url] for i, s in enumerate(slow)]
    at = upload(new_app(), "slow.csv", L.csv_bytes(rows))
    assert "Allowed for everyone on this server: 127.0.0.1" in all_text(at)
    at.button(key="btn_web_start").click().run()
    assert W.wait_for(lambda: all("/" in s.paths() for s in slow), timeout=10)
    at.run()
    job = engine.get_job(workspace(at).websites.job_id)  # the workspace keeps the job's id
    assert isinstance(job, web.WebJob) and job.snapshot().status == "running"
    at.button(key="btn_web_pause").click().run()
    assert not at.exception, at.exception
    assert job.snapshot().status == "paused"
    at.button(key="btn_web_cancel").click().run()
    assert not at.exception, at.exception
    assert job.wait(3) and job.snapshot().status == "cancelled"  # the slow sites are dropped at once
    at.run()
    assert "0 of 3 rows" in all_text(at) and at.button(key="btn_web_resume").label == "Resume"
    # The table carries the columns, with the rows not read marked so.
    goto(at, "data")
    assert web.NOT_READ in all_text(at)
    job.close()
