"""The batch journal: one row per chunk of a run sent through the Batch API (lib.batch), each step
committed before the next starts (see lib/batch/journal.py for what the steps mean)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from lib.store.db import Database, Statement
from lib.store.records import Chunk

STEPS = ("prepared", "uploading", "uploaded", "creating", "submitted", "merged")
UPDATABLE = frozenset(
    {
        "step",
        "file_id",
        "batch_id",
        "batch_status",
        "completed",
        "failed",
        "total",
        "output_file_id",
        "error_file_id",
    }
)


class BatchChunks:
    """The batch_chunks table."""

    def __init__(self, db: Database):
        self._db = db

    def chunks(self, run_id: str) -> list[Chunk]:
        rows = self._db.read(
            "SELECT run_id, chunk, row_ids, sha256, bytes, filename, step, file_id, batch_id, batch_status, "
            "completed, failed, total, output_file_id, error_file_id, prepared_at "
            "FROM batch_chunks WHERE run_id = ? ORDER BY chunk",
            (run_id,),
        )
        return [Chunk(r[0], r[1], tuple(json.loads(r[2])), *r[3:]) for r in rows]

    def has_batches(self, run_id: str) -> bool:
        """Whether the run went through the Batch API: one lookup on the table's primary key."""
        return bool(self._db.read("SELECT 1 FROM batch_chunks WHERE run_id = ? LIMIT 1", (run_id,)))

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Journal freshly prepared chunks, all or none."""
        now = time.time()
        sql = (
            "INSERT INTO batch_chunks (run_id, chunk, row_ids, sha256, bytes, filename, step, prepared_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'prepared', ?, ?)"
        )
        self._db.write(
            [
                (
                    sql,
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

    def update(self, run_id: str, index: int, fields: dict[str, object]) -> None:
        """Set some columns of one chunk (step, file_id, batch_id, batch_status, counts, result files)."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"unknown chunk fields: {sorted(unknown)}")
        if "step" in fields and fields["step"] not in STEPS:
            raise ValueError(f"unknown step {fields['step']!r}")
        names = list(fields)
        sql = ", ".join(f"{n} = ?" for n in names)
        self._db.write(
            [
                (
                    f"UPDATE batch_chunks SET {sql}, updated_at = ? WHERE run_id = ? AND chunk = ?",
                    (*(fields[n] for n in names), time.time(), run_id, index),
                )
            ]
        )

    @staticmethod
    def delete_statements(run_id: str) -> list[Statement]:
        return [("DELETE FROM batch_chunks WHERE run_id = ?", (run_id,))]
