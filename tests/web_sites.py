"""Local websites on loopback for the fetcher's tests: one small HTTP server per site, each on its own port.

Each server counts the connections it accepted and the requests it saw, so a test can assert that a
refused address was never contacted, that a robots.txt was read once, or that reading a huge page
stopped early. Nothing here listens on anything but 127.0.0.1 / 127.0.0.2.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOMEPAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fernhill Analytics | Forecasts your board trusts</title>
<meta name="description" content="Fernhill turns messy CRM data into revenue forecasts for B2B SaaS companies.">
</head><body>
<header><nav class="main-menu"><ul><li><a href="/">Home</a></li><li><a href="/product">Product</a></li>
<li><a href="/pricing">Pricing</a></li><li><a href="/about-us">About us</a></li><li><a href="/careers">Careers</a></li>
<li><a href="/login">Log in</a></li></ul></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. By clicking Accept all
you agree to our use of cookies. <button>Accept all</button> <button>Reject</button>
<a href="/cookies">Cookie settings</a></div>
<main>
<section class="hero"><h1>Forecasts your board trusts</h1>
<p>Fernhill turns messy CRM data into revenue forecasts for B2B SaaS companies with 50 to 500 employees.</p>
<a class="btn" href="/demo">Book a demo</a></section>
<section class="features"><h2>What we do</h2>
<div class="card"><h3>Pipeline hygiene</h3><p>Finds stale deals, missing close dates and duplicate accounts in
Salesforce and HubSpot every night.</p></div>
<div class="card"><h3>Forecasting</h3><p>Machine-learning forecasts by segment, with the confidence range your
CFO asks for.</p></div>
<div class="card"><h3>Board reporting</h3><p>One-click board decks with the numbers reconciled to your finance
system.</p></div>
</section>
<section class="logos"><p>Trusted by revenue teams at 120+ companies across Europe.</p></section>
</main>
<footer><p>© 2026 Fernhill Analytics Ltd. Registered in England, company no. 1234567.</p>
<ul><li><a href="/privacy">Privacy policy</a></li><li><a href="/terms">Terms</a></li></ul></footer>
</body></html>"""

ABOUT_PAGE = """<html><head><title>About us | Fernhill</title></head><body>
<nav><a href="/">Home</a></nav>
<main><h1>About Fernhill</h1><p>Fernhill was founded in Leeds in 2019 by two former revenue-operations leads
who were tired of forecasts nobody believed. Today 40 people work on the product.</p></main>
<footer>© 2026 Fernhill Analytics Ltd.</footer></body></html>"""

# Plain <div>s only: the menu, the consent layer and the legal line carry only class names.
DIV_SOUP = """<html><head><title>Brauerei Huber GmbH</title></head><body>
<div class="top"><div class="menu"><a href="/">Start</a> | <a href="/biere">Unsere Biere</a> |
<a href="/ueber-uns">Über uns</a> | <a href="/kontakt">Kontakt</a></div></div>
<div class="gdpr-overlay" id="consent">Diese Website verwendet Cookies. Mit der Nutzung stimmen Sie der
Datenschutzerklärung zu. <a>Alle akzeptieren</a> <a>Einstellungen</a></div>
<div class="content"><div class="col">Willkommen bei der Brauerei Huber. Seit 1872 brauen wir in Bamberg
Rauchbier, Helles und saisonale Spezialitäten nach dem Reinheitsgebot.</div>
<div class="col">Wir beliefern Gastronomie und Getränkehandel in ganz Franken.</div></div>
</body></html>"""

SPA = """<html><head><title>App</title><script src="/static/js/main.js"></script></head>
<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>"""

# Declared only in <meta>: the Content-Type header says text/html with no charset.
CP1252_TEXT = "Müller & Söhne – Präzisionsteile für den Maschinenbau. Qualität „made in Germany“ seit 1952."
CP1252_PAGE = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    f"<title>Müller & Söhne</title></head><body><main><p>{CP1252_TEXT}</p></main></body></html>"
).encode("cp1252")

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HUGE_BYTES = 30 * 1024 * 1024


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[["_Handler"], Reply | None]  # None: the route wrote its own answer


