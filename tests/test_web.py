"""The website fetcher (lib/web) against local sites on loopback: safety, politeness, limits, extraction.

Nothing here reaches any address but 127.0.0.1: names are resolved through a table (never real DNS),
and every fetcher is built with `loopback_only`, which fails a test before a socket to anything else
is opened. Addresses that must be refused are also served (127.0.0.2) so the tests can see that no
connection ever arrived.
"""

from __future__ import annotations

import dataclasses
import shutil
import ssl
import subprocess
import threading
import time

import pandas as pd
import pytest

from lib.store import Store, StoreError
from lib.web import NOT_READ, FetchSettings, WebJob, WebSettings, website_columns
from lib.web import start as start_web
from lib.web.extract import about_link, cap, decode, extract
from lib.web.fetch import Fetcher
from lib.web.safety import (
    AddressPolicy,
    AddressRefused,
    BadAddress,
    GuardedBackend,
    candidate_urls,
    default_resolver,
    refusal,
)
from tests import web_sites as W

LOCAL = ("127.0.0.1",)
FAST = FetchSettings(timeout_s=1.5, connect_timeout_s=1.0, site_delay_s=0.05)


class TableResolver:
    """Names -> addresses from a table; any other name fails the test (no real DNS, ever)."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise AssertionError(f"the test resolver was asked for {host}")
        return self.table[host]


@pytest.fixture
def sites():
    s = W.Sites()
    yield s
    s.stop()


def run_job(cells: dict[int, str], *, settings: WebSettings | None = None, store=None, resolver=None, **kw):
    connected: list[tuple[str, int]] = []

    def fence(address: str, port: int) -> None:
        connected.append((address, port))
        W.loopback_only(address, port)

    settings = settings or WebSettings(workers=8, fetch=FAST, allow_hosts=LOCAL, **kw)
    job = WebJob(cells, settings=settings, store=store, resolver=resolver, on_connect=fence).start()
    assert job.wait(30), "the job did not end"
    job.close()
    assert all(a == "127.0.0.1" for a, _ in connected), connected
    return job, {r.row_id: r for r in job.rows()}


# --- which addresses may be reached (no connection is made by any of these) ---------------------------

REFUSED = [
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.10", "private"),
    ("127.0.0.1", "loopback"),
    ("127.5.5.5", "loopback"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "private"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "private"),
    ("240.0.0.1", "private"),
    ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ("192.0.2.7", "private"),  # documentation range
    ("198.18.0.1", "private"),  # benchmarking range
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("fec0::1", "reserved"),  # old site-local
    ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ("2001:db8::1", "private"),  # documentation
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.15.255.255",
    "172.32.0.1",
    "11.0.0.1",
    "2606:4700::1111",
]


@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[a for a, _ in REFUSED])
def test_non_public_addresses_are_refused(address, why):
    reason = refusal(address)
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert refusal(address) is None


@pytest.mark.parametrize(
    ("host", "table", "allowed", "outcome"),
    [
        ("intranet.test", {"intranet.test": ["10.1.2.3"]}, (), "refused"),
        ("metadata.test", {"metadata.test": ["169.254.169.254"]}, (), "refused"),
        ("v6.test", {"v6.test": ["::ffff:192.168.0.1"]}, (), "refused"),
        ("mixed.test", {"mixed.test": ["93.184.216.34", "10.0.0.1"]}, (), "refused"),
        ("public.test", {"public.test": ["93.184.216.34"]}, (), ["93.184.216.34"]),
        ("Intranet.Test.", {"intranet.test": ["10.1.2.3"]}, ("intranet.test",), ["10.1.2.3"]),
        ("10.0.0.8", {}, (), "refused"),
        ("10.0.0.8", {}, ("10.0.0.8",), ["10.0.0.8"]),
        ("[::1]", {}, (), "refused"),
    ],
    ids=[
        "private",
        "metadata",
        "mapped-v6",
        "public-and-private",
        "public",
        "allowed",
        "ip",
        "allowed-ip",
        "v6",
    ],
)
def test_policy_judges_every_resolved_address(host, table, allowed, outcome):
    policy = AddressPolicy.allowing(allowed, TableResolver(table))
    if outcome == "refused":
        with pytest.raises(AddressRefused) as caught:
            policy.addresses(host)
        assert "public websites" in str(caught.value)
    else:
        assert policy.addresses(host) == outcome


def test_the_system_resolver_is_judged_too():
    """Names that resolve locally, without a network: 'localhost' and a decimal IPv4 address."""
    policy = AddressPolicy()
    for host in ("localhost", "2130706433"):
        if not set(default_resolver(host)) & {"127.0.0.1", "::1"}:
            pytest.skip(f"{host} does not resolve to loopback here")
        with pytest.raises(AddressRefused):
            policy.addresses(host)


def test_connection_goes_to_the_address_that_was_checked_not_a_second_lookup():
    """DNS rebinding: the name answers a public address first and loopback after. The socket layer
    resolves once, checks, and connects to exactly that checked address."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str) -> list[str]:
        calls.append(host)
        return next(answers)

    class Fence(Exception):
        pass

    seen: list[tuple[str, int]] = []

    def fence(address: str, port: int) -> None:
        seen.append((address, port))
        raise Fence  # never open a socket to a public address from a test

    backend = GuardedBackend(AddressPolicy(resolver=rebinding), on_connect=fence)
    with pytest.raises(Fence):
        backend.connect_tcp("rebind.test", 80, timeout=1)
    assert seen == [("93.184.216.34", 80)] and calls == ["rebind.test"]
    with pytest.raises(AddressRefused):  # the second connection's own lookup says loopback: refused
        backend.connect_tcp("rebind.test", 80, timeout=1)
    assert seen == [("93.184.216.34", 80)] and calls == ["rebind.test", "rebind.test"]


