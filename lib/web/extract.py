"""A fetched page's bytes -> the readable text a prompt can use, plus its "About us" link.

Company homepages are not articles: a hero line, feature cards, a menu, a cookie banner, a footer.
trafilatura finds the main text well once the page is cleared of what is obviously not content; on
pages made of bare <div>s it keeps menus and banners, so they are removed first by tag (nav, footer,
aside) and by the words their class, id or role carry (cookie, consent, menu...). When trafilatura
finds nothing (a page of short blurbs), the cleaned page's own text is used. The title and the meta
description lead the text: on a homepage they are often the best summary of what the company does.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree

DEFAULT_MAX_CHARS = 8_000

# Always boilerplate when an element's class, id or role carries one of these words...
_ALWAYS = frozenset(
    [
        "cookie",
        "cookies",
        "consent",
        "gdpr",
        "cmp",
        "onetrust",
        "cookiebot",
        "usercentrics",
        "cookielaw",
        "footer",
        "contentinfo",
        "newsletter",
        "popup",
        "modal",
        "skiplink",
    ]
)
# ...and these only when the element is mostly links (a "menu" section of a restaurant is content).
_LINKY = frozenset(
    [
        "menu",
        "menus",
        "navbar",
        "nav",
        "navigation",
        "breadcrumb",
        "breadcrumbs",
        "sidebar",
        "social",
        "share",
    ]
)
_DROP_TAGS = ("nav", "footer", "aside", "script", "style", "noscript", "template", "svg", "form", "iframe")
_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "br",
        "tr",
        "td",
        "th",
        "table",
        "blockquote",
        "dd",
        "dt",
    ]
)
_SPLIT = re.compile(r"[\s_\-]+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.I)
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")

# Link texts of a company's "about" page, in order of preference, compared case- and punctuation-blind.
ABOUT_TEXTS = (
    "about us",
    "about",
    "who we are",
    "our story",
    "company",
    "our company",
    "über uns",
    "ueber uns",
    "wir über uns",
    "unternehmen",
    "das unternehmen",
    "à propos",
    "a propos",
    "qui sommes nous",
    "chi siamo",
    "quiénes somos",
    "sobre nosotros",
    "sobre nós",
    "over ons",
    "om oss",
    "om os",
    "o nas",
)
_ABOUT_PATHS = re.compile(r"/(about|about-us|ueber-uns|uber-uns|unternehmen|company|who-we-are)/?$", re.I)

# WHATWG: these labels mean windows-1252 in a browser, whatever the page claims.
_AS_CP1252 = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii", "us-ascii", "cp819"})


@dataclass(frozen=True)
class Extracted:
    text: str  # readable text, capped; "" when the page has none
    about_url: str | None  # the page's "About us" link, when it has one on the same site
    needs_javascript: bool  # no text, but scripts: the content is drawn in the browser
    encoding: str
    refresh_url: str | None = None  # <meta http-equiv="refresh" content="0; url=/en/">: a redirect in HTML


def decode(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Page text and the encoding used: a BOM, the Content-Type charset, the page's <meta>, else detected."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name
    for label in (header_charset, _meta_charset(body)):
        name = _codec(label)
        if name:
            return body.decode(name, errors="replace"), name
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Undeclared and not UTF-8: browsers in most locales read such pages as windows-1252.
    return body.decode("cp1252", errors="replace"), "cp1252"


def _meta_charset(body: bytes) -> str | None:
    found = _META_CHARSET.search(body[:4096])
    return found.group(1).decode("ascii", "ignore") if found else None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _AS_CP1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def extract(
    body: bytes, url: str, *, header_charset: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> Extracted:
    """The readable text of an HTML page, its "About us" link and whether it needs JavaScript."""
    html, encoding = decode(body, header_charset)
    html = _XML_DECL.sub("", html, count=1)
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return Extracted("", None, False, encoding)
    title = _one_line(tree.findtext(".//title") or "")
    description = _meta_description(tree)
    about = about_link(tree, url)
    refresh = _refresh_target(tree, url)
    scripts = len(tree.xpath("//script"))
    noscript = " ".join(n.text_content() for n in tree.iter("noscript")).lower()
    _clean(tree)
    plain = _plain_text(tree)
    main = (
        trafilatura.extract(tree, url=url, favor_recall=True, include_comments=False, deduplicate=False) or ""
    ).strip()
    if len(main) < 200 and len(plain) > len(main):
        main = (
            plain  # short blurbs trafilatura does not see as a text: the cleaned page is better than nothing
        )
    needs_js = len(plain) < 50 and (scripts > 0 or "javascript" in noscript) and refresh is None
    lines = [line for line in (title, description) if line and line not in main]
    text = "\n".join([*lines, main]).strip() if main or lines else ""
    if needs_js:
        text = ""
    return Extracted(cap(text, max_chars), about, needs_js, encoding, refresh)


_REFRESH = re.compile(r"^\s*\d*\s*[;,]?\s*url\s*=\s*['\"]?([^'\"]+)", re.I)


def _refresh_target(tree, base_url: str) -> str | None:
    """Where a <meta http-equiv="refresh"> sends the reader (language switches, moved homepages)."""
    for meta in tree.iter("meta"):
        if (meta.get("http-equiv") or "").strip().lower() == "refresh":
            found = _REFRESH.match(meta.get("content") or "")
            if found:
                return urljoin(base_url, found.group(1).strip())
    return None


def cap(text: str, max_chars: int) -> str:
    """At most `max_chars` characters, cut at a word boundary, marked with an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > max_chars * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def _meta_description(tree) -> str:
    for xpath in ('//meta[@name="description"]/@content', '//meta[@property="og:description"]/@content'):
        found = tree.xpath(xpath)
        if found and str(found[0]).strip():
            return _one_line(str(found[0]))
    return ""


