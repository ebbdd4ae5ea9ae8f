"""One SQLite connection shared by the store's parts, serialised by one lock.

Every write is one transaction begun with BEGIN IMMEDIATE (SQLite's write lock taken before the first
read), so a read-then-write inside `transaction()` cannot interleave with another thread of this process
(the lock) or another process (SQLite's lock). Disk and permission problems become a StoreError.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lib.store.errors import friendly

DB_NAME = "studio.sqlite3"
PAGE = 5_000  # rows per read when a run is read in pages (memory stays flat however long the list is)

Statement = tuple[str, Sequence]


def write_transaction(
    db: sqlite3.Connection,
    lock: threading.Lock | threading.RLock,
    statements: Iterable[Statement],
    path: Path,
) -> None:
    """Statements in one transaction under `lock`; disk and permission problems become a StoreError."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                db.execute(sql, params)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(db)
            raise friendly(exc, path) from exc


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # nothing was begun, or SQLite rolled back already


class Database:
    """The connection, its lock, and the three ways the parts use it: read, write, transaction."""

    def __init__(self, path: Path):
        self.path = path
        # check_same_thread=False: the lock, not the thread, keeps one statement at a time on it.
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.RLock()  # re-entrant: a transaction's body may read through the same object

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def write(self, statements: Iterable[Statement]) -> None:
        """Statements in one transaction."""
        write_transaction(self.conn, self.lock, statements, self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside BEGIN IMMEDIATE ... COMMIT, under the lock: reads in it see what no one
        else can change until it ends. An exception rolls it back."""
        with self.lock:
            db = self.conn
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(db)
                raise friendly(exc, self.path) from exc
            except BaseException:
                _rollback(db)
                raise

    def pages(self, sql: str, params: Sequence, after: int = 0) -> Iterator[list[tuple]]:
        """A run's rows in pages of PAGE, by row id: `sql` selects row_id first and ends with
        `row_id > ? ORDER BY row_id LIMIT ?`. Each page is read under the lock; none is held between."""
        while True:
            page = self.read(sql, (*params, after, PAGE))
            if not page:
                return
            yield page
            if len(page) < PAGE:
                return
            after = page[-1][0]