@pytest.mark.parametrize(
    ("cell", "urls"),
    [
        ("acme.com", ["https://acme.com/", "http://acme.com/"]),
        ("  www.Acme.com/about  ", ["https://www.acme.com/about", "http://www.acme.com/about"]),
        ("acme.com:8080/x?y=1", ["https://acme.com:8080/x?y=1", "http://acme.com:8080/x?y=1"]),
        ("//acme.com", ["https://acme.com/", "http://acme.com/"]),
        ("http://acme.com", ["http://acme.com/"]),
        ("HTTPS://ACME.com/Path#team", ["https://acme.com/Path"]),
        ("https://user:secret@acme.com/", ["https://acme.com/"]),
        ("http://[2001:db8::1]:8080/", ["http://[2001:db8::1]:8080/"]),
        ("müller-gmbh.de", ["https://müller-gmbh.de/", "http://müller-gmbh.de/"]),
    ],
)
def test_addresses_are_cleaned_and_schemeless_ones_try_https_then_http(cell, urls):
    assert candidate_urls(cell) == urls


@pytest.mark.parametrize(
    ("cell", "needle"),
    [
        ("", "No website address"),
        ("not a url", "not a website address"),
        ("mailto:sales@acme.com", "mailto: address"),
        ("javascript:alert(1)", "javascript: address"),
        ("ftp://files.acme.com/", "ftp: address"),
        ("file:///etc/passwd", "file: address"),
        ("http://", "not a website address"),
        ("http://acme..com/", "not a website address"),
        ("https://acme.com:99999/", "not a website address"),
        ("N/A", "not a website address"),
    ],
)
def test_cells_that_are_not_web_addresses_are_refused_in_plain_words(cell, needle):
    with pytest.raises(BadAddress) as caught:
        candidate_urls(cell)
    assert needle in str(caught.value)


# --- robots.txt: RFC 9309 as protego reads it (the standard library's parser gets these wrong) ---------

