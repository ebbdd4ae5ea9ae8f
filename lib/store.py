"""Durable run journal, paid-response cache, run history and websites read, in one SQLite file.

Every answer is committed here before the run counts it as done, so a crash, a kill -9 or a refresh
loses at most the requests in flight. Answers are also cached by a hash of the exact request (and the
endpoint), so the same request is never paid for twice, whichever run sends it.
SQLite in WAL mode with synchronous=NORMAL survives a killed process; only a power cut can drop the
last few commits.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lib.cost.pricing import Usage

DB_NAME = "studio.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    meta_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    run_id TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    request_hash TEXT,
    request_json TEXT,
    input_json TEXT NOT NULL,
    status TEXT NOT NULL,
    text TEXT,
    error TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    finish_reason TEXT,
    flags TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    from_cache INTEGER NOT NULL DEFAULT 0,
    updated_at REAL,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    service_tier TEXT,
    latency_s REAL,
    PRIMARY KEY (run_id, row_id)
);
CREATE TABLE IF NOT EXISTS responses (
    request_hash TEXT PRIMARY KEY,
    response_id TEXT,
    text TEXT,
    finish_reason TEXT,
    usage_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS edits (
    run_id TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    column_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, row_id, column_name)
);
CREATE TABLE IF NOT EXISTS accepted (
    run_id TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    PRIMARY KEY (run_id, row_id)
);
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    data_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_pages (
    cache_key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    final_url TEXT,
    text TEXT NOT NULL,
    error TEXT,
    fetched_at REAL NOT NULL
);
"""

