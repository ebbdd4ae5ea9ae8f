"""What a reviewer did to a run's answers: cell edits, and flagged answers accepted as they are."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from lib.store.db import Database, Statement


class Review:
    """The edits and accepted tables."""

    def __init__(self, db: Database):
        self._db = db

    def save_edits(self, run_id: str, edits: Mapping[int, Mapping[str, str]]) -> None:
        """Replace the run's edits with these: {row_id: {column: value}}."""
        statements: list[Statement] = [("DELETE FROM edits WHERE run_id = ?", (run_id,))]
        for row_id, cells in edits.items():
            for column, value in cells.items():
                statements.append(("INSERT INTO edits VALUES (?, ?, ?, ?)", (run_id, row_id, column, value)))
        self._db.write(statements)

    def edits(self, run_id: str) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for row_id, column, value in self._db.read(
            "SELECT row_id, column_name, value FROM edits WHERE run_id = ? ORDER BY row_id, column_name",
            (run_id,),
        ):
            out.setdefault(row_id, {})[column] = value
        return out

    def accept(self, run_id: str, row_ids: Iterable[int], accepted: bool = True) -> None:
        """A reviewer read these flagged answers and keeps them as they are (or takes that back)."""
        now = time.time()
        if accepted:
            sql = "INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)"
            statements = [(sql, (run_id, int(r), now)) for r in row_ids]
        else:
            sql = "DELETE FROM accepted WHERE run_id = ? AND row_id = ?"
            statements = [(sql, (run_id, int(r))) for r in row_ids]
        self._db.write(statements)

    def accepted(self, run_id: str) -> frozenset[int]:
        """The rows of a run whose flagged answers a reviewer accepted."""
        rows = self._db.read("SELECT row_id FROM accepted WHERE run_id = ?", (run_id,))
        return frozenset(r[0] for r in rows)

    @staticmethod
    def delete_statements(run_id: str) -> list[Statement]:
        return [(f"DELETE FROM {table} WHERE run_id = ?", (run_id,)) for table in ("edits", "accepted")]