ROBOTS = [
    ("User-agent: *\nDisallow: /\n", "/", False),
    ("User-agent: *\nDisallow: /\nAllow: /$\n", "/", True),  # only the homepage: longest match wins
    ("User-agent: *\nDisallow: /private\nAllow: /private/about\n", "/private/about", True),
    ("User-agent: *\nDisallow: /*.pdf$\n", "/files/report.pdf", False),  # wildcards
    ("User-agent: *\nDisallow: /*.pdf$\n", "/", True),
    ("User-agent: LeadEnrichmentStudio\nDisallow: /\n\nUser-agent: *\nAllow: /\n", "/", False),
    ("User-agent: Googlebot\nDisallow: /\n", "/", True),  # rules for someone else
    ("", "/", True),
]


@pytest.mark.parametrize(("robots", "path", "allowed"), ROBOTS)
def test_robots_rules_decide_whether_a_page_is_read(sites, robots, path, allowed):
    site = sites.add("robots-case", {path: W.html(W.HOMEPAGE), "/robots.txt": W.Reply(200, robots.encode())})
    fetcher = Fetcher(FAST, AddressPolicy.allowing(LOCAL), on_connect=W.loopback_only)
    result = fetcher.read_site(site.url.rstrip("/") + path)
    fetcher.close()
    assert (result.error is None) is allowed, result.error
    if not allowed:
        assert "robots.txt" in result.error and site.paths() == ["/robots.txt"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(404, "read"), (403, "read"), (410, "read"), (500, "robots.txt answered with an error (500)"),
     (503, "robots.txt answered with an error (503)")],
)  # fmt: skip
def test_an_unreadable_robots_txt_follows_rfc_9309(sites, status, outcome):
    site = sites.add("robots-status", {"/": W.html(W.HOMEPAGE), "/robots.txt": W.Reply(status)})
    fetcher = Fetcher(FAST, AddressPolicy.allowing(LOCAL), on_connect=W.loopback_only)
    result = fetcher.read_site(site.url)
    fetcher.close()
    if outcome == "read":
        assert result.error is None and "Fernhill" in result.text
    else:
        assert outcome in result.error and result.retryable and "/" not in site.paths()


# --- the local sites, read as a list ------------------------------------------------------------------


def test_every_kind_of_site_ends_as_text_or_a_clear_error(sites):
    s = sites
    resolver = TableResolver({"intranet.test": ["10.0.0.1"], "sneaky.test": ["127.0.0.2"]})
    cases = {
        1: (s.home.url, "text", "Fernhill turns messy CRM data"),
        2: (s.redirect.url, "text", "Fernhill turns messy CRM data"),
        3: (s.missing.url, "error", "answered 404 (page not found)"),
        4: (s.robots_deny.url, "error", "robots.txt does not allow"),
        5: (s.slow.url, "error", "did not answer within 1.5 s"),
        6: (s.huge.url, "text", "Big page text."),
        7: (s.pdf.url, "error", "is a PDF document, not a web page"),
        8: (s.cp1252.url, "text", W.CP1252_TEXT),
        9: (s.outside.url, "error", "127.0.0.2 is this machine (loopback)"),
        10: ("not a url", "error", "'not a url' is not a website address"),
        11: (s.spa.url, "error", "only with JavaScript"),
        12: (s.home.address, "text", "Fernhill turns messy CRM data"),  # no scheme: https fails, http works
        13: (s.redirect.url + "to-outside", "error", "127.0.0.2 is this machine"),
        14: (
            s.redirect.url + "to-private",
            "error",
            "intranet.test resolves to 10.0.0.1, which is a private",
        ),
        15: (f"http://sneaky.test:{s.outside.port}/", "error", "sneaky.test resolves to 127.0.0.2"),
        16: (s.redirect.url + "loop", "error", "redirected more than 5 times"),
        17: (f"http://sales:hunter2@127.0.0.1:{s.soup.port}/", "text", "Willkommen bei der Brauerei Huber"),
        18: ("", "skipped", "No website address"),
        19: (s.refresh.url, "text", "Fernhill turns messy CRM data"),  # <meta http-equiv="refresh">
        20: (s.broken_gzip.url, "error", "could not be decoded"),
    }
    started = time.monotonic()
    job, rows = run_job({k: v[0] for k, v in cases.items()}, resolver=resolver)
    elapsed = time.monotonic() - started
    for row_id, (url, kind, needle) in cases.items():
        row = rows[row_id]
        if kind == "text":
            assert row.status == "succeeded" and row.error is None, (url, row.error)
            assert needle in row.text, (url, row.text[:300])
        else:
            assert row.status == ("skipped" if kind == "skipped" else "failed") and row.text == "", url
            assert needle in row.error, (url, row.error)
    # Refused addresses were never contacted, not even by the redirect or a name resolving to loopback.
    assert s.outside.connections == 0
    # The 40 s site was cut off at the 1.5 s timeout (the run as a whole, not just that row).
    assert elapsed < 10
    # The 30 MB page: reading stopped at the cap and the server saw the reader hang up.
    assert W.wait_for(s.huge.reading_stopped.is_set)
    assert s.huge.sent < W.HUGE_BYTES / 2
    # robots.txt said no: the homepage itself was never requested.
    assert s.robots_deny.paths() == ["/robots.txt"]
    # Credentials written into the address were not sent.
    assert all("authorization" not in headers for _, headers in s.soup.requests)
    assert rows[2].final_url == s.home.url
    snap = job.snapshot()
    assert (snap.succeeded, snap.failed, snap.skipped, snap.pending) == (7, 12, 1, 0)
    assert snap.status == "finished" and snap.done == snap.total == 20
    assert rows[19].final_url == s.refresh.url + "en/"


