"""What the "Read websites" step shows: progress in words, why sites failed (grouped), allowed hosts."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from lib.views.labels import duration

# The first words of a row error name its kind: "The website answered 404 (page not found)." -> "404".
_KINDS = (
    (re.compile(r"^Refused: "), "refused: private or local address"),
    (re.compile(r"answered (\d{3})"), None),  # filled from the status code
    (re.compile(r"robots\.txt"), "robots.txt says no"),
    (re.compile(r"did not (answer|accept a connection) within"), "too slow"),
    (re.compile(r"^The address is "), "not a web page (PDF, image…)"),
    (re.compile(r"JavaScript"), "needs JavaScript"),
    (re.compile(r"not a website address|is a \w+: address"), "not a website address"),
    (re.compile(r"does not resolve"), "no such domain"),
    (re.compile(r"refused the connection|Could not read|secure connection|certificate|broken answer"),
     "could not connect"),
    (re.compile(r"redirected more than"), "too many redirects"),
    (re.compile(r"no readable text"), "no readable text"),
)  # fmt: skip


def progress_text(snap) -> str:
    """'12 of 40 rows · 10 read · 2 failed · 28 pending · 3 sites from earlier · 4.1 sites/s · about 7 s left'."""
    parts = [f"{snap.done:,} of {snap.total:,} rows", f"{snap.succeeded:,} read", f"{snap.failed:,} failed"]
    if snap.skipped:
        parts.append(f"{snap.skipped:,} without an address")
    parts.append(f"{snap.pending:,} pending")
    if snap.cache_hits:
        parts.append(f"{snap.cache_hits:,} sites from earlier")
    if snap.sites_per_s:
        parts.append(f"{snap.sites_per_s:.1f} sites/s")
    if snap.eta_s is not None:
        parts.append(f"about {duration(snap.eta_s)} left")
    return " · ".join(parts)


def error_kind(message: str) -> str:
    """A short name for a row error's kind, for a summary table."""
    for pattern, kind in _KINDS:
        found = pattern.search(message)
        if found:
            return kind if kind is not None else f"answered {found.group(1)}"
    return "other"


def error_summary(messages: Iterable[str | None]) -> list[tuple[str, int]]:
    """(kind, rows) for every non-empty error, most common first."""
    counts = Counter(error_kind(m) for m in messages if m)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def parse_hosts(text: str) -> tuple[str, ...]:
    """Allowed intranet hosts as typed: one per line or separated by commas/spaces; schemes, paths,
    ports and case dropped, each once."""
    hosts: dict[str, None] = {}
    for raw in re.split(r"[\s,;]+", text or ""):
        item = raw.strip()
        if not item:
            continue
        item = re.sub(r"^[a-z][a-z0-9+.-]*://", "", item, flags=re.I).split("/", 1)[0]
        if item.startswith("["):
            item = item[1:].split("]", 1)[0]
        elif item.count(":") == 1:
            item = item.split(":", 1)[0]
        item = item.rstrip(".").lower()
        if item:
            hosts.setdefault(item, None)
    return tuple(hosts)
