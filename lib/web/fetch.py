"""Read one website politely and safely: robots.txt, redirects checked hop by hop, bounded in time and size.

A Fetcher is shared by a run's workers. It keeps one turn per site (scheme, host and port), so a site
sees one connection at a time with a small pause between requests, and it reads each site's robots.txt
once (protego: RFC 9309's longest-match rules and wildcards, which the standard library's parser does
not follow). Redirects are followed here, not by the client, so every hop passes the URL checks, the
site's robots.txt and, when its socket is opened, the address check (lib.web.safety). Bodies are read
up to a size cap and no further; answers that are not HTML are refused once their headers arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore2
import httpx2
from protego import Protego

from lib.web import extract as extraction
from lib.web.safety import (
    AddressPolicy,
    AddressRefused,
    BadAddress,
    Cancelled,
    GuardedBackend,
    candidate_urls,
    clean_url,
)
from lib.web.safety import deadline as total_deadline

USER_AGENT = "LeadEnrichmentStudio/1.0 (website research for a sales team)"
ROBOTS_AGENT = "LeadEnrichmentStudio"
ROBOTS_MAX_BYTES = 500_000  # RFC 9309: parse at least 500 KiB
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")
_KINDS = {
    "application/pdf": "a PDF document",
    "image/": "an image",
    "video/": "a video",
    "audio/": "an audio file",
    "application/zip": "a ZIP archive",
    "application/json": "JSON data",
    "application/octet-stream": "a file download",
    "text/plain": "plain text",
    "application/xml": "XML data",
    "text/xml": "XML data",
}
_STATUS_WORDS = {
    400: "bad request",
    401: "login required",
    403: "access forbidden",
    404: "page not found",
    410: "page gone",
    429: "too many requests",
    451: "unavailable for legal reasons",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


@dataclass(frozen=True)
class FetchSettings:
    timeout_s: float = 15.0  # total per request: connect, TLS, headers and body
    connect_timeout_s: float = 5.0
    max_bytes: int = 2_000_000  # of a page's (decoded) body; reading stops there
    max_redirects: int = 5
    site_delay_s: float = 0.5  # between two requests to one site (robots.txt Crawl-delay may ask for more)
    max_crawl_delay_s: float = 5.0  # a Crawl-delay above this is capped, not obeyed to the letter
    about_page: bool = False  # also read the page linked as "About us", "Über uns"...
    max_chars: int = extraction.DEFAULT_MAX_CHARS
    user_agent: str = USER_AGENT


class FetchError(Exception):
    """Why a site could not be read, in words a sales-ops person understands."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable  # the next run may succeed (timeouts, 5xx): such results are not cached
        self.status = status  # the HTTP status that caused it, when there was one

    def again(self) -> FetchError:
        """The same error as a new exception, for another row of the site (one instance per raise)."""
        copy = FetchError(str(self), retryable=self.retryable, status=self.status)
        copy.__cause__ = self.__cause__
        return copy


@dataclass(frozen=True)
class Page:
    url: str  # after redirects
    status: int
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool  # the body was longer than max_bytes: only its start was read


@dataclass(frozen=True)
class SiteText:
    """What reading a site gave: its text, or why there is none."""

    text: str
    error: str | None = None
    final_url: str | None = None
    retryable: bool = False
    truncated: bool = False
    pages: int = 0  # page requests sent (robots.txt not counted)


class _GuardedTransport(httpx2.HTTPTransport):
    """httpx2's transport over a connection pool whose sockets come from GuardedBackend.

    httpx2 does not expose httpcore's `network_backend`, so the pool is rebuilt with it (httpx2 2.16
    keeps its pool in `_pool`; `tests/test_web.py` fails if a connection ever bypasses the guard).
    """

    def __init__(self, backend: GuardedBackend, max_connections: int):
        super().__init__(trust_env=False, retries=0)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=True),  # SSL_CERT_FILE: a company CA
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


@dataclass
class _Site:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: float = 0.0  # monotonic time the last request to this site ended
    robots: Protego | None = None
    robots_error: FetchError | None = None
    robots_read: bool = False


