"""What web research and one answer per company add to a run's results table (lib/engine/runs.py uses it).

Columns right after the answer: `sources` (the addresses the answer cites, one per line) and
`web_search_calls` for a run with web research, `answer_shared` ("shared with N rows (acme.com)") for a run
keyed by company (lib.leads.company); named clear of the table's other columns. Other runs' tables are as
before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lib.leads.company import company_key

SOURCES_COLUMN = "sources"
SEARCH_CALLS_COLUMN = "web_search_calls"
SHARED_COLUMN = "answer_shared"


def research_column_names(meta: Mapping, taken: Sequence[str]) -> dict[str, str]:
    """The columns web research and one answer per company add after the answer, named clear of `taken`
    ("sources (2)" where the table has one): {"sources": ..., "web_search_calls": ...} for a run with web
    search, {"shared": ...} for one keyed by company; {} for any other run."""
    wanted: dict[str, str] = {}
    if meta.get("web_search"):
        wanted["sources"] = SOURCES_COLUMN
        wanted["web_search_calls"] = SEARCH_CALLS_COLUMN
    if meta.get("one_answer_per"):
        wanted["shared"] = SHARED_COLUMN
    used = set(taken)
    out: dict[str, str] = {}
    for key, column in wanted.items():
        name, n = column, 2
        while name in used:
            name, n = f"{column} ({n})", n + 1
        used.add(name)
        out[key] = name
    return out


def sources_text(sources: Sequence) -> str:
    """A row's cited pages as its `sources` cell: one address per line."""
    return "\n".join(s.url for s in sources)


def shared_answers(inputs: Mapping[int, Mapping[str, str]], meta: Mapping) -> dict[int, str]:
    """{row id: "shared with N rows (key)"} for the rows that share one answer with others (one answer per
    company); rows alone in their company, or without a key, are left out."""
    column = meta.get("one_answer_per")
    if not column:
        return {}
    groups: dict[str, list[int]] = {}
    for row_id, cells in inputs.items():
        key = company_key(cells.get(column, ""))
        if key:
            groups.setdefault(key, []).append(row_id)
    return {
        row_id: f"shared with {len(ids)} rows ({key})"
        for key, ids in groups.items()
        if len(ids) > 1
        for row_id in ids
    }
