"""Runs and their rows: the journal every answer is committed to before the run counts it as done."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from lib.cost.pricing import Usage
from lib.store.db import Database, Statement
from lib.store.records import RowRecord, RunRecord, sources_from_json, sources_json
from lib.store.requests import Parts, read_requests

# (row_id, request_hash, request body, input cells, initial status), as create_run takes them.
NewRow = tuple[int, str | None, Mapping | None, Mapping[str, str], str]

_RUN_COLUMNS = "run_id, created_at, updated_at, status, message, meta_json"
_ROW_COLUMNS = (
    "row_id, status, text, error, retryable, finish_reason, flags, prompt_tokens, completion_tokens, "
    "cached_tokens, reasoning_tokens, cost_usd, attempts, from_cache, request_hash, cache_write_tokens, "
    "service_tier, latency_s, web_search_calls, sources_json"
)


class Runs:
    """The runs and rows tables (and the request parts their rows point at)."""

    def __init__(self, db: Database):
        self._db = db

    def create(self, run_id: str, meta: Mapping, rows: Iterable[NewRow]) -> None:
        """The run and all its rows, in one transaction; request bodies kept compactly (lib.store.requests)."""
        now = time.time()
        parts = Parts()

        def values() -> Iterator[tuple]:
            for row_id, request_hash, body, cells, status in rows:
                _, part, text, last = parts.row(body)
                cells_json = json.dumps(dict(cells), ensure_ascii=False)
                yield run_id, row_id, request_hash, cells_json, status, part, text, last

        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'pending', NULL, ?)", (run_id, now, now, json.dumps(meta))
            )
            db.executemany(
                "INSERT INTO rows (run_id, row_id, request_hash, input_json, status, request_part, request_text, "
                "request_last) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values(),
            )
            db.executemany("INSERT INTO request_parts VALUES (?, ?, ?)", parts.rows(run_id))

    def exists(self, run_id: str) -> bool:
        return bool(self._db.read("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def set_status(self, run_id: str, status: str, message: str | None, meta_updates: Mapping) -> None:
        """Status, message and any meta keys, in one write transaction (no other writer in between)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, message = ?, updated_at = ? WHERE run_id = ?",
                (status, message, time.time(), run_id),
            )
            if meta_updates:
                _patch_meta(db, run_id, meta_updates)

    def update_meta(self, run_id: str, meta_updates: Mapping) -> None:
        """Set some meta keys (the others as they are now, whoever wrote them last), status untouched."""
        with self._db.transaction() as db:
            _patch_meta(db, run_id, meta_updates)

    def get(self, run_id: str) -> RunRecord:
        rows = self._db.read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise KeyError(run_id)
        return _run_record(rows[0])

    def recent(self, limit: int) -> list[RunRecord]:
        return [
            _run_record(r)
            for r in self._db.read(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        ]

    def regenerations(self, run_id: str) -> list[str]:
        """The ids of the regenerate runs that asked this run's flagged rows again, oldest first."""
        rows = self._db.read(
            "SELECT run_id FROM runs WHERE json_extract(meta_json, '$.regenerates') = ? ORDER BY created_at",
            (run_id,),
        )
        return [r[0] for r in rows]

    @staticmethod
    def delete_statements(run_id: str) -> list[Statement]:
        return [
            (f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            for table in ("rows", "request_parts", "runs")
        ]

    # --- rows -------------------------------------------------------------------------------------

    def rows(self, run_id: str) -> list[RowRecord]:
        sql = f"SELECT {_ROW_COLUMNS} FROM rows WHERE run_id = ? ORDER BY row_id"
        return [_row_record(r) for r in self._db.read(sql, (run_id,))]

    def iter_rows(self, run_id: str) -> Iterator[RowRecord]:
        """The rows in row order, read a page at a time."""
        sql = f"SELECT {_ROW_COLUMNS} FROM rows WHERE run_id = ? AND row_id > ? ORDER BY row_id LIMIT ?"
        for page in self._db.pages(sql, (run_id,)):
            yield from (_row_record(r) for r in page)

    def requests(self, run_id: str, row_ids: Iterable[int] | None = None) -> dict[int, dict]:
        return read_requests(self._db, run_id, row_ids)

    def inputs(self, run_id: str) -> Iterator[tuple[int, dict]]:
        """Each row's input cells, in row order, read a page at a time."""
        sql = "SELECT row_id, input_json FROM rows WHERE run_id = ? AND row_id > ? ORDER BY row_id LIMIT ?"
        for page in self._db.pages(sql, (run_id,)):
            for row_id, cells in page:
                yield row_id, json.loads(cells)

    def reset_statements(self, run_id: str, row_ids: Iterable[int]) -> list[Statement]:
        """Rows pending again (retry failed rows); their old error dropped."""
        now = time.time()
        sql = (
            "UPDATE rows SET status = 'pending', error = NULL, retryable = 0, flags = '', updated_at = ? "
            "WHERE run_id = ? AND row_id = ?"
        )
        return [(sql, (now, run_id, row_id)) for row_id in row_ids]


def _patch_meta(db, run_id: str, updates: Mapping) -> None:
    """Inside a write transaction: read the meta and write it back with `updates` applied."""
    found = db.execute("SELECT meta_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if found is None:
        raise KeyError(run_id)
    meta = json.loads(found[0])
    meta.update(updates)
    db.execute("UPDATE runs SET meta_json = ? WHERE run_id = ?", (json.dumps(meta), run_id))


def row_update(run_id: str, row: RowRecord) -> Statement:
    """The statement that journals one row's outcome."""
    return (
        "UPDATE rows SET status = ?, text = ?, error = ?, retryable = ?, finish_reason = ?, flags = ?, "
        "prompt_tokens = ?, completion_tokens = ?, cached_tokens = ?, reasoning_tokens = ?, cost_usd = ?, "
        "attempts = ?, from_cache = ?, updated_at = ?, cache_write_tokens = ?, service_tier = ?, latency_s = ?, "
        "web_search_calls = ?, sources_json = ? WHERE run_id = ? AND row_id = ?",
        (
            row.status,
            row.text,
            row.error,
            int(row.retryable),
            row.finish_reason,
            ",".join(row.flags),
            row.usage.prompt_tokens,
            row.usage.completion_tokens,
            row.usage.cached_tokens,
            row.usage.reasoning_tokens,
            row.cost_usd,
            row.attempts,
            int(row.from_cache),
            time.time(),
            row.usage.cache_write_tokens,
            row.service_tier,
            row.latency_s,
            row.usage.web_search_calls,
            sources_json(row.sources),
            run_id,
            row.row_id,
        ),
    )


def _row_record(r: Sequence) -> RowRecord:
    (row_id, status, text, error, retryable, finish, flags, pt, ct, cached, reasoning, cost, attempts, fc, rh,
     written, tier, latency, searches, sources) = r  # fmt: skip
    return RowRecord(
        row_id=row_id,
        status=status,
        text=text,
        error=error,
        retryable=bool(retryable),
        finish_reason=finish,
        flags=tuple(f for f in flags.split(",") if f),
        usage=Usage(pt, ct, cached, reasoning, written or 0, searches or 0),
        cost_usd=cost,
        attempts=attempts,
        from_cache=bool(fc),
        request_hash=rh,
        service_tier=tier,
        latency_s=latency,
        sources=sources_from_json(sources),
    )


def _run_record(r: Sequence) -> RunRecord:
    return RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))