def _words(el) -> set[str]:
    attrs = " ".join(el.get(a) or "" for a in ("class", "id", "role", "aria-label"))
    return {w.lower() for w in _SPLIT.split(attrs) if w}


def _clean(tree) -> None:
    """Remove menus, cookie banners, footers and the like, in place."""
    for el in list(tree.iter(*_DROP_TAGS)):
        if el.getparent() is not None:
            el.drop_tree()
    body = tree.find("body")
    total = len((body if body is not None else tree).text_content()) or 1
    for el in list(tree.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "main") or el.getparent() is None:
            continue
        words = _words(el)
        if not words:
            continue
        text = el.text_content()
        if len(text) > 0.4 * total:  # a wrapper (<div class="page cookies-accepted">), not a banner
            continue
        if words & _ALWAYS or (words & _LINKY and _link_share(el, text) >= 0.5):
            el.drop_tree()
    for el in tree.iter():  # the source's line breaks are layout, not text (outside <pre>)
        if isinstance(el.tag, str) and el.tag != "pre":
            if el.text and "\n" in el.text:
                el.text = el.text.replace("\n", " ")
            if el.tail and "\n" in el.tail:
                el.tail = el.tail.replace("\n", " ")


def _link_share(el, text: str) -> float:
    linked = sum(len(a.text_content()) for a in el.iter("a"))
    return linked / max(len(text.strip()), 1)


def _plain_text(tree) -> str:
    """The cleaned page's visible text, one line per block, without empty or repeated lines."""
    body = tree.find("body")
    root = body if body is not None else tree
    parts: list[str] = []

    def walk(el) -> None:
        if not isinstance(el.tag, str):
            return
        block = el.tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if el.text:
            parts.append(el.text.replace("\n", " "))
        for child in el:
            walk(child)
            if child.tail:
                parts.append(child.tail.replace("\n", " "))
        if block:
            parts.append("\n")

    walk(root)
    seen: set[str] = set()
    lines = []
    for raw in "".join(parts).split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        if line and line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)


def _normal_link_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


_ABOUT_RANK = {_normal_link_text(t): i for i, t in enumerate(ABOUT_TEXTS)}


def about_link(tree, base_url: str) -> str | None:
    """The best "About us" link of a page on the same site, or None."""
    base = urlsplit(base_url)
    best: tuple[int, str] | None = None
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        target = urljoin(base_url, href)
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not _same_site(parts.hostname, base.hostname):
            continue
        if parts.path.rstrip("/") == base.path.rstrip("/"):
            continue
        rank = _ABOUT_RANK.get(_normal_link_text(a.text_content()))
        if rank is None and _ABOUT_PATHS.search(parts.path):
            rank = len(_ABOUT_RANK)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, target.split("#", 1)[0])
    return best[1] if best else None


def _same_site(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.lower().removeprefix("www.") == b.lower().removeprefix("www.")
