"""Numbered migrations, applied in order on open and recorded in `_migrations` (as simonw/llm keeps its own).

Each `@migration` function takes the connection inside a BEGIN IMMEDIATE transaction, and its name is
recorded in the same transaction: a crash mid-migration leaves it unapplied, and two processes opening
one folder at once apply it once (the second finds it recorded). Never edit or reorder a migration that
has shipped; add the next one. A folder whose `_migrations` names one this code does not know was written
by a newer version: it is refused, untouched.

Migration 1 is the store as the release before migrations left it (`V1_SCHEMA`, the batch journal's
table, and the row columns that release added to older files when it opened them), so it recognises
any folder that release wrote and makes a fresh one look the same; the later ones bring both to the
current shape.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from lib.store.errors import StoreError

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration (named mNNN_what, numbered in the order they are defined)."""
    MIGRATIONS.append(fn)
    return fn


# The schema the release before migrations created (lib/store.py, SCHEMA_VERSION 1), kept verbatim: tests
# build stores of that release and older ones from it.
V1_SCHEMA = """
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

# lib/batch/journal.py created this one itself, on its own connection, the first time a batch ran.
V1_BATCH_SCHEMA = """
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

# Row columns that release added (ALTER TABLE) to a file made before them, when it opened it.
V1_ADDED_ROW_COLUMNS = (
    ("cache_write_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("service_tier", "TEXT"),
    ("latency_s", "REAL"),
)


def _script(db: sqlite3.Connection, script: str) -> None:
    """Statements one by one: executescript would commit the migration's transaction half-way."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


@migration
def m001_release_one(db: sqlite3.Connection) -> None:
    """The store as the release before migrations wrote it, whatever columns a file of it has."""
    _script(db, V1_SCHEMA)
    _script(db, V1_BATCH_SCHEMA)
    have = _columns(db, "rows")
    for column, decl in V1_ADDED_ROW_COLUMNS:
        if column not in have:
            db.execute(f"ALTER TABLE rows ADD COLUMN {column} {decl}")


@migration
def m002_compact_requests(db: sqlite3.Connection) -> None:
    """A run's request bodies as their shared part, kept once per distinct value, plus each row's own last
    message (its text when it is a plain user turn, else the message as JSON). Older rows keep
    request_json, which is still read."""
    db.execute(
        "CREATE TABLE request_parts (run_id TEXT NOT NULL, part INTEGER NOT NULL, body_json TEXT NOT NULL, "
        "PRIMARY KEY (run_id, part))"
    )
    db.execute("ALTER TABLE rows ADD COLUMN request_part INTEGER")
    db.execute("ALTER TABLE rows ADD COLUMN request_text TEXT")
    db.execute("ALTER TABLE rows ADD COLUMN request_last TEXT")


@migration
def m003_model_shapes(db: sqlite3.Connection) -> None:
    """What a server's 400 taught the client about a model's request shape, per endpoint."""
    db.execute(
        "CREATE TABLE model_shapes (endpoint TEXT, model TEXT, fixes_json TEXT NOT NULL, "
        "learned_at REAL NOT NULL, note TEXT, PRIMARY KEY (endpoint, model))"
    )


@migration
def m004_endpoint_models(db: sqlite3.Connection) -> None:
    """An endpoint's GET /v1/models answer, kept for a while."""
    db.execute(
        "CREATE TABLE endpoint_models (endpoint TEXT PRIMARY KEY, fetched_at REAL NOT NULL, "
        "models_json TEXT NOT NULL)"
    )


@migration
def m005_web_search_sources(db: sqlite3.Connection) -> None:
    """Web research (issue 24): each row's billed web search calls and the pages its answer cites, and the
    cited pages kept with a paid answer, so an answer reused from the cache shows its sources too."""
    db.execute("ALTER TABLE rows ADD COLUMN web_search_calls INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE rows ADD COLUMN sources_json TEXT")
    db.execute("ALTER TABLE responses ADD COLUMN sources_json TEXT")


SCHEMA_VERSION = len(MIGRATIONS)


def applied(db: sqlite3.Connection) -> list[str]:
    """The migrations recorded in this file, in the order they were applied ([] before the first)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchall():
        return []
    return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(db: sqlite3.Connection, where: str) -> list[str]:
    """Apply the migrations this file lacks, each in its own transaction; returns the names applied now.

    A file that records a migration this code does not know is refused (StoreError) before anything is
    written: it was made by a newer version, whose data this one could misread or damage.
    """
    known = [m.__name__ for m in MIGRATIONS]
    unknown = [name for name in applied(db) if name not in known]
    if unknown:
        raise StoreError(
            f"The results folder {where} was written by a newer version of Lead Enrichment Studio "
            f"(its store has changes this version does not know: {', '.join(unknown)}). Update the "
            "studio, or choose another data folder. Nothing in it was changed."
        )
    done: list[str] = []
    for number, step in enumerate(MIGRATIONS, 1):
        if step.__name__ in applied(db):  # the common case, read without taking the write lock
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            # Asked again under the write lock: another process may have applied it meanwhile.
            if not db.execute("SELECT 1 FROM _migrations WHERE name = ?", (step.__name__,)).fetchall():
                step(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (step.__name__, time.time()))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(number),))
                done.append(step.__name__)
            db.execute("COMMIT")
        except BaseException:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back already
            raise
    return done
