"""Website reading on a machine that reaches no website (offline, or only through a proxy), and Cancel.

Names are resolved by a resolver the test holds (no DNS query ever leaves the machine) or are addresses on
loopback where nothing listens. The reading pauses once the first sites of a phase all fail to connect,
says why in words, and goes on when asked; a cancelled reading is over.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpcore2
import httpx2
import pytest

from lib.web import UNREACHABLE, FetchSettings, WebJob, WebSettings
from lib.web.fetch import FetchError, unreachable
from tests import web_sites as W

FAST = FetchSettings(timeout_s=1.5, connect_timeout_s=1.0, site_delay_s=0.0)


class SwitchedResolver:
    """Every name is unknown while `offline`; after, each resolves to loopback (the network came back)."""

    def __init__(self) -> None:
        self.offline = True
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if self.offline:
            raise httpcore2.ConnectError(
                f"name does not resolve: [Errno -2] Name or service not known: {host}"
            )
        return ["127.0.0.1"]


@pytest.fixture
def sites() -> Iterator[W.Sites]:
    s = W.Sites()
    yield s
    s.stop()


@pytest.fixture
def closed_ports() -> Iterator[list[int]]:
    """Ports on 127.0.0.1 bound but not listening: a connection there is refused at once, and no other
    process can take them while the test runs."""
    held = []
    for _ in range(30):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
    yield [s.getsockname()[1] for s in held]
    for sock in held:
        sock.close()


def invalid_hosts(count: int, port: int) -> dict[int, str]:
    return {i: f"http://acme-{i}.invalid:{port}/" for i in range(1, count + 1)}


def test_unresolvable_names_pause_the_reading_after_twenty_and_it_resumes_when_asked(sites):
    resolver = SwitchedResolver()
    cells = invalid_hosts(50, sites.home.port)
    names = tuple(f"acme-{i}.invalid" for i in cells)  # allowed by name: they resolve to loopback later
    settings = WebSettings(workers=1, fetch=FAST, allow_hosts=names)
    job = WebJob(cells, settings=settings, resolver=resolver, on_connect=W.loopback_only).start()
    assert job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.message, snap.failed, snap.pending) == ("paused", UNREACHABLE, 20, 30)
    assert job.resumable and job.fetcher.client.is_closed
    assert len(set(resolver.asked)) == 20, "no site past the twentieth was tried"

    job.resume()  # still offline: the next twenty fail and it pauses again, rather than failing every row
    assert job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.message, snap.failed, snap.pending) == ("paused", UNREACHABLE, 40, 10)

    resolver.offline = False  # the proxy is set, the network is back
    job.resume()
    assert job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == ("finished", 10, 40, 0)
    failed = [r for r in job.rows() if r.status == "failed"]
    assert all("does not resolve" in (r.error or "") for r in failed)


@pytest.mark.parametrize(
    ("first", "count", "unreachable_after", "status"),
    [
        ("refused", 25, 20, "paused"),  # nothing accepts a connection: the same as no DNS
        ("404", 25, 20, "finished"),  # the first site answered (a 404): the network works, read them all
        ("refused", 25, 0, "finished"),  # switched off
        ("refused", 15, 20, "finished"),  # fewer sites than the limit: every one is tried
    ],
)
def test_only_a_run_of_sites_that_cannot_be_connected_to_pauses(
    sites, closed_ports, first, count, unreachable_after, status
):
    cells = {i: f"http://127.0.0.1:{closed_ports[i]}/" for i in range(1, count + 1)}
    if first == "404":
        cells[1] = sites.missing.url
    settings = WebSettings(
        workers=1, fetch=FAST, allow_hosts=("127.0.0.1",), unreachable_after=unreachable_after
    )
    job = WebJob(cells, settings=settings, on_connect=W.loopback_only).start()
    assert job.wait(20)
    snap = job.snapshot()
    assert snap.status == status
    if status == "paused":
        assert (snap.message, snap.failed, snap.pending) == (UNREACHABLE, 20, count - 20)
    else:
        assert snap.pending == 0 and snap.failed == count
    refused = [r for r in job.rows() if r.status == "failed" and "refused the connection" in (r.error or "")]
    assert len(refused) == snap.failed - (first == "404")


def test_many_workers_pause_too_and_in_flight_sites_are_recorded(closed_ports):
    cells = {i: f"http://127.0.0.1:{closed_ports[i % 30]}/p{i}" for i in range(1, 61)}
    job = WebJob(cells, settings=WebSettings(workers=8, fetch=FAST, allow_hosts=("127.0.0.1",)))
    job.start()
    assert job.wait(20)
    snap = job.snapshot()
    assert snap.status == "paused" and snap.message == UNREACHABLE
    assert snap.failed >= 20 and snap.pending == 60 - snap.failed and snap.in_flight == 0


def test_cancel_ends_the_reading_for_good(sites):
    cells = {i: sites.add(f"slow{i}", {"/": W.slow(40.0), "/robots.txt": W.Reply(404)}).url for i in (1, 2)}
    settings = WebSettings(workers=2, fetch=FAST, allow_hosts=("127.0.0.1",))
    job = WebJob(cells, settings=settings, on_connect=W.loopback_only).start()
    assert W.wait_for(lambda: job.snapshot().in_flight == 2)
    job.cancel()
    assert job.wait(3)
    job.resume()  # what a Resume would do: nothing, a cancel is not a pause
    assert job.wait(1)
    snap = job.snapshot()
    assert snap.status == "cancelled" and "Read websites again" in (snap.message or "")
    assert not job.resumable and not job.active and snap.pending == 2


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx2.ConnectError("name does not resolve: acme.invalid"), True),
        (httpx2.ConnectError("[Errno 111] Connection refused"), True),
        (httpx2.ConnectError("[Errno 101] Network is unreachable"), True),
        (httpx2.ConnectTimeout("timed out"), True),
        (httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), False),
        (httpx2.ReadTimeout("timed out"), False),
        (httpx2.RemoteProtocolError("Server disconnected"), False),
    ],
)
def test_which_errors_mean_no_connection_at_all(error, expected):
    wrapped = FetchError("words", retryable=True)
    wrapped.__cause__ = error
    assert unreachable(wrapped) is expected
    assert unreachable(FetchError("The website answered 404 (page not found).", status=404)) is False
