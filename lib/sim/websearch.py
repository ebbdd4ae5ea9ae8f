"""The simulator's web_search tool: what a row searches, what it cites, and where the citations sit.

Everything here is a pure function of the row's text (never of the model), so a test or a benchmark can
compute what a request searches, cites and is billed before sending it.

A row's plan (`plan`):
- Its subject: the domain from a URL, an e-mail address or a bare domain in the row; the company from a
  `<data>` value labelled company / account / organisation, else the domain's first label, else the
  first `<data>` value.
- Its searches: 1 visible search in half the rows, 2 in 35%, 3 in 15% (`[[sim:searches=N]]` forces N);
  a quarter of the rows also run a hidden sub-search right after the first (`[[sim:sub_search]]` forces
  one): billed and counted in `tool_usage.web_search.num_requests` and the ledger, never an output item.
- Its sources: each visible search finds one page: the lead's own site (about, then careers) and a news
  article on news.sim-wire.example; a row without a domain finds the news article and a job board.
- One row in 8 (`[[sim:no_source]]` forces it) searches, is billed, and cites nothing: its answer is the
  Chat Completions answer, with no annotation.

`max_tool_calls` keeps the first N billed searches, hidden ones included, so a row never costs more than
N calls; only the kept visible searches' sources are cited. A packed request (several rows) runs each
item's plan in item order under that one cap.

Citations: a text answer is the Chat Completions answer followed by one sentence per source ending in a
markdown link, `... ([host](url)).`, and each `url_citation` spans its link, as OpenAI's do. A JSON answer
(structured output, packed rows) is left exactly as Chat Completions gives it; each citation spans a
string value inside it (source i on the i-th string value, a packed item's sources on that item's answer).
Indexes count characters (code points) of `output_text`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lib.prompts import packing
from lib.sim import replies

NEWS_HOST = "news.sim-wire.example"
JOBS_HOST = "jobs.sim-board.example"
P_TWO, P_THREE = 0.35, 0.15  # shares of rows that need two / three visible searches
P_SUB_SEARCH = 0.25
P_NO_SOURCE = 0.125
MAX_FORCED_SEARCHES = 8
_URL_RE = re.compile(r"https?://([^/\s<>\"'?#:]+)", re.I)
_EMAIL_RE = re.compile(r"[\w.+-]+@((?:[a-z0-9-]+\.)+[a-z]{2,24})\b", re.I)
_DOMAIN_RE = re.compile(r"\b((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})\b", re.I)
_COMPANY_RE = re.compile(
    r"(?:company|account|organi[sz]ation|employer|business)[^:<\n]{0,24}:\s*<data>(.*?)</data>", re.I
)
_DATA_RE = re.compile(r"<data>(.*?)</data>", re.S)


@dataclass(frozen=True)
class Source:
    url: str
    title: str
    fact: str  # the sentence a text answer cites it for


@dataclass(frozen=True)
class Search:
    query: str
    hidden: bool = False  # a sub-search: billed, never an output item
    source: Source | None = None


@dataclass(frozen=True)
class Plan:
    """The billed searches of one row, in order, and whether its answer cites them."""

    searches: tuple[Search, ...]
    cites: bool = True

    @property
    def calls(self) -> int:
        """Billed web search calls (hidden sub-searches included)."""
        return len(self.searches)

    @property
    def visible(self) -> tuple[Search, ...]:
        return tuple(s for s in self.searches if not s.hidden)

    @property
    def sources(self) -> tuple[Source, ...]:
        """What the answer cites: the visible searches' sources, none for a no-source row."""
        if not self.cites:
            return ()
        return tuple(s.source for s in self.visible if s.source is not None)

    def capped(self, max_calls: int | None) -> Plan:
        """The plan under `max_tool_calls`: the first N billed searches."""
        if max_calls is None or max_calls >= len(self.searches):
            return self
        return replace(self, searches=self.searches[: max(0, max_calls)])


def _row_text(messages: Sequence[dict]) -> str:
    return replies.last_user_text(replies._row_view(messages))


def subject(messages: Sequence[dict]) -> tuple[str, str | None]:
    """(company name, domain or None) the row is about."""
    text = _row_text(messages)
    domain = None
    for pattern in (_URL_RE, _EMAIL_RE, _DOMAIN_RE):
        match = pattern.search(text)
        if match:
            domain = match.group(1).lower().rstrip(".").removeprefix("www.")
            break
    labelled = [v.strip() for v in _COMPANY_RE.findall(text) if v.strip()]
    values = [v.strip() for v in _DATA_RE.findall(text) if v.strip()]
    if labelled:
        company = labelled[0]
    elif domain:
        company = domain.split(".")[0].replace("-", " ").title()
    elif values:
        company = values[0]
    else:
        company = " ".join(replies._words(text)[:3])
    return company[:80], domain


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "lead"


def _sources(company: str, domain: str | None, tag: str, n: int) -> list[Source]:
    slug = _slug(company)
    news = Source(
        f"https://{NEWS_HOST}/2026/{slug}-{tag}?utm_source=openai",
        f"{company} in the news - SimWire",
        f"{company} made the news this year",
    )
    if domain:
        found = [
            Source(
                f"https://{domain}/about?utm_source=openai",
                f"About {company}",
                f"{company} describes what it sells on its own site",
            ),
            news,
            Source(
                f"https://{domain}/careers?utm_source=openai",
                f"Careers at {company}",
                f"{company} lists open roles",
            ),
        ]
    else:
        found = [
            news,
            Source(
                f"https://{JOBS_HOST}/{slug}?utm_source=openai",
                f"{company} jobs - SimBoard",
                f"{company} is hiring",
            ),
        ]
    for i in range(len(found), n):
        found.append(
            Source(
                f"https://{NEWS_HOST}/2026/{slug}-{tag}-{i}?utm_source=openai",
                f"{company} update {i} - SimWire",
                f"{company} published update {i}",
            )
        )
    return found[:n]


