"""Request bodies kept compactly: a run's shared part once per distinct value, each row its own last message.

A lead prompt's requests differ only in their last user message (the row's rendered data): the model,
the system prompt, the few-shot turns, response_format, the tier... repeat on every row, and were 58% of
the store. Here a body is split into its shared part (the body with every message but the last) and the
row's own part (the last message: its text when it is a plain user turn, else the message as JSON); the
shared parts of a run are numbered in `request_parts`, and a row keeps the number and its own part.
Joining gives back the body with the same keys in the same order. Rows written before this keep the
whole body in `request_json`, which is still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from lib.store.db import Database

# A row's request columns: (request_json, request_part, request_text, request_last).
RowRequest = tuple[str | None, int | None, str | None, str | None]
NO_REQUEST: RowRequest = (None, None, None, None)
IDS_PER_QUERY = 500  # under SQLite's limit on bound parameters


def split(body: Mapping[str, Any]) -> tuple[dict, str | None, str | None]:
    """(shared part, the last message's text if it is a plain user turn, else the last message as JSON)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return dict(body), None, None
    shared = dict(body)
    shared["messages"] = messages[:-1]
    last = messages[-1]
    if (
        isinstance(last, dict)
        and list(last) == ["role", "content"]
        and last["role"] == "user"
        and isinstance(last["content"], str)
    ):
        return shared, last["content"], None
    return shared, None, json.dumps(last, ensure_ascii=False)


def join(shared: Mapping[str, Any], text: str | None, last_json: str | None) -> dict:
    """The body again: the shared part's keys in their order, its messages and then the row's own.
    Rows of a run share the shared part's message objects (read-only, as every caller treats them)."""
    body = dict(shared)
    if text is None and last_json is None:
        if isinstance(body.get("messages"), list):
            body["messages"] = list(body["messages"])
        return body
    last = {"role": "user", "content": text} if text is not None else json.loads(last_json or "null")
    body["messages"] = [*shared["messages"], last]
    return body


class Parts:
    """Numbers a run's distinct shared parts as its rows are written (one Parts per create_run)."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}  # the shared part's JSON -> its number in the run
        self._last: tuple[dict, int] | None = None

    def row(self, body: Mapping | None) -> RowRequest:
        """The columns a row keeps for this body."""
        if body is None:
            return NO_REQUEST
        shared, text, last = split(body)
        if self._last is not None and self._last[0] == shared and list(self._last[0]) == list(shared):
            return None, self._last[1], text, last  # the common case: as the row before, without encoding
        key = json.dumps(shared, ensure_ascii=False)
        number = self.numbers.setdefault(key, len(self.numbers))
        self._last = (shared, number)
        return None, number, text, last

    def rows(self, run_id: str) -> list[tuple[str, int, str]]:
        """The request_parts rows to insert with the run."""
        return [(run_id, number, key) for key, number in self.numbers.items()]


def read_requests(db: Database, run_id: str, row_ids: Iterable[int] | None = None) -> dict[int, dict]:
    """The stored request bodies of a run (all rows, or the given ones), by row id in row order."""
    parts = {n: json.loads(text) for n, text in db.read(
        "SELECT part, body_json FROM request_parts WHERE run_id = ?", (run_id,)
    )}  # fmt: skip
    columns = "row_id, request_json, request_part, request_text, request_last"
    has = "(request_json IS NOT NULL OR request_part IS NOT NULL)"
    if row_ids is None:
        pages = db.pages(
            f"SELECT {columns} FROM rows WHERE run_id = ? AND {has} AND row_id > ? ORDER BY row_id LIMIT ?",
            (run_id,),
        )
    else:
        wanted = sorted({int(r) for r in row_ids})
        pages = (
            db.read(
                f"SELECT {columns} FROM rows WHERE run_id = ? AND {has} "
                f"AND row_id IN ({', '.join('?' * len(chunk))}) ORDER BY row_id",
                (run_id, *chunk),
            )
            for chunk in (wanted[i : i + IDS_PER_QUERY] for i in range(0, len(wanted), IDS_PER_QUERY))
        )
    out: dict[int, dict] = {}
    for page in pages:
        for row_id, whole, part, text, last in page:
            out[row_id] = json.loads(whole) if whole is not None else join(parts[part], text, last)
    return out