def test_the_timeout_is_for_the_whole_answer_not_each_read(sites):
    """A site that sends a byte every 0.2 s never trips a read timeout; the total time limit stops it."""
    site = sites.add("trickle", {"/": W.trickle, "/robots.txt": W.Reply(404)})
    started = time.monotonic()
    _, rows = run_job({1: site.url})
    assert time.monotonic() - started < 5
    assert "did not answer within 1.5 s" in rows[1].error


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for the name secure.test only (not for 127.0.0.1)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=secure.test",
         "-addext", "subjectAltName=DNS:secure.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(
    ("host", "trusted", "outcome"),
    [
        ("secure.test", True, "Fernhill turns messy CRM data"),
        ("127.0.0.1", True, "security certificate is not valid"),  # the certificate names secure.test
        ("secure.test", False, "security certificate is not valid"),  # not signed by anyone trusted
    ],
    ids=["verified", "wrong-name", "untrusted"],
)
def test_https_connects_to_the_checked_address_and_verifies_the_site_name(
    sites, certificate, monkeypatch, host, trusted, outcome
):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    site = sites.add("secure", {"/": W.html(W.HOMEPAGE), "/robots.txt": W.Reply(404)}, tls=context)
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings = WebSettings(fetch=FAST, allow_hosts=("secure.test", "127.0.0.1"))
    resolver = TableResolver({"secure.test": ["127.0.0.1"]})
    _, rows = run_job({1: f"https://{host}:{site.port}/"}, settings=settings, resolver=resolver)
    assert outcome in (rows[1].text if rows[1].status == "succeeded" else rows[1].error)


def test_homepage_text_leaves_out_menu_cookie_banner_and_footer(sites):
    _, rows = run_job({1: sites.home.url, 2: sites.soup.url})
    home, soup = rows[1].text, rows[2].text
    for wanted in ("Forecasts your board trusts", "Pipeline hygiene", "Trusted by revenue teams"):
        assert wanted in home
    for unwanted in (
        "cookies",
        "Accept all",
        "Pricing",
        "Careers",
        "Log in",
        "Privacy policy",
        "company no.",
    ):
        assert unwanted not in home, unwanted
    assert "Seit 1872 brauen wir in Bamberg Rauchbier" in soup
    for unwanted in ("Cookies", "Alle akzeptieren", "Unsere Biere", "Kontakt"):
        assert unwanted not in soup, unwanted


