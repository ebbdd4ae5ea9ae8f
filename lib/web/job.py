"""Read the website of every row in background threads: a job the page and the command line both drive.

A job of the job core (lib.jobs): its statuses, phases, pause/resume/cancel and tally are the core's; this
module is its work (reading sites) and its snapshot. Workers never touch any UI, and a site that cannot be
read is a row result with an error, never an exception that ends the run. Rows naming the same site share
one reading (however written: `http://Acme.com/` and `https://www.acme.com` are one site), and a site being
read by another worker or job at that moment is waited for, never fetched twice. A site read before (and not older
than the settings' max age) comes from the store, so running the same list again reads nothing;
failures that may pass (timeouts, server errors) are not kept, so the next run tries them again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from lib.jobs import Job, Status, Tally
from lib.store import Store, StoreError, WebPage
from lib.web.fetch import Fetcher, FetchSettings, SiteText
from lib.web.safety import AddressPolicy, BadAddress, Cancelled, candidate_urls

STATUSES = tuple(s for s in Status if s is not Status.FAILED)  # a reading never fails as a whole
RATE_WINDOW_S = 10.0
TAKE_SCAN = 64  # how far down the queue a worker looks for a site nobody is reading
CACHE_VERSION = "1"  # bump when extraction changes what a page's text is


@dataclass(frozen=True)
class WebSettings:
    workers: int = 8
    fetch: FetchSettings = FetchSettings()
    allow_hosts: tuple[str, ...] = ()  # intranet hosts that may be read although their address is private
    max_age_s: float = 7 * 24 * 3600.0  # a stored reading older than this is read again
    use_cache: bool = True


@dataclass(frozen=True)
class WebRow:
    row_id: int
    url: str  # the cell as written
    status: str = "pending"  # pending | succeeded | failed | skipped (no address)
    text: str = ""
    error: str | None = None
    final_url: str | None = None
    from_cache: bool = False


@dataclass(frozen=True)
class WebError:
    row_id: int
    url: str
    message: str


@dataclass(frozen=True)
class WebSnapshot:
    """What a page or the command line draws: an immutable copy of a job's counters."""

    job_id: str
    status: str
    message: str | None
    total: int
    succeeded: int
    failed: int
    skipped: int
    pending: int
    sites: int  # distinct addresses to read
    sites_done: int
    in_flight: int
    cache_hits: int  # sites taken from the store
    requests: int  # sent over the network, robots.txt included
    bytes_read: int
    elapsed_s: float
    sites_per_s: float
    eta_s: float | None
    recent_errors: tuple[WebError, ...]
    version: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def cache_key(url: str, settings: FetchSettings) -> str:
    """The store's key of a reading: the first address tried and what changes the text."""
    return f"v{CACHE_VERSION}|about={int(settings.about_page)}|chars={settings.max_chars}|{url}"


def site_identity(url: str) -> str:
    """One site however its address is written: host without `www.` and case, path without its trailing
    slash, query kept; scheme dropped (`http://Acme.com/` and `https://www.acme.com` are one site)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/") or ""
    return f"{host}{port}{path}" + (f"?{parts.query}" if parts.query else "")


class _Flights:
    """Readings in progress in this process, by site: a second reader of a site being read (another row of
    it, another job) waits for that reading instead of fetching the site again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future] = {}

    def claim(self, key: str) -> tuple[bool, Future]:
        """(True, a future to fill) for the one reader of `key`, else (False, the reading to wait for)."""
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return False, running
            future: Future = Future()
            self._running[key] = future
            return True, future

    def done(self, key: str, future: Future) -> None:
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]


FLIGHTS = _Flights()


def job_id_for(cells: Mapping[int, str], settings: WebSettings) -> str:
    digest = hashlib.sha256(repr((sorted(cells.items()), settings)).encode()).hexdigest()
    return "web-" + digest[:24]


@dataclass
class _Site:
    key: str  # the store's cache key
    cell: str
    url: str  # the first address tried, without any credentials the cell carried
    origin: str  # host and port: sites of one origin are read one at a time anyway
    row_ids: list[int] = field(default_factory=list)
    flight: str = ""  # the site however written, with the reading options (one reading at a time of it)


