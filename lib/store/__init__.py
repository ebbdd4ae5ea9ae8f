"""Durable run journal, paid-answer cache, review, workspaces, websites read and the batch journal, in one
SQLite file under the data directory.

Every answer is committed here before the run counts it as done, so a crash, a kill -9 or a refresh
loses at most the requests in flight. Answers are also cached by a hash of the exact request (and the
endpoint), so the same request is never paid for twice, whichever run sends it.
SQLite in WAL mode with synchronous=NORMAL survives a killed process; only a power cut can drop the
last few commits. The schema changes only through numbered migrations (`migrations`), applied on open.

Parts: `db` (the connection, its lock, transactions), `migrations`, `runs` (runs and rows), `requests`
(request bodies kept compactly), `cache` (paid answers), `review` (edits, acceptances), `workspaces`,
`web` (websites read), `batch` (the batch journal), `endpoints` (model shapes and model lists);
`store` is the Store facade every caller uses.
"""

from lib.store.db import DB_NAME, write_transaction
from lib.store.errors import StoreError
from lib.store.errors import why as _why
from lib.store.migrations import SCHEMA_VERSION
from lib.store.migrations import V1_SCHEMA as _SCHEMA  # the release before migrations: tests build old files
from lib.store.records import FINAL_STATUSES, CachedResponse, Chunk, RowRecord, RunRecord, Source, WebPage
from lib.store.store import Store

__all__ = [
    "DB_NAME",
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "CachedResponse",
    "Chunk",
    "RowRecord",
    "RunRecord",
    "Source",
    "Store",
    "StoreError",
    "WebPage",
    "_SCHEMA",
    "_why",
    "write_transaction",
]