def test_the_about_page_is_read_only_when_asked(sites):
    _, without = run_job({1: sites.home.url})
    assert "founded in Leeds" not in without[1].text and "/about-us" not in sites.home.paths()
    settings = WebSettings(fetch=dataclasses.replace(FAST, about_page=True), allow_hosts=LOCAL)
    _, with_about = run_job({1: sites.home.url}, settings=settings)
    assert "Forecasts your board trusts" in with_about[1].text
    assert "founded in Leeds in 2019" in with_about[1].text


def test_text_is_capped_for_the_prompt(sites):
    settings = WebSettings(fetch=dataclasses.replace(FAST, max_chars=300), allow_hosts=LOCAL)
    _, rows = run_job({1: sites.huge.url, 2: sites.home.url}, settings=settings)
    assert all(len(r.text) <= 300 for r in rows.values())
    assert rows[1].text.endswith("…") and rows[2].text.startswith("Fernhill Analytics")


def test_without_the_allow_list_loopback_sites_are_refused_and_never_contacted(sites):
    settings = WebSettings(fetch=FAST)
    cells = {1: sites.home.url, 2: sites.redirect.url, 3: f"http://localhost:{sites.home.port}/"}
    _, rows = run_job(cells, settings=settings, resolver=TableResolver({"localhost": ["127.0.0.1"]}))
    assert all(r.status == "failed" and "Refused" in r.error for r in rows.values())
    assert sites.home.connections == sites.redirect.connections == 0


# --- politeness --------------------------------------------------------------------------------------


def test_one_connection_per_site_at_a_time_with_a_pause_between_requests(sites):
    """Six pages of each of two sites, eight workers: each site sees one request at a time, a pause
    between them, and the two sites are read side by side."""
    answer_s, delay = 0.05, 0.2
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def page(handler):
        name = handler.site.name
        with lock:
            active[name] = active.get(name, 0) + 1
            peak[name] = max(peak.get(name, 0), active[name])
        time.sleep(answer_s)
        with lock:
            active[name] -= 1
        return W.html(W.HOMEPAGE)

    busy = sites.add("busy", {f"/p{i}": page for i in range(6)} | {"/robots.txt": page})
    other = sites.add("other", {f"/p{i}": page for i in range(6)} | {"/robots.txt": page})
    settings = WebSettings(workers=8, fetch=dataclasses.replace(FAST, site_delay_s=delay), allow_hosts=LOCAL)
    cells = {i: f"{busy.url}p{i}" for i in range(6)} | {10 + i: f"{other.url}p{i}" for i in range(6)}
    job, rows = run_job(cells, settings=settings)
    assert all(r.status == "succeeded" for r in rows.values())
    assert peak == {"busy": 1, "other": 1}
    for site in (busy, other):
        gaps = [b - a for a, b in zip(site.arrivals, site.arrivals[1:], strict=False)]
        assert len(site.arrivals) == 7 and min(gaps) >= answer_s + delay - 0.01, gaps
        assert site.paths()[0] == "/robots.txt" and site.paths().count("/robots.txt") == 1
    assert busy.arrivals[0] < other.arrivals[-1] and other.arrivals[0] < busy.arrivals[-1]  # side by side
    assert job.snapshot().requests == 14


def test_the_same_address_in_many_rows_is_read_once(sites):
    cells = {i: sites.home.url for i in range(1, 21)} | {21: sites.home.url.upper().replace("HTTP", "http")}
    job, rows = run_job(cells)
    assert {r.status for r in rows.values()} == {"succeeded"}
    assert len({r.text for r in rows.values()}) == 1
    assert sites.home.paths().count("/") <= 2 and sites.home.paths().count("/robots.txt") == 1
    assert job.snapshot().sites <= 2


# --- each site read once, kept in the store -------------------------------------------------------------


