"""The batch journal: one row per chunk of a run sent through the Batch API, in the store's SQLite file.

Each step is committed before the next one starts, so a crash at any point leaves a record of what may
have happened at OpenAI:

    prepared (row ids, content sha256, size, file name)  ->  uploading  ->  uploaded (file id)
      ->  creating  ->  submitted (batch id)  ->  batch statuses as polled  ->  merged

"uploading" and "creating" mean "the call may have gone through": a restart then looks the file up by
name (and size) or the batch up by its metadata before uploading or creating again, so a chunk is never
uploaded or batched twice. The tables live next to the store's own (CREATE TABLE IF NOT EXISTS, separate
connection): the store's schema is untouched.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lib.store import StoreError, write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_chunks (
    run_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    row_ids TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    filename TEXT NOT NULL,
    step TEXT NOT NULL,
    file_id TEXT,
    batch_id TEXT,
    batch_status TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    output_file_id TEXT,
    error_file_id TEXT,
    prepared_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, chunk)
);
"""
STEPS = ("prepared", "uploading", "uploaded", "creating", "submitted", "merged")


@dataclass(frozen=True)
class Chunk:
    """One batch's worth of a run: what was prepared and how far it got."""

    run_id: str
    index: int
    row_ids: tuple[int, ...]
    sha256: str
    nbytes: int
    filename: str
    step: str
    file_id: str | None = None
    batch_id: str | None = None
    batch_status: str | None = None
    completed: int = 0
    failed: int = 0
    total: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    prepared_at: float = 0.0

    @property
    def merged(self) -> bool:
        return self.step == "merged"


class BatchJournal:
    """Thread-safe access to the batch_chunks table of one store file."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"Can't open the batch journal in {self.path.parent}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Sequence[tuple[str, Sequence]]) -> None:
        write_transaction(self._db, self._lock, statements, self.path)

    def chunks(self, run_id: str) -> list[Chunk]:
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id, chunk, row_ids, sha256, bytes, filename, step, file_id, batch_id, batch_status, "
                "completed, failed, total, output_file_id, error_file_id, prepared_at "
                "FROM batch_chunks WHERE run_id = ? ORDER BY chunk",
                (run_id,),
            ).fetchall()
        return [Chunk(r[0], r[1], tuple(json.loads(r[2])), *r[3:]) for r in rows]

    def has_batches(self, run_id: str) -> bool:
        with self._lock:
            return bool(
                self._db.execute("SELECT 1 FROM batch_chunks WHERE run_id = ? LIMIT 1", (run_id,)).fetchall()
            )

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Journal freshly prepared chunks, all or none."""
        now = time.time()
        self._write(
            [
                (
                    "INSERT INTO batch_chunks (run_id, chunk, row_ids, sha256, bytes, filename, step, prepared_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'prepared', ?, ?)",
                    (
                        c.run_id,
                        c.index,
                        json.dumps(list(c.row_ids)),
                        c.sha256,
                        c.nbytes,
                        c.filename,
                        now,
                        now,
                    ),
                )
                for c in chunks
            ]
        )

    def update(self, run_id: str, index: int, **fields: object) -> None:
        """Set some columns of one chunk (step, file_id, batch_id, batch_status, counts, result files)."""
        allowed = {"step", "file_id", "batch_id", "batch_status", "completed", "failed", "total"}
        allowed |= {"output_file_id", "error_file_id"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown chunk fields: {sorted(unknown)}")
        if "step" in fields and fields["step"] not in STEPS:
            raise ValueError(f"unknown step {fields['step']!r}")
        names = list(fields)
        sql = ", ".join(f"{n} = ?" for n in names)
        self._write(
            [
                (
                    f"UPDATE batch_chunks SET {sql}, updated_at = ? WHERE run_id = ? AND chunk = ?",
                    (*(fields[n] for n in names), time.time(), run_id, index),
                )
            ]
        )
