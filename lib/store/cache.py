"""The paid-answer cache: each response paid for, by a hash of the exact request and its endpoint, so the
same request is never paid for twice, whichever run sends it."""

from __future__ import annotations

import json
import time

from lib.cost.pricing import Usage
from lib.store.db import Database, Statement
from lib.store.records import CachedResponse, sources_from_json, sources_json


class Answers:
    """The responses table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, request_hash: str) -> CachedResponse | None:
        rows = self._db.read(
            "SELECT request_hash, response_id, text, finish_reason, usage_json, sources_json FROM responses "
            "WHERE request_hash = ?",
            (request_hash,),
        )
        if not rows:
            return None
        h, rid, text, finish, usage, sources = rows[0]
        return CachedResponse(h, rid, text, finish, Usage(**json.loads(usage)), sources_from_json(sources))


def keep(cache: CachedResponse) -> Statement:
    """The statement that keeps a paid response (in the same transaction as the row it answered)."""
    # Only the counts that are not zero, compactly: Usage's fields default to 0 (older rows spell all out).
    usage = json.dumps({k: v for k, v in vars(cache.usage).items() if v}, separators=(",", ":"))
    return (
        "INSERT OR REPLACE INTO responses (request_hash, response_id, text, finish_reason, usage_json, "
        "created_at, sources_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            cache.request_hash,
            cache.response_id,
            cache.text,
            cache.finish_reason,
            usage,
            time.time(),
            sources_json(cache.sources),
        ),
    )