def test_a_rerun_reads_nothing_again_and_failures_that_may_pass_are_retried(sites, data_dir):
    flaky = sites.add("flaky", {"/": W.Reply(503, b"busy"), "/robots.txt": W.Reply(404)})
    secret = f"http://sales:hunter2@127.0.0.1:{sites.soup.port}/"
    cells = {
        1: sites.home.url,
        2: sites.missing.url,
        3: sites.robots_deny.url,
        4: flaky.url,
        5: "nope",
        6: secret,
    }
    store = Store(data_dir)
    first, rows1 = run_job(cells, store=store)
    before = {name: len(site.requests) for name, site in sites.sites.items()}
    second, rows2 = run_job(cells, store=Store(data_dir))
    after = {name: len(site.requests) for name, site in sites.sites.items()}
    assert [(r.status, r.text, r.error) for r in rows1.values()] == [
        (r.status, r.text, r.error) for r in rows2.values()
    ]
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"flaky"}  # only the 503 (may pass) was asked again
    snap = second.snapshot()
    assert snap.cache_hits == 4 and rows2[1].from_cache and not rows2[4].from_cache
    # Credentials written into an address are neither sent nor kept.
    assert not any(b"hunter2" in p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    # Past the maximum age, a reading is old news: read again.
    settings = WebSettings(fetch=FAST, allow_hosts=LOCAL, max_age_s=0.0)
    run_job({1: sites.home.url}, settings=settings, store=Store(data_dir))
    assert len(sites.home.requests) > after["home"]


class StoreWithoutRoomForPages(Store):
    """A store whose website cache cannot be written (a full disk), everything else as usual."""

    def save_web_page(self, page) -> None:
        raise StoreError("Can't save results: the disk is full. Free space or fix the folder, then resume.")


def test_texts_not_kept_is_still_said_once_the_reading_has_finished(sites, data_dir):
    """The warning came while reading and was wiped by the finish (before), so nobody saw it."""
    job, rows = run_job({1: sites.home.url, 2: sites.home.url}, store=StoreWithoutRoomForPages(data_dir))
    snap = job.snapshot()
    assert (snap.status, snap.succeeded) == ("finished", 2) and rows[1].text  # the reading itself worked
    assert "not being kept for the next run" in snap.message and "the disk is full" in snap.message


def test_after_a_restart_the_columns_come_back_from_the_store_without_reading(sites, data_dir):
    from lib.web import stored_rows

    flaky = sites.add("flaky", {"/": W.Reply(503, b"busy"), "/robots.txt": W.Reply(404)})
    cells = {1: sites.home.url, 2: sites.missing.url, 3: flaky.url, 4: "", 5: "N/A", 6: sites.home.url}
    settings = WebSettings(fetch=FAST, allow_hosts=LOCAL)
    _, live = run_job(cells, settings=settings, store=Store(data_dir))
    before = sum(len(site.requests) for site in sites.sites.values())
    again = {r.row_id: r for r in stored_rows(cells, settings, Store(data_dir))}
    assert sum(len(site.requests) for site in sites.sites.values()) == before  # nothing was read
    for row_id in (1, 2, 4, 5, 6):
        assert (again[row_id].status, again[row_id].text, again[row_id].error) == (
            live[row_id].status, live[row_id].text, live[row_id].error,
        )  # fmt: skip
    assert again[3].status == "pending" and live[3].status == "failed"  # a 503 is not kept: read it again


# --- the job: pause, resume, cancel, snapshot -------------------------------------------------------------


def _slow_sites(sites: W.Sites, count: int, seconds: float) -> dict[int, str]:
    def page(handler):
        time.sleep(seconds)
        return W.html(W.HOMEPAGE)

    return {i: sites.add(f"s{i}", {"/": page, "/robots.txt": W.Reply(404)}).url for i in range(1, count + 1)}


def test_pause_resume_and_cancel(sites):
    cells = _slow_sites(sites, 6, 0.15)
    settings = WebSettings(workers=1, fetch=FAST, allow_hosts=LOCAL)
    job = WebJob(cells, settings=settings, on_connect=W.loopback_only).start()
    assert W.wait_for(lambda: job.snapshot().sites_done >= 1)
    job.pause()
    assert job.wait(5)
    assert job.fetcher.client.is_closed, "a paused job holds no connections"
    paused = job.snapshot()
    assert paused.status == "paused" and 1 <= paused.done < 6 and paused.pending == 6 - paused.done
    time.sleep(0.3)
    assert job.snapshot().done == paused.done  # nothing moves while paused
    job.resume()
    assert W.wait_for(lambda: job.snapshot().done > paused.done)
    job.cancel()
    assert job.wait(5)
    cancelled = job.snapshot()
    assert cancelled.status == "cancelled" and cancelled.pending > 0
    assert cancelled.succeeded + cancelled.pending == 6
    frame = website_columns(pd.DataFrame({"Website": list(cells.values())}, index=list(cells)), job.rows())
    not_read = frame[frame["website_error"] == NOT_READ]
    assert len(not_read) == cancelled.pending and (not_read["website_text"] == "").all()
    assert job.fetcher.client.is_closed
    job.resume()
    assert job.wait(10) and job.snapshot().status == "finished" and job.snapshot().succeeded == 6
    assert job.fetcher.client.is_closed


def test_cancel_drops_the_sites_on_the_wire_at_once(sites):
    """Three sites that answer after 40 s, a 60 s timeout: a cancel ends the job within a second, and the
    cut-off sites stay pending (not failed), so a resume reads them."""
    settings = WebSettings(workers=3, fetch=dataclasses.replace(FAST, timeout_s=60), allow_hosts=LOCAL)
    slow = [sites.slow] + [
        sites.add(f"slow{i}", {"/": W.slow(40.0), "/robots.txt": W.Reply(404)}) for i in (2, 3)
    ]
    cells = {i: site.url for i, site in enumerate(slow, start=1)}
    job = WebJob(cells, settings=settings, on_connect=W.loopback_only).start()
    assert W.wait_for(lambda: all("/" in site.paths() for site in slow))
    started = time.monotonic()
    job.cancel()
    assert job.wait(3) and time.monotonic() - started < 1.5
    snap = job.snapshot()
    assert (snap.status, snap.pending, snap.failed, snap.in_flight) == ("cancelled", 3, 0, 0)
    job.close()


def test_a_job_started_as_the_app_starts_it_closes_its_client_when_it_ends(sites):
    """The app starts web jobs through the registry and never calls close(): the job closes its client."""
    settings = WebSettings(workers=2, fetch=FAST, allow_hosts=LOCAL)
    job = start_web({1: sites.home.url}, settings=settings, on_connect=W.loopback_only)
    assert job.wait(30) and job.snapshot().status == "finished" and job.snapshot().succeeded == 1
    assert job.fetcher.client.is_closed
    assert job.fetcher.client._transport._pool.connections == [], "a keep-alive socket is still open"


def test_snapshot_is_an_immutable_copy(sites):
    job, _ = run_job({1: sites.home.url})
    snap = job.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.status = "running"  # type: ignore[misc]
    assert job.snapshot() == snap and snap.progress == 1.0


def test_website_columns_follow_row_ids_and_replace_an_earlier_reading():
    from lib.web import WebRow

    df = pd.DataFrame(
        {"Company": ["A", "B", "C"], "website_text": ["old", "old", "old"], "Website": ["a", "b", "c"]},
        index=pd.Index([7, 3, 9], name="row_id"),
    ).astype("string")
    rows = [WebRow(3, "b", "succeeded", "B text"), WebRow(7, "a", "failed", "", "The website answered 404.")]
    out = website_columns(df, rows)
    assert list(out.columns) == ["Company", "Website", "website_text", "website_error"]
    assert out.loc[3, "website_text"] == "B text" and out.loc[3, "website_error"] == ""
    assert (
        out.loc[7, "website_error"] == "The website answered 404." and out.loc[9, "website_error"] == NOT_READ
    )
    assert str(out["website_text"].dtype) == "string"


# --- extraction and decoding, on bytes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "header", "expected", "encoding"),
    [
        (W.CP1252_PAGE, None, W.CP1252_TEXT, "cp1252"),  # declared only in <meta http-equiv>
        ('<meta charset="iso-8859-1"><p>“quoted”</p>'.encode("cp1252"), None, "“quoted”", "cp1252"),  # WHATWG
        ("<p>Zoë Müller</p>".encode(), None, "Zoë Müller", "utf-8"),  # undeclared UTF-8
        ("<p>Zoë Müller</p>".encode("cp1252"), None, "Zoë Müller", "cp1252"),  # undeclared, not UTF-8
        ("<meta charset=utf-8><p>Zoë</p>".encode("cp1252"), "windows-1252", "Zoë", "cp1252"),  # header wins
        (b"\xef\xbb\xbf<p>\xc3\xa9t\xc3\xa9</p>", "latin-1", "été", "utf-8-sig"),  # a BOM beats everything
        ("<p>日本語のページ</p>".encode("shift_jis"), "shift_jis", "日本語のページ", "shift_jis"),
    ],
    ids=["meta-only", "latin1-label", "utf8", "cp1252", "header-wins", "bom", "shift-jis"],
)
def test_charset_from_header_meta_or_detection(body, header, expected, encoding):
    text, used = decode(body, header)
    assert expected in text and used == encoding


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ('<a href="/about-us">About us</a><a href="/company">Company</a>', "/about-us"),
        ('<a href="/unternehmen">Unternehmen</a><a href="/ueber-uns">Über uns</a>', "/ueber-uns"),
        ('<a href="/x">ABOUT</a>', "/x"),
        ('<a href="/wer">Wir über uns</a>', "/wer"),
        ('<a href="/en/company/">Who we are</a>', "/en/company/"),
        ('<a href="/about">Read more</a>', "/about"),  # the path says it
        ('<a href="https://other.example/about">About us</a>', None),  # another site
        ('<a href="mailto:hi@acme.test">About us</a>', None),
        ('<a href="/pricing">Pricing</a>', None),
    ],
)
def test_about_link_by_its_text_or_path(links, expected):
    import lxml.html

    tree = lxml.html.document_fromstring(f"<html><body>{links}</body></html>")
    found = about_link(tree, "https://www.acme.test/")
    assert found == (None if expected is None else "https://www.acme.test" + expected)


