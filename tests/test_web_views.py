"""The words the "Read websites" step shows, from a job's snapshot and rows."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.views.web_status import error_kind, error_summary, parse_hosts, progress_text
from lib.web import WebSnapshot, step

ERRORS = [
    ("Refused: 10.0.0.5 is a private network address. Addresses from a lead file…", "refused: private or local address"),
    ("The website answered 404 (page not found).", "answered 404"),
    ("The website answered 503 (service unavailable).", "answered 503"),
    ("The site's robots.txt does not allow reading this page.", "robots.txt says no"),
    ("The site's robots.txt answered with an error (500), so the site is not read.", "robots.txt says no"),
    ("The website did not answer within 15 s.", "too slow"),
    ("The website did not accept a connection within 15 s.", "too slow"),
    ("The address is a PDF document, not a web page.", "not a web page (PDF, image…)"),
    ("The page shows its content only with JavaScript, which is not run here.", "needs JavaScript"),
    ("'N/A' is not a website address.", "not a website address"),
    ("'mailto:a@b.c' is a mailto: address; only web addresses (http, https) are read.", "not a website address"),
    ("The website's name does not resolve (no such domain, or it is offline).", "no such domain"),
    ("The website refused the connection (nothing answers at that address).", "could not connect"),
    ("The website's security certificate is not valid, so it was not read.", "could not connect"),
    ("The website redirected more than 5 times.", "too many redirects"),
    ("The page has no readable text.", "no readable text"),
    ("Something new", "other"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "kind"), ERRORS)
def test_every_row_error_has_a_kind(message, kind):
    assert error_kind(message) == kind


def test_error_summary_counts_kinds_most_common_first():
    messages = ["The website answered 404 (page not found)."] * 3 + [
        None,
        "",
        "The page has no readable text.",
    ]
    assert error_summary(messages) == [("answered 404", 3), ("no readable text", 1)]


@pytest.mark.parametrize(
    ("typed", "hosts"),
    [
        ("wiki.acme.local", ("wiki.acme.local",)),
        ("https://Wiki.Acme.Local/path, intranet:8080\n\n10.0.0.5 ; wiki.acme.local.", ("wiki.acme.local", "intranet", "10.0.0.5")),
        ("[fd00::1]:443 http://[fd00::2]/", ("fd00::1", "fd00::2")),
        ("", ()),
    ],
)  # fmt: skip
def test_allowed_hosts_are_read_as_typed(typed, hosts):
    assert parse_hosts(typed) == hosts


def test_progress_text():
    snap = WebSnapshot(
        job_id="web-x", status="running", message=None, total=40, succeeded=10, failed=2, skipped=1, pending=27,
        sites=30, sites_done=12, in_flight=3, cache_hits=3, requests=20, bytes_read=1, elapsed_s=3.0,
        sites_per_s=4.1, eta_s=7.0, recent_errors=(), version=1,
    )  # fmt: skip
    assert progress_text(snap) == (
        "13 of 40 rows · 10 read · 2 failed · 1 without an address · 27 pending · 3 sites from earlier · "
        "4.1 sites/s · about 7 s left"
    )


@pytest.mark.parametrize(
    ("columns", "guess"),
    [
        (["First Name", "Website", "Company"], "Website"),
        (["Name", "Website URL"], "Website URL"),
        (["Company Domain", "Email"], "Company Domain"),
        (["Person Linkedin Url", "Company Website"], "Company Website"),  # a LinkedIn profile is not a site
        (["Person Linkedin Url", "Name"], None),
        (["Name", "City"], None),
    ],
)
def test_the_address_column_is_guessed_from_its_name(columns, guess):
    assert step.guess_column(columns) == guess


@pytest.mark.parametrize(
    ("server", "typed", "hosts"),
    [
        ("", "", ()),
        ("", "wiki.corp\n", ("wiki.corp",)),
        ("intranet.corp", "wiki.corp", ("intranet.corp", "wiki.corp")),
    ],
)
def test_the_hosts_allowed_are_the_servers_and_the_typed_ones(server, typed, hosts):
    settings = step.settings_for(True, typed, env={step.ALLOW_ENV: server})
    assert set(settings.allow_hosts) == set(hosts)
    assert settings.fetch.about_page and settings.workers == step.WORKERS


def test_the_cells_read_are_keyed_by_row_id_as_text():
    df = pd.DataFrame({"Website": ["acme.com", 7, None]}, index=[3, 5, 9])
    assert step.cells_of(df, "Website") == {3: "acme.com", 5: "7", 9: "None"}