class Fetcher:
    """Reads sites for one run. Thread-safe: many workers share it."""

    def __init__(
        self,
        settings: FetchSettings = FetchSettings(),
        policy: AddressPolicy = AddressPolicy(),
        *,
        max_connections: int = 64,
        on_connect: Callable[[str, int], None] | None = None,
    ):
        self.settings = settings
        self.backend = GuardedBackend(policy, on_connect=on_connect)
        self._max_connections = max_connections
        self.client = self._new_client()
        self.stop = threading.Event()  # set: requests on the wire end within a quarter second (Cancelled)
        self._sites: dict[str, _Site] = {}
        self._sites_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self.requests = 0  # every request sent, robots.txt included
        self.bytes_read = 0

    def _new_client(self) -> httpx2.Client:
        settings = self.settings
        return httpx2.Client(
            transport=_GuardedTransport(self.backend, self._max_connections),
            follow_redirects=False,
            trust_env=False,  # a proxy would resolve names itself, out of reach of the address check
            timeout=httpx2.Timeout(
                settings.timeout_s, connect=min(settings.connect_timeout_s, settings.timeout_s)
            ),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                "Accept-Language": "en;q=1.0, de;q=0.9, fr;q=0.8, *;q=0.5",
            },
        )

    def close(self) -> None:
        """Close the connections (idempotent). Only when no request is on the wire."""
        self.client.close()

    def reopen(self) -> None:
        """A fresh client after close(), for a job resumed after a pause; robots rules read stay known."""
        if self.client.is_closed:
            self.client = self._new_client()

    # --- one site ------------------------------------------------------------------------------------

    def read_site(self, cell: str) -> SiteText:
        """The text of the website a lead row names (its homepage, and its About page when asked).

        Raises Cancelled (and nothing else) when `stop` is set meanwhile: the site is then not read at all.
        """
        try:
            candidates = candidate_urls(cell)
        except BadAddress as exc:
            return SiteText("", str(exc))
        pages = 0
        for i, url in enumerate(candidates):
            try:
                page = self.get_page(url)
                pages += 1
                return self._site_text(page, pages)
            except FetchError as exc:
                last_try = i == len(candidates) - 1
                # No scheme given: https first, and http when https cannot even connect.
                if last_try or not exc.retryable or not isinstance(exc.__cause__, httpx2.TransportError):
                    return SiteText("", str(exc), retryable=exc.retryable, pages=pages)
            except BadAddress as exc:
                return SiteText("", str(exc))
        raise AssertionError("unreachable")

    def _site_text(self, page: Page, pages: int) -> SiteText:
        found = extraction.extract(
            page.body, page.url, header_charset=page.charset, max_chars=self.settings.max_chars
        )
        hops = 0
        while found.refresh_url and len(found.text) < 200 and hops < self.settings.max_redirects:
            # A homepage that only says "go to /en/" in a <meta refresh>: follow it like a redirect.
            hops += 1
            page = self.get_page(found.refresh_url)
            pages += 1
            found = extraction.extract(
                page.body, page.url, header_charset=page.charset, max_chars=self.settings.max_chars
            )
        if found.needs_javascript:
            return SiteText(
                "",
                "The page shows its content only with JavaScript, which is not run here.",
                page.url,
                pages=pages,
            )
        text = found.text
        if self.settings.about_page and found.about_url and found.about_url != page.url:
            try:
                about = self.get_page(found.about_url)
                pages += 1
                more = extraction.extract(
                    about.body, about.url, header_charset=about.charset, max_chars=self.settings.max_chars
                )
                if more.text and more.text not in text:
                    text = extraction.cap(
                        f"{text}\n\nAbout page ({about.url}):\n{more.text}".strip(), self.settings.max_chars
                    )
            except (FetchError, BadAddress):
                pass  # the homepage's text stands on its own
        if not text:
            return SiteText("", "The page has no readable text.", page.url, pages=pages)
        return SiteText(text, None, page.url, truncated=page.truncated, pages=pages)

    # --- one page, redirects followed hop by hop -------------------------------------------------------

    def get_page(self, url: str) -> Page:
        """An HTML page (FetchError otherwise), after at most max_redirects checked redirects."""
        for _ in range(self.settings.max_redirects + 1):
            url = clean_url(url)
            self._check_robots(url)
            with self._turn(url):
                location, page = self._request(url, html=True)
            if location is None:
                assert page is not None
                return page
            url = urljoin(url, location)
        raise FetchError(f"The website redirected more than {self.settings.max_redirects} times.")

    def _request(
        self, url: str, *, html: bool, max_bytes: int | None = None
    ) -> tuple[str | None, Page | None]:
        """(redirect target, None) or (None, the page). The caller holds the site's turn."""
        limit = max_bytes or self.settings.max_bytes
        with self._counts_lock:
            self.requests += 1
        try:
            with (
                total_deadline(self.settings.timeout_s, self.stop),
                self.client.stream("GET", url) as response,
            ):
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    return response.headers["location"], None
                content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if response.status_code >= 400 or response.status_code < 200:
                    raise _status_error(response.status_code)
                if html and content_type and not content_type.startswith(HTML_TYPES):
                    raise FetchError(f"The address is {_kind(content_type)}, not a web page.")
                body, truncated = self._read_body(response, limit)
                if html and not content_type and _sniff_not_html(body):
                    raise FetchError(f"The address is {_sniff_not_html(body)}, not a web page.")
                return None, Page(
                    str(response.url),
                    response.status_code,
                    content_type,
                    response.charset_encoding,
                    body,
                    truncated,
                )
        except AddressRefused as exc:
            raise FetchError(f"Refused: {exc}") from exc
        except httpx2.TimeoutException as exc:
            what = "accept a connection" if isinstance(exc, httpx2.ConnectTimeout) else "answer"
            raise FetchError(
                f"The website did not {what} within {self.settings.timeout_s:g} s.", retryable=True
            ) from exc
        except httpx2.TransportError as exc:
            raise FetchError(_transport_words(exc), retryable=True) from exc
        except httpx2.InvalidURL as exc:
            raise BadAddress(f"'{url}' is not a website address ({exc}).") from exc
        except httpx2.DecodingError as exc:
            raise FetchError("The website's answer could not be decoded (a broken compressed page).") from exc
        except httpx2.HTTPError as exc:
            raise FetchError(f"Could not read the website: {exc or type(exc).__name__}.") from exc

    def _read_body(self, response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
        """At most `limit` bytes of the decoded body; past that the connection is dropped, not drained."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break  # leaving the stream with the body unread closes the connection
        with self._counts_lock:
            self.bytes_read += size
        return b"".join(chunks)[:limit], size >= limit

    # --- politeness --------------------------------------------------------------------------------------

    def _site(self, url: str) -> _Site:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc.lower()}"
        with self._sites_lock:
            return self._sites.setdefault(key, _Site())

    @contextmanager
    def _turn(self, url: str, unless: Callable[[], bool] | None = None) -> Iterator[bool]:
        """This site's one connection: wait for the previous request to end plus the site's delay.

        Yields False at once, without waiting or counting as a request, when `unless()` is true by the
        time the site is free (another worker did the work meanwhile).
        """
        site = self._site(url)
        with site.lock:
            if unless is not None and unless():
                yield False
                return
            delay = self.settings.site_delay_s
            if site.robots is not None:
                asked = site.robots.crawl_delay(ROBOTS_AGENT)
                if asked:
                    delay = max(delay, min(float(asked), self.settings.max_crawl_delay_s))
            wait = site.last + delay - time.monotonic()
            if site.last and wait > 0 and self.stop.wait(wait):
                raise Cancelled("the run was cancelled")
            try:
                yield True
            finally:
                site.last = time.monotonic()

    def _check_robots(self, url: str) -> None:
        """FetchError when the site's robots.txt does not let this fetcher read `url`."""
        site = self._site(url)
        if not site.robots_read:
            self._read_robots(url, site)
        if site.robots_error is not None:
            raise site.robots_error.again()
        if site.robots is not None and not site.robots.can_fetch(url, ROBOTS_AGENT):
            raise FetchError("The site's robots.txt does not allow reading this page.")

    def _read_robots(self, url: str, site: _Site) -> None:
        """Read the site's robots.txt once per run (RFC 9309: 4xx = no rules; 5xx or no answer = stay out)."""
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        with self._turn(robots_url, unless=lambda: site.robots_read) as mine:
            if not mine:  # another worker read it while this one waited for the turn
                return
            try:
                for _ in range(self.settings.max_redirects + 1):
                    location, page = self._request(robots_url, html=False, max_bytes=ROBOTS_MAX_BYTES)
                    if location is None:
                        break
                    robots_url = clean_url(urljoin(robots_url, location))
                else:
                    page = None  # redirected too often: no rules (RFC 9309 allows treating it as unavailable)
                if page is not None:
                    text, _ = extraction.decode(page.body, page.charset or "utf-8")
                    site.robots = Protego.parse(text)
            except FetchError as exc:
                status = exc.status
                if status is not None and 400 <= status < 500:
                    site.robots = None  # no robots.txt: everything may be read
                elif status is not None:
                    site.robots_error = FetchError(
                        f"The site's robots.txt answered with an error ({status}), so the site is not read.",
                        retryable=True,
                    )
                else:
                    site.robots_error = exc  # the site does not answer at all: say so for its rows
            except BadAddress:
                site.robots = None
            site.robots_read = True


def _status_error(status: int) -> FetchError:
    words = _STATUS_WORDS.get(status)
    return FetchError(
        f"The website answered {status}" + (f" ({words})." if words else "."),
        retryable=status == 429 or status >= 500,
        status=status,
    )


def _kind(content_type: str) -> str:
    for prefix, words in _KINDS.items():
        if content_type.startswith(prefix):
            return words
    return f"a file of type {content_type}"


def _sniff_not_html(body: bytes) -> str | None:
    """What an answer without a Content-Type is, when its first bytes say it is not a page."""
    head = body[:8]
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")):
        return "an image"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    return None


def _transport_words(exc: httpx2.TransportError) -> str:
    text = str(exc)
    low = text.lower()
    if "does not resolve" in low or "name or service not known" in low or "nodename nor servname" in low:
        return "The website's name does not resolve (no such domain, or it is offline)."
    if "refused" in low:
        return "The website refused the connection (nothing answers at that address)."
    if "certificate" in low:
        return "The website's security certificate is not valid, so it was not read."
    if "ssl" in low or "tls" in low or "wrong version number" in low:
        return "The website's secure connection (TLS) failed."
    if isinstance(exc, httpx2.RemoteProtocolError):
        return "The website sent a broken answer."
    return f"Could not read the website: {text or type(exc).__name__}."