# Columns added since the first schema: a database made before them gains them when opened.
_ADDED_ROW_COLUMNS = (
    ("cache_write_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("service_tier", "TEXT"),
    ("latency_s", "REAL"),
)

FINAL_STATUSES = frozenset({"succeeded", "failed", "skipped"})


class StoreError(Exception):
    """The data directory cannot be written: its message is meant for the user."""


@dataclass(frozen=True)
class CachedResponse:
    request_hash: str
    response_id: str | None
    text: str | None
    finish_reason: str | None
    usage: Usage


@dataclass(frozen=True)
class RowRecord:
    """One row's state as the journal keeps it. Immutable: a change is a new record, so readers share them."""

    row_id: int
    status: str = "pending"  # pending | succeeded | failed | skipped
    text: str | None = None
    error: str | None = None
    retryable: bool = False
    finish_reason: str | None = None
    flags: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    attempts: int = 0
    from_cache: bool = False
    request_hash: str | None = None
    service_tier: str | None = None  # the tier the response says served it (default, flex, priority, batch)
    # Seconds from sending the request that produced this answer to its parsed response (the rate-limit
    # governor's wait not included); a packed row has its pack's time; None for batch and reused answers.
    latency_s: float | None = None


@dataclass(frozen=True)
class WebPage:
    """A website's text as read (or why it could not be), kept so a rerun does not read it again."""

    cache_key: str  # the address as tried, plus the reading options that change the text
    url: str
    final_url: str | None
    text: str
    error: str | None
    fetched_at: float  # time.time()


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    created_at: float
    updated_at: float
    status: str
    message: str | None
    meta: dict


def _why(exc: sqlite3.Error | OSError) -> str:
    """SQLite's and the OS's words for a failing disk ("unable to open database file", "[Errno 30]
    Read-only file system") in plain words."""
    if isinstance(exc, OSError) and exc.errno is not None:
        # By the error number, not the message: the message carries the path, which may say "full".
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the disk is full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "the folder is not writable"
        text = (exc.strerror or "").lower()
    else:
        text = str(exc).lower()
    if "full" in text or "no space" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text or "permission" in text or "unable to open" in text:
        return "the folder is not writable"
    return str(exc)


def _friendly(exc: sqlite3.Error, path: Path) -> StoreError:
    return StoreError(
        f"Can't save results to {path.parent}: {_why(exc)}. Free space or fix the folder, then resume."
    )


def write_transaction(
    db: sqlite3.Connection, lock: threading.Lock, statements: Iterable[tuple[str, Sequence]], path: Path
) -> None:
    """Statements in one transaction under `lock`; disk and permission problems become a StoreError."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                db.execute(sql, params)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise _friendly(exc, path) from exc


class Store:
    """Thread-safe access to one data directory's database. One connection, serialised by a lock."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(rows)")}
            for column, decl in _ADDED_ROW_COLUMNS:
                if column not in have:
                    self._db.execute(f"ALTER TABLE rows ADD COLUMN {column} {decl}")
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"Can't open the results folder {self.data_dir}: {_why(exc)}. "
                "Free space, fix the folder or choose another one, then try again."
            ) from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Iterable[tuple[str, Sequence]]) -> None:
        """Run statements in one transaction; disk and permission problems become a StoreError."""
        write_transaction(self._db, self._lock, statements, self.path)

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- runs -------------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        meta: Mapping,
        rows: Iterable[tuple[int, str | None, dict | None, Mapping[str, str], str]],
    ) -> None:
        """Create a run with its rows: (row_id, request_hash, request body, input cells, initial status)."""
        now = time.time()
        statements: list[tuple[str, Sequence]] = [
            ("INSERT INTO runs VALUES (?, ?, ?, 'pending', NULL, ?)", (run_id, now, now, json.dumps(meta)))
        ]
        for row_id, request_hash, body, cells, status in rows:
            statements.append(
                (
                    "INSERT INTO rows (run_id, row_id, request_hash, request_json, input_json, status) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        row_id,
                        request_hash,
                        json.dumps(body, ensure_ascii=False) if body is not None else None,
                        json.dumps(dict(cells), ensure_ascii=False),
                        status,
                    ),
                )
            )
        self._write(statements)

    def has_run(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def set_run_status(self, run_id: str, status: str, message: str | None = None, **meta_updates) -> None:
        statements: list[tuple[str, Sequence]] = [
            (
                "UPDATE runs SET status = ?, message = ?, updated_at = ? WHERE run_id = ?",
                (status, message, time.time(), run_id),
            )
        ]
        if meta_updates:
            meta = self.run(run_id).meta
            meta.update(meta_updates)
            statements.append(("UPDATE runs SET meta_json = ? WHERE run_id = ?", (json.dumps(meta), run_id)))
        self._write(statements)

    def run(self, run_id: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise KeyError(run_id)
        return _run_record(rows[0])

    def runs(self, limit: int = 200) -> list[RunRecord]:
        return [
            _run_record(r)
            for r in self._read("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        ]

    def delete_run(self, run_id: str) -> None:
        self._write(
            [
                (f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                for table in ("edits", "accepted", "rows", "runs")
            ]
        )

    # --- rows -------------------------------------------------------------------------------------

    def rows(self, run_id: str) -> list[RowRecord]:
        sql = (
            "SELECT row_id, status, text, error, retryable, finish_reason, flags, prompt_tokens, "
            "completion_tokens, cached_tokens, reasoning_tokens, cost_usd, attempts, from_cache, request_hash, "
            "cache_write_tokens, service_tier, latency_s "
            "FROM rows WHERE run_id = ? ORDER BY row_id"
        )
        return [_row_record(r) for r in self._read(sql, (run_id,))]

    def requests(self, run_id: str, row_ids: Iterable[int] | None = None) -> dict[int, dict]:
        """The stored request bodies of a run (all rows, or the given ones)."""
        rows = self._read(
            "SELECT row_id, request_json FROM rows WHERE run_id = ? AND request_json IS NOT NULL", (run_id,)
        )
        wanted = set(row_ids) if row_ids is not None else None
        return {r[0]: json.loads(r[1]) for r in rows if wanted is None or r[0] in wanted}

    def inputs(self, run_id: str) -> Iterator[tuple[int, dict]]:
        for row_id, cells in self._read(
            "SELECT row_id, input_json FROM rows WHERE run_id = ? ORDER BY row_id", (run_id,)
        ):
            yield row_id, json.loads(cells)

    def record(self, run_id: str, row: RowRecord, *, cache: CachedResponse | None = None) -> None:
        """Journal one row's outcome, and the paid response behind it, in one transaction."""
        self.record_many(run_id, [(row, cache)])

    def record_many(self, run_id: str, results: Iterable[tuple[RowRecord, CachedResponse | None]]) -> None:
        """Journal many rows' outcomes (and paid responses) in one transaction: a Batch API result file."""
        statements: list[tuple[str, Sequence]] = []
        now = time.time()
        for row, cache in results:
            if cache is not None:
                statements.append(
                    (
                        "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            cache.request_hash,
                            cache.response_id,
                            cache.text,
                            cache.finish_reason,
                            json.dumps(cache.usage.__dict__),
                            now,
                        ),
                    )
                )
            statements.append(_row_update(run_id, row))
        self._write(statements)

    def reset_rows(self, run_id: str, row_ids: Iterable[int]) -> None:
        """Make rows pending again (retry failed rows); their old error is dropped."""
        self._write(
            [
                (
                    "UPDATE rows SET status = 'pending', error = NULL, retryable = 0, flags = '', "
                    "updated_at = ? WHERE run_id = ? AND row_id = ?",
                    (time.time(), run_id, row_id),
                )
                for row_id in row_ids
            ]
        )

    # --- response cache ---------------------------------------------------------------------------

    def cached(self, request_hash: str) -> CachedResponse | None:
        rows = self._read(
            "SELECT request_hash, response_id, text, finish_reason, usage_json FROM responses "
            "WHERE request_hash = ?",
            (request_hash,),
        )
        if not rows:
            return None
        h, rid, text, finish, usage = rows[0]
        return CachedResponse(h, rid, text, finish, Usage(**json.loads(usage)))

    # --- user edits -------------------------------------------------------------------------------

    def save_edits(self, run_id: str, edits: Mapping[int, Mapping[str, str]]) -> None:
        """Replace the run's edits with these: {row_id: {column: value}}."""
        statements: list[tuple[str, Sequence]] = [("DELETE FROM edits WHERE run_id = ?", (run_id,))]
        for row_id, cells in edits.items():
            for column, value in cells.items():
                statements.append(("INSERT INTO edits VALUES (?, ?, ?, ?)", (run_id, row_id, column, value)))
        self._write(statements)

    def edits(self, run_id: str) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for row_id, column, value in self._read(
            "SELECT row_id, column_name, value FROM edits WHERE run_id = ?", (run_id,)
        ):
            out.setdefault(row_id, {})[column] = value
        return out

    # --- review -----------------------------------------------------------------------------------

    def accept(self, run_id: str, row_ids: Iterable[int], accepted: bool = True) -> None:
        """A reviewer read these flagged answers and keeps them as they are (or takes that back)."""
        now = time.time()
        if accepted:
            sql = "INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)"
            statements = [(sql, (run_id, int(r), now)) for r in row_ids]
        else:
            sql = "DELETE FROM accepted WHERE run_id = ? AND row_id = ?"
            statements = [(sql, (run_id, int(r))) for r in row_ids]
        self._write(statements)

    def accepted(self, run_id: str) -> frozenset[int]:
        """The rows of a run whose flagged answers a reviewer accepted."""
        return frozenset(r[0] for r in self._read("SELECT row_id FROM accepted WHERE run_id = ?", (run_id,)))

    def regenerations(self, run_id: str) -> list[str]:
        """The ids of the regenerate runs that asked this run's flagged rows again, oldest first."""
        rows = self._read(
            "SELECT run_id FROM runs WHERE json_extract(meta_json, '$.regenerates') = ? ORDER BY created_at",
            (run_id,),
        )
        return [r[0] for r in rows]

    # --- websites read (lib.web) -------------------------------------------------------------------

    def web_page(self, cache_key: str, max_age_s: float) -> WebPage | None:
        """The stored reading of a website, when it is younger than `max_age_s`."""
        rows = self._read(
            "SELECT cache_key, url, final_url, text, error, fetched_at FROM web_pages "
            "WHERE cache_key = ? AND fetched_at >= ?",
            (cache_key, time.time() - max_age_s),
        )
        return WebPage(*rows[0]) if rows else None

    def save_web_page(self, page: WebPage) -> None:
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO web_pages VALUES (?, ?, ?, ?, ?, ?)",
                    (page.cache_key, page.url, page.final_url, page.text, page.error, page.fetched_at),
                )
            ]
        )


def _row_update(run_id: str, row: RowRecord) -> tuple[str, Sequence]:
    return (
        "UPDATE rows SET status = ?, text = ?, error = ?, retryable = ?, finish_reason = ?, flags = ?, "
        "prompt_tokens = ?, completion_tokens = ?, cached_tokens = ?, reasoning_tokens = ?, cost_usd = ?, "
        "attempts = ?, from_cache = ?, updated_at = ?, cache_write_tokens = ?, service_tier = ?, latency_s = ? "
        "WHERE run_id = ? AND row_id = ?",
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
            run_id,
            row.row_id,
        ),
    )


def _row_record(r: tuple) -> RowRecord:
    (
        row_id,
        status,
        text,
        error,
        retryable,
        finish,
        flags,
        pt,
        ct,
        cached,
        reasoning,
        cost,
        attempts,
        fc,
        rh,
        written,
        tier,
        latency,
    ) = r
    return RowRecord(
        row_id=row_id,
        status=status,
        text=text,
        error=error,
        retryable=bool(retryable),
        finish_reason=finish,
        flags=tuple(f for f in flags.split(",") if f),
        usage=Usage(pt, ct, cached, reasoning, written or 0),
        cost_usd=cost,
        attempts=attempts,
        from_cache=bool(fc),
        request_hash=rh,
        service_tier=tier,
        latency_s=latency,
    )


def _run_record(r: tuple) -> RunRecord:
    return RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))