@pytest.mark.parametrize(
    ("html", "needs_js", "text"),
    [
        (W.SPA, True, ""),
        ('<html><body><div id="app"></div><script>render()</script></body></html>', True, ""),
        ("<html><body></body></html>", False, ""),
        ("", False, ""),
        ("<html><head><title>Acme Anvils Ltd</title></head><body><p>Acme makes anvils.</p></body></html>",
         False, "Acme Anvils Ltd\nAcme makes anvils."),
        ("<html><head><title>Acme</title></head><body><p>Acme makes anvils.</p></body></html>", False,
         "Acme makes anvils."),  # a title the text already holds is not repeated
        ('<?xml version="1.0" encoding="utf-8"?><html><body><p>XHTML page</p></body></html>', False, "XHTML page"),
    ],
    ids=["spa", "app-root", "empty-body", "empty", "tiny", "title-in-text", "xml-declaration"],
)  # fmt: skip
def test_pages_without_text_and_pages_that_need_javascript(html, needs_js, text):
    found = extract(html.encode(), "https://acme.test/")
    assert found.needs_javascript is needs_js and found.text == text


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("alpha beta gamma delta epsilon", 25, "alpha beta gamma delta…"),
        ("x" * 20, 10, "x" * 9 + "…"),  # no space near the end: cut inside the word
    ],
)
def test_cap_cuts_at_a_word(text, limit, expected):
    assert cap(text, limit) == expected and len(cap(text, limit)) <= limit