class Site:
    """One website: a ThreadingHTTPServer on a free port with a table of path -> reply."""

    def __init__(
        self,
        name: str,
        routes: dict[str, Reply | Route],
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ):
        self.name = name
        self.routes = routes
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers) in arrival order
        self.arrivals: list[float] = []  # time.monotonic() of each request, same order
        self.sent = 0  # bytes of the huge page written before the client stopped reading
        self.reading_stopped = threading.Event()
        self.release = threading.Event()  # ends the slow site's wait at teardown
        self.lock = threading.Lock()
        site = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address) -> None:
                pass  # a reader that hangs up early (size cap, refused type, TLS probe) is expected

            def verify_request(self, request, client_address) -> bool:
                with site.lock:
                    site.connections += 1
                return True

        self.server = Server((host, 0), _handler_for(self))
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self.port = self.server.server_address[1]
        # A short poll interval: shutdown() waits for it, and a test stops a dozen sites.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    @property
    def address(self) -> str:
        """The address without a scheme, as a lead file often writes it."""
        return f"{self.host}:{self.port}"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def start(self) -> Site:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        site = self.site
        path = self.path.split("?", 1)[0]
        with site.lock:
            site.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
            site.arrivals.append(time.monotonic())
        route = site.routes.get(path, Reply(404, b"<html><body>Not found</body></html>"))
        reply = route(self) if callable(route) else route
        if reply is not None:
            self.answer(reply)

    def answer(self, reply: Reply) -> None:
        self.send_response(reply.status)
        headers = {"Content-Type": "text/html; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


def _handler_for(site: Site) -> type[_Handler]:
    return type("Handler", (_Handler,), {"site": site})


def html(text: str, **headers: str) -> Reply:
    return Reply(200, text.encode("utf-8"), headers)


def redirect(location: str, status: int = 301) -> Reply:
    return Reply(status, b"", {"Location": location})


def slow(seconds: float) -> Route:
    """Answers after `seconds` (or when the site is stopped): the fetcher's timeout must come first."""

    def route(handler: _Handler) -> Reply:
        handler.site.release.wait(seconds)
        return html("<html><body><p>Finally.</p></body></html>")

    return route


def trickle(handler: _Handler) -> None:
    """Headers at once, then one byte every 0.2 s for a minute: no single read waits long, the whole does."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", "300")
    handler.end_headers()
    try:
        for _ in range(300):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if handler.site.release.wait(0.2):
                return
    except OSError:
        handler.site.reading_stopped.set()
    handler.close_connection = True


def huge(handler: _Handler) -> None:
    """A 30 MB page written in 64 KB pieces, counting what got out before the reader hung up."""
    site = handler.site
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(HUGE_BYTES))
    handler.end_headers()
    piece = b"<p>" + b"Big page text. " * 4000 + b"</p>\n"
    piece = piece[: 64 * 1024]
    sent = 0
    try:
        handler.wfile.write(b"<html><body>")
        while sent < HUGE_BYTES:
            handler.wfile.write(piece)
            sent += len(piece)
            site.sent = sent
    except OSError:  # the reader closed the connection: the size cap worked
        site.reading_stopped.set()
    handler.close_connection = True


def counting_listener(host: str) -> tuple[socket.socket, list[int], threading.Thread]:
    """A bare listening socket counting connections: for addresses that must never be contacted."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    count = [0]

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            count[0] += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return sock, count, thread


class Sites:
    """The whole set of local sites a test needs; `stop()` ends them (and releases the slow one)."""

    def __init__(self, extra_routes: dict[str, dict[str, Reply | Route]] | None = None):
        self.sites: dict[str, Site] = {}
        self.home = self.add(
            "home",
            {
                "/": html(HOMEPAGE),
                "/about-us": html(ABOUT_PAGE),
                "/robots.txt": Reply(
                    200, b"User-agent: *\nDisallow: /private\n", {"Content-Type": "text/plain"}
                ),
            },
        )
        # 127.0.0.2 is loopback too, but it is not on the tests' allow list: it must never be contacted.
        self.outside = self.add("outside", {"/": html(HOMEPAGE)}, host="127.0.0.2")
        self.redirect = self.add(
            "redirect",
            {
                "/": redirect(self.home.url),
                "/to-outside": redirect(self.outside.url),
                "/to-private": redirect("http://intranet.test/"),
                "/loop": redirect("/loop2", 302),
                "/loop2": redirect("/loop3", 307),
                "/loop3": redirect("/loop4", 308),
                "/loop4": redirect("/loop5", 303),
                "/loop5": redirect("/loop6", 301),
                "/loop6": redirect("/loop", 302),
            },
        )
        self.missing = self.add("missing", {})
        self.robots_deny = self.add(
            "robots-deny",
            {
                "/": html(HOMEPAGE),
                "/robots.txt": Reply(200, b"User-agent: *\nDisallow: /\n", {"Content-Type": "text/plain"}),
            },
        )
        self.slow = self.add("slow", {"/": slow(40.0), "/robots.txt": Reply(404)})
        self.huge = self.add("huge", {"/": huge})
        self.pdf = self.add("pdf", {"/": Reply(200, PDF, {"Content-Type": "application/pdf"})})
        self.cp1252 = self.add("cp1252", {"/": Reply(200, CP1252_PAGE, {"Content-Type": "text/html"})})
        self.spa = self.add("spa", {"/": html(SPA)})
        self.soup = self.add("soup", {"/": html(DIV_SOUP)})
        self.broken_gzip = self.add(
            "broken-gzip", {"/": Reply(200, b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"})}
        )
        self.refresh = self.add(
            "refresh",
            {
                "/": html(
                    '<html><head><meta http-equiv="refresh" content="0; URL=\'/en/\'"></head><body></body></html>'
                ),
                "/en/": html(HOMEPAGE),
            },
        )
        for name, routes in (extra_routes or {}).items():
            self.add(name, routes)

    def add(
        self,
        name: str,
        routes: dict[str, Reply | Route],
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> Site:
        site = self.sites[name] = Site(name, routes, host, tls).start()
        return site

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()


def loopback_only(address: str, port: int) -> None:
    """The tests' second fence, called before any socket opens: nothing but 127.0.0.1 is ever contacted."""
    if address != "127.0.0.1":
        raise AssertionError(f"the fetcher tried to connect to {address}:{port}")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