def plan(messages: Sequence[dict]) -> Plan:
    """The searches one row runs, before any max_tool_calls cap."""
    text = _row_text(messages)
    marks = replies.directives([{"role": "user", "content": text}])
    seed = hashlib.sha256(f"web_search\0{text}".encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(int.from_bytes(seed[:16], "big"))
    u = rng.random()
    visible = 3 if u < P_THREE else 2 if u < P_THREE + P_TWO else 1
    hidden = rng.random() < P_SUB_SEARCH
    cites = rng.random() >= P_NO_SOURCE
    if "searches" in marks:
        visible = min(MAX_FORCED_SEARCHES, marks["searches"] if marks["searches"] is not None else 1)
    if "sub_search" in marks:
        hidden = marks["sub_search"] != 0
    if "no_source" in marks:
        cites = False
    company, domain = subject(messages)
    queries = [f"{company} latest news", f"{company} funding round", f"{company} hiring"]
    queries += [f"{company} update {i}" for i in range(len(queries), visible)]
    sources = _sources(company, domain, replies.reply_tag([{"role": "user", "content": text}]), visible)
    searches = [Search(queries[i], source=sources[i]) for i in range(visible)]
    if hidden and searches:
        sub = f"site:{domain} {company}" if domain else f"{company} official website"
        searches.insert(1, Search(sub, hidden=True))
    return Plan(tuple(searches), cites)


def request_plans(
    messages: Sequence[dict], response_format: Any, max_calls: int | None
) -> list[tuple[str | None, Plan]]:
    """Each row's plan under the request's one max_tool_calls cap: [(None, plan)], or per packed item id."""
    if replies.is_packed(response_format):
        rows = [
            (item_id, plan([*messages[:-1], {"role": "user", "content": text}]))
            for item_id, text in packing.ITEM_RE.findall(replies.last_user_text(messages))
        ]
    else:
        rows = [(None, plan(messages))]
    left = max_calls
    out = []
    for key, row in rows:
        row = row.capped(left)
        if left is not None:
            left -= row.calls
        out.append((key, row))
    return out


def billed_calls(messages: Sequence[dict], response_format: Any = None, max_calls: int | None = None) -> int:
    """Web search calls this request is billed for (what a test or a quote can check against the ledger)."""
    return sum(p.calls for _, p in request_plans(messages, response_format, max_calls))


def web_search_cost(ledger: Sequence[Mapping[str, Any]]) -> float:
    """USD the ledger's entries were billed for web search calls (each entry's calls at its model's price)."""
    return sum(e.get("web_search_calls", 0) * e.get("web_search_call_price", 0.0) for e in ledger)


def cited_reply(messages: Sequence[dict], model: str, max_calls: int | None = None) -> tuple[str, list[dict]]:
    """The output_text and annotations a text prompt gets with web search on (no cap, defects or prompt
    sensitivity): what a test compares a row's answer and sources with."""
    sources = request_plans(messages, None, max_calls)[0][1].sources
    return cite_text(replies.expected_reply(list(messages), model), sources)


# ----- citations ----------------------------------------------------------------------------------------------


def url_citation(start: int, end: int, source: Source) -> dict:
    return {
        "type": "url_citation",
        "start_index": start,
        "end_index": end,
        "url": source.url,
        "title": source.title,
    }


def cite_text(answer: str, sources: Sequence[Source]) -> tuple[str, list[dict]]:
    """The answer with one cited sentence per source appended, and the url_citation spanning each link."""
    text, annotations = answer, []
    for source in sources:
        host = source.url.split("/")[2]
        text += f" {source.fact} ("
        link = f"[{host}]({source.url})"
        annotations.append(url_citation(len(text), len(text) + len(link), source))
        text += link + ")."
    return text, annotations


def cite_json(content: str, sources: Mapping[str | None, Sequence[Source]]) -> list[dict]:
    """Citations over a JSON answer's string values: key None for the whole answer, else a packed item's id.

    The answer is not changed; an answer this module cannot lay out exactly as sent gets no citation.
    """
    try:
        value = json.loads(content)
    except ValueError:
        return []
    spans: list[tuple[tuple, int, int]] = []
    if _dump(value, (), [], spans) != content:
        return []
    annotations = []
    for key, cited in sources.items():
        if key is None:
            strings = [(start, end) for _, start, end in spans]
        else:
            items = value.get("items") if isinstance(value, dict) else None
            owners = {
                i for i, item in enumerate(items or []) if isinstance(item, dict) and item.get("id") == key
            }
            strings = [
                (start, end)
                for path, start, end in spans
                if len(path) >= 3 and path[0] == "items" and path[1] in owners and path[2] == "answer"
            ]
        if not strings:
            continue
        for i, source in enumerate(cited):
            start, end = strings[i % len(strings)]
            annotations.append(url_citation(start, end, source))
    return sorted(annotations, key=lambda a: a["start_index"])


def _dump(value: Any, path: tuple, out: list[str], spans: list[tuple[tuple, int, int]]) -> str:
    """json.dumps(value, ensure_ascii=False) built piece by piece, noting each string value's span."""

    def offset() -> int:
        return sum(len(piece) for piece in out)

    if isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append((", " if i else "") + json.dumps(key, ensure_ascii=False) + ": ")
            _dump(item, (*path, key), out, spans)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _dump(item, (*path, i), out, spans)
        out.append("]")
    else:
        text = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and len(text) > 2:
            start = offset() + 1
            spans.append((path, start, start + len(text) - 2))
        out.append(text)
    return "".join(out)
