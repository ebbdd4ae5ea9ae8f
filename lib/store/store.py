"""The Store: one data directory's database behind one connection, its parts reached through one facade.

Every caller holds a Store and calls its methods; the parts (runs and rows, the paid-answer cache,
review, workspaces, websites read, the batch journal, what endpoints taught) each own their tables.
A change that spans parts (an answer and the paid response behind it; deleting a run) is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from lib.store import migrations
from lib.store.batch import BatchChunks
from lib.store.cache import Answers, keep
from lib.store.db import DB_NAME, Database
from lib.store.endpoints import Endpoints
from lib.store.errors import StoreError, why
from lib.store.records import CachedResponse, Chunk, RowRecord, RunRecord, WebPage
from lib.store.review import Review
from lib.store.runs import NewRow, Runs, row_update
from lib.store.web import WebPages
from lib.store.workspaces import WorkspaceRows


class Store:
    """Thread-safe access to one data directory's database. One connection, serialised by a lock."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._database = Database(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise self._cannot_open(exc) from exc
        try:
            migrations.migrate(self._database.conn, str(self.data_dir))
        except StoreError:
            self._database.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            self._database.close()
            raise self._cannot_open(exc) from exc
        db = self._database
        self._runs, self._answers, self._review = Runs(db), Answers(db), Review(db)
        self._workspaces, self._web, self._batches = WorkspaceRows(db), WebPages(db), BatchChunks(db)
        self._endpoints = Endpoints(db)

    def _cannot_open(self, exc: sqlite3.Error | OSError) -> StoreError:
        return StoreError(
            f"Can't open the results folder {self.data_dir}: {why(exc)}. "
            "Free space, fix the folder or choose another one, then try again."
        )

    def close(self) -> None:
        self._database.close()

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection (tests stand a failing disk in for it)."""
        return self._database.conn

    @_db.setter
    def _db(self, conn: sqlite3.Connection) -> None:
        self._database.conn = conn

    def migrations(self) -> list[str]:
        """The migrations this folder's database has had, in order."""
        with self._database.lock:
            return migrations.applied(self._database.conn)

    # --- runs -------------------------------------------------------------------------------------

    def create_run(self, run_id: str, meta: Mapping, rows: Iterable[NewRow]) -> None:
        """Create a run with its rows: (row_id, request_hash, request body, input cells, initial status)."""
        self._runs.create(run_id, meta, rows)

    def has_run(self, run_id: str) -> bool:
        return self._runs.exists(run_id)

    def set_run_status(self, run_id: str, status: str, message: str | None = None, **meta_updates) -> None:
        """The run's status and message, and any meta keys given, in one write transaction."""
        self._runs.set_status(run_id, status, message, meta_updates)

    def update_run_meta(self, run_id: str, **meta_updates) -> None:
        """Set these meta keys of a run atomically (its status untouched; other keys as they are now)."""
        self._runs.update_meta(run_id, meta_updates)

    def run(self, run_id: str) -> RunRecord:
        return self._runs.get(run_id)

    def runs(self, limit: int = 200) -> list[RunRecord]:
        """The latest runs, newest first."""
        return self._runs.recent(limit)

    def delete_run(self, run_id: str) -> None:
        """A run, its rows, its review and its batch journal (answers stay in the paid-answer cache)."""
        self._database.write(
            [
                *self._review.delete_statements(run_id),
                *self._batches.delete_statements(run_id),
                *self._runs.delete_statements(run_id),
            ]
        )

    def regenerations(self, run_id: str) -> list[str]:
        """The ids of the regenerate runs that asked this run's flagged rows again, oldest first."""
        return self._runs.regenerations(run_id)

    # --- rows -------------------------------------------------------------------------------------

    def rows(self, run_id: str) -> list[RowRecord]:
        return self._runs.rows(run_id)

    def iter_rows(self, run_id: str) -> Iterator[RowRecord]:
        """The rows in row order, read a page at a time (memory does not grow with the list)."""
        return self._runs.iter_rows(run_id)

    def requests(self, run_id: str, row_ids: Iterable[int] | None = None) -> dict[int, dict]:
        """The stored request bodies of a run (all rows, or the given ones), exactly as they were sent."""
        return self._runs.requests(run_id, row_ids)

    def inputs(self, run_id: str) -> Iterator[tuple[int, dict]]:
        return self._runs.inputs(run_id)

    def record(self, run_id: str, row: RowRecord, *, cache: CachedResponse | None = None) -> None:
        """Journal one row's outcome, and the paid response behind it, in one transaction."""
        self.record_many(run_id, [(row, cache)])

    def record_many(self, run_id: str, results: Iterable[tuple[RowRecord, CachedResponse | None]]) -> None:
        """Journal many rows' outcomes (and paid responses) in one transaction: a Batch API result file."""
        statements = []
        for row, cache in results:
            if cache is not None:
                statements.append(keep(cache))
            statements.append(row_update(run_id, row))
        self._database.write(statements)

    def reset_rows(self, run_id: str, row_ids: Iterable[int]) -> None:
        """Make rows pending again (retry failed rows); their old error is dropped."""
        self._database.write(self._runs.reset_statements(run_id, row_ids))

    # --- paid-answer cache ------------------------------------------------------------------------

    def cached(self, request_hash: str) -> CachedResponse | None:
        return self._answers.get(request_hash)

    # --- review: edits and acceptances -------------------------------------------------------------

    def save_edits(self, run_id: str, edits: Mapping[int, Mapping[str, str]]) -> None:
        """Replace the run's edits with these: {row_id: {column: value}}."""
        self._review.save_edits(run_id, edits)

    def edits(self, run_id: str) -> dict[int, dict[str, str]]:
        return self._review.edits(run_id)

    def accept(self, run_id: str, row_ids: Iterable[int], accepted: bool = True) -> None:
        """A reviewer read these flagged answers and keeps them as they are (or takes that back)."""
        self._review.accept(run_id, row_ids, accepted)

    def accepted(self, run_id: str) -> frozenset[int]:
        """The rows of a run whose flagged answers a reviewer accepted."""
        return self._review.accepted(run_id)

    # --- workspaces (lib.workspace owns their JSON) -------------------------------------------------

    def save_workspace(self, ws_id: str, created_at: float, updated_at: float, data_json: str) -> None:
        self._workspaces.save(ws_id, created_at, updated_at, data_json)

    def workspace_json(self, ws_id: str) -> str | None:
        return self._workspaces.get(ws_id)

    def recent_workspaces_json(self, limit: int) -> list[str]:
        """The latest workspaces' JSON, most recently saved first."""
        return self._workspaces.recent(limit)

    def delete_workspace(self, ws_id: str) -> None:
        self._workspaces.delete(ws_id)

    def upload_in_use(self, digest: str) -> bool:
        """Whether any workspace's lead file is the upload with this digest."""
        return self._workspaces.upload_in_use(digest)

    # --- websites read (lib.web) -------------------------------------------------------------------

    def web_page(self, cache_key: str, max_age_s: float) -> WebPage | None:
        """The stored reading of a website, when it is younger than `max_age_s`."""
        return self._web.get(cache_key, max_age_s)

    def save_web_page(self, page: WebPage) -> None:
        self._web.save(page)

    # --- the batch journal (lib.batch) ---------------------------------------------------------------

    def batch_chunks(self, run_id: str) -> list[Chunk]:
        return self._batches.chunks(run_id)

    def has_batches(self, run_id: str) -> bool:
        """Whether the run went through the Batch API (cheap: one indexed lookup)."""
        return self._batches.has_batches(run_id)

    def add_batch_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Journal freshly prepared chunks, all or none."""
        self._batches.add(chunks)

    def update_batch_chunk(self, run_id: str, index: int, **fields: object) -> None:
        """Set some columns of one chunk (step, file_id, batch_id, batch_status, counts, result files)."""
        self._batches.update(run_id, index, fields)

    # --- what endpoints taught (issue 21) -------------------------------------------------------------

    def shape_fixes(self, endpoint: str, model: str) -> dict | None:
        """What a server's 400 taught about this model's request shape on this endpoint, if anything."""
        return self._endpoints.shape_fixes(endpoint, model)

    def save_shape_fixes(self, endpoint: str, model: str, fixes: dict, note: str | None = None) -> None:
        self._endpoints.save_shape_fixes(endpoint, model, fixes, note)

    def models_listing(self, endpoint: str, max_age_s: float) -> list[dict] | None:
        """The endpoint's GET /v1/models answer, when it was fetched less than `max_age_s` ago."""
        return self._endpoints.models_listing(endpoint, max_age_s)

    def save_models_listing(self, endpoint: str, models: list[dict]) -> None:
        self._endpoints.save_models_listing(endpoint, models)