class WebJob(Job):
    """Reads the website of each row. Thread-safe; `snapshot()` is what a UI polls."""

    kind = "web"

    def __init__(
        self,
        cells: Mapping[int, str],
        *,
        settings: WebSettings = WebSettings(),
        store: Store | None = None,
        resolver=None,
        on_connect: Callable[[str, int], None] | None = None,
        job_id: str | None = None,
    ):
        super().__init__(job_id or job_id_for(cells, settings))
        self.settings = settings
        self.store = store
        policy = AddressPolicy.allowing(settings.allow_hosts, resolver)
        self.fetcher = Fetcher(
            settings.fetch, policy, max_connections=max(2 * settings.workers, 8), on_connect=on_connect
        )
        self._rows: dict[int, WebRow] = {}
        self._queue: deque[_Site] = deque()
        self._sites: dict[str, _Site] = {}
        self._busy: dict[str, int] = {}  # origin -> workers reading it now
        self._in_flight = 0
        self._cache_hits = 0
        self._sites_done = 0
        self._completions: deque[float] = deque(maxlen=4096)
        self._errors: deque[WebError] = deque(maxlen=20)
        self.tally = Tally()
        self._warning: str | None = None  # said until the job ends, and after (texts not kept...)
        self._plan(cells)

    def _plan(self, cells: Mapping[int, str]) -> None:
        for row_id, raw in cells.items():
            cell = "" if raw is None else str(raw)
            row = WebRow(row_id, cell)
            if not cell.strip():
                self._rows[row_id] = replace(row, status="skipped", error="No website address in this row.")
                self.tally.count_status("skipped", 1)
                continue
            try:
                first = candidate_urls(cell)[0]
            except BadAddress as exc:
                self._rows[row_id] = replace(row, status="failed", error=str(exc))
                self.tally.count_status("failed", 1)
                continue
            self._rows[row_id] = row
            self.tally.count_status("pending", 1)
            identity = cache_key(site_identity(first), self.settings.fetch)
            site = self._sites.get(identity)  # rows naming one site (however written) share one reading
            if site is None:
                key = cache_key(first, self.settings.fetch)
                site = self._sites[identity] = _Site(
                    key, cell, first, urlsplit(first).netloc, flight=identity
                )
                self._queue.append(site)
            site.row_ids.append(row_id)

    # --- the job core's hooks -----------------------------------------------------------------------

    def start(self) -> WebJob:
        """Begin reading; returns at once."""
        self._launch()
        return self

    def _has_work(self) -> bool:
        return bool(self._queue)

    def _worker_count(self) -> int:
        return min(self.settings.workers, len(self._queue))

    def _settle(self) -> tuple[Status, str | None]:
        return (Status.PAUSED if self._queue else Status.FINISHED), self._warning

    def _before_relaunch(self) -> bool:
        self.fetcher.stop.clear()
        return True

    def _phase_starting(self) -> None:
        self.fetcher.reopen()  # closed when the last phase ended

    def _settled(self) -> None:
        # Every worker has stopped: no request is on the wire. Closed here, not by the caller, because the
        # app never knows when a job it started ends (a resume opens a fresh client).
        self.fetcher.close()

    def _cancel_message(self) -> str:
        return "Cancelled: rows not read yet have no website text."

    def cancel(self) -> None:
        """Stop now: sites being read are dropped (nothing is paid for here), sites not read stay pending."""
        super().cancel()
        with self._lock:
            if self.status is Status.CANCELLED:
                self.fetcher.stop.set()  # sites on the wire are dropped within a quarter second

    def close(self) -> None:
        """Close the HTTP client now (it is also closed whenever the workers stop)."""
        self.fetcher.close()

    # --- reading ----------------------------------------------------------------------------------

    def rows(self) -> list[WebRow]:
        with self._lock:
            return [r for _, r in sorted(self._rows.items())]

    def snapshot(self) -> WebSnapshot:
        with self._lock:
            t = self.tally
            now = time.monotonic()
            elapsed = self.elapsed(now)
            recent = [c for c in self._completions if now - c <= RATE_WINDOW_S]
            window = min(RATE_WINDOW_S, elapsed)
            rate = len(recent) / window if window > 0.5 else 0.0
            left = len(self._sites) - self._sites_done
            return WebSnapshot(
                job_id=self.id,
                status=self.status,
                message=_with_warning(self.message, self._warning),
                total=len(self._rows),
                succeeded=t.succeeded,
                failed=t.failed,
                skipped=t.skipped,
                pending=t.pending,
                sites=len(self._sites),
                sites_done=self._sites_done,
                in_flight=self._in_flight,
                cache_hits=self._cache_hits,
                requests=self.fetcher.requests,
                bytes_read=self.fetcher.bytes_read,
                elapsed_s=elapsed,
                sites_per_s=rate,
                eta_s=left / rate if rate > 0 and self.status is Status.RUNNING else None,
                recent_errors=tuple(self._errors),
                version=self._version,
            )

    # --- the worker -------------------------------------------------------------------------------

    def _take(self) -> _Site | None:
        """The next site, preferring one whose host no other worker is talking to (that one would wait)."""
        with self._lock:
            if self._halt.is_set() or not self._queue:
                return None
            chosen = 0
            for i in range(min(len(self._queue), TAKE_SCAN)):
                if self._busy.get(self._queue[i].origin, 0) == 0:
                    chosen = i
                    break
            site = self._queue[chosen]
            del self._queue[chosen]
            self._busy[site.origin] = self._busy.get(site.origin, 0) + 1
            self._in_flight += 1
            return site

    def _work(self) -> None:
        while True:
            site = self._take()
            if site is None:
                return
            try:
                result, cached = self._read(site)
            except Cancelled:
                self._give_back(site)
                return
            except Exception as exc:  # a bug must cost one site, not the run
                result, cached = SiteText("", f"Internal error while reading the site: {exc!r}"), False
            self._finish(site, result, cached)

    def _give_back(self, site: _Site) -> None:
        """A site cut off by a cancel: it goes back to the queue, unread, as if never taken."""
        with self._lock:
            self._in_flight -= 1
            self._busy[site.origin] -= 1
            self._queue.appendleft(site)

    def _read(self, site: _Site) -> tuple[SiteText, bool]:
        """The site's text: kept in the store, being read by another worker or job now (waited for), or read."""
        while True:
            stored = self._stored(site)
            if stored is not None:
                return stored, True
            mine, reading = FLIGHTS.claim(site.flight)
            if mine:
                break
            while not self.fetcher.stop.is_set():  # someone reads this very site now: wait for that reading
                try:
                    return reading.result(timeout=0.25), True
                except FutureTimeout:
                    continue
                except Cancelled:
                    break  # that reader was cancelled; this one reads it (or finds it stored)
            else:
                raise Cancelled()
        try:
            result = self._fetch(site)
        except BaseException as exc:
            reading.set_exception(exc)
            raise
        else:
            reading.set_result(result)
        finally:
            FLIGHTS.done(site.flight, reading)
        return result, False

    def _stored(self, site: _Site) -> SiteText | None:
        if self.store is None or not self.settings.use_cache:
            return None
        try:
            stored = self.store.web_page(site.key, self.settings.max_age_s)
        except StoreError:
            return None
        return SiteText(stored.text, stored.error, stored.final_url) if stored is not None else None

    def _fetch(self, site: _Site) -> SiteText:
        result = self.fetcher.read_site(site.cell)
        if self.store is not None and not result.retryable:
            try:
                self.store.save_web_page(
                    WebPage(site.key, site.url, result.final_url, result.text, result.error, time.time())
                )
            except StoreError as exc:
                with self._lock:
                    self._warning = f"Website texts are not being kept for the next run: {exc}"
                    self._version += 1
        return result

    def _finish(self, site: _Site, result: SiteText, cached: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            self._busy[site.origin] -= 1
            self._sites_done += 1
            self._cache_hits += int(cached)
            self._completions.append(time.monotonic())
            status = "failed" if result.error else "succeeded"
            for row_id in site.row_ids:
                self.tally.count_status(self._rows[row_id].status, -1)
                self.tally.count_status(status, 1)
                self._rows[row_id] = replace(
                    self._rows[row_id],
                    status="failed" if result.error else "succeeded",
                    text=result.text,
                    error=result.error,
                    final_url=result.final_url,
                    from_cache=cached,
                )
                if result.error:
                    self._errors.append(WebError(row_id, site.url, result.error))
            self._version += 1


def _with_warning(message: str | None, warning: str | None) -> str | None:
    if not warning or (message and warning in message):
        return message
    return f"{message} {warning}" if message else warning


def stored_rows(cells: Mapping[int, str], settings: WebSettings, store: Store) -> list[WebRow]:
    """The rows a job over `cells` would give, from the store alone: no network, nothing started.

    For a page drawn after a restart, when the job that read the sites is gone. A site with no kept
    reading (never read, too old, or a failure that may pass) is a pending row.
    """
    planned = WebJob(cells, settings=replace(settings, workers=1), job_id="stored")
    try:
        rows = {r.row_id: r for r in planned.rows()}
        for site in planned._sites.values():
            try:
                page = store.web_page(site.key, settings.max_age_s)
            except StoreError:
                page = None
            if page is None:
                continue
            for row_id in site.row_ids:
                rows[row_id] = replace(
                    rows[row_id],
                    status="failed" if page.error else "succeeded",
                    text=page.text,
                    error=page.error,
                    final_url=page.final_url,
                    from_cache=True,
                )
        return [rows[k] for k in sorted(rows)]
    finally:
        planned.close()


def start(
    cells: Mapping[int, str],
    *,
    settings: WebSettings = WebSettings(),
    store: Store | None = None,
    resolver=None,
    on_connect: Callable[[str, int], None] | None = None,
) -> WebJob:
    """Start reading (or return the same list's job that is still active) at once.

    Jobs are kept in the engine's registry, so a refreshed page re-attaches by id.
    """
    from lib.jobs import register

    job_id = job_id_for(cells, settings)
    job, created = register(
        job_id,
        lambda: WebJob(
            cells, settings=settings, store=store, resolver=resolver, on_connect=on_connect, job_id=job_id
        ),
    )
    return job.start() if created else job  # type: ignore[return-value]
