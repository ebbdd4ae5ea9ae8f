"""The store's numbered migrations: a data folder written by the release before them opens with nothing
lost; opening twice changes nothing; a fresh folder gets the newest shape; a newer folder is refused;
meta updates are atomic; request bodies are kept compactly and come back exactly."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from lib import batch
from lib.engine import Endpoint, request_hash
from lib.engine.resume import continue_run
from lib.store import DB_NAME, SCHEMA_VERSION, Chunk, RowRecord, Store, StoreError, WebPage
from lib.store.migrations import MIGRATIONS, V1_ADDED_ROW_COLUMNS, V1_SCHEMA
from lib.workspace import Workspaces

FIXTURE = Path(__file__).parent / "fixtures" / "datadir_v1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
ALL = [m.__name__ for m in MIGRATIONS]


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A copy of the folder today's release wrote (opening migrates it: never the fixture itself)."""
    folder = tmp_path / "datadir_v1"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("*.json", "*.md"))
    return folder


# Fields records gained after the fixture was written, at the value every older row reads back with.
LATER_DEFAULTS = {"sources": [], "web_search_calls": 0}


def plain(value) -> object:
    """A value as expected.json holds it (tuples as lists, dataclasses as dicts, int keys as text), without
    the fields added since (LATER_DEFAULTS) where they hold their default."""

    def drop(obj):
        if isinstance(obj, dict):
            return {
                k: drop(v) for k, v in obj.items() if not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])
            }
        if isinstance(obj, list):
            return [drop(v) for v in obj]
        return obj

    return drop(json.loads(json.dumps(value, ensure_ascii=False, default=dataclasses.asdict)))


def digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


def schema(path: Path) -> dict[str, list[tuple]]:
    """Each table's columns (name, type, not null, default, primary key position), in order."""
    db = sqlite3.connect(path)
    try:
        tables = [
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: [tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()


# --- the folder today's release wrote ---------------------------------------------------------------------


def test_a_folder_of_the_release_before_migrations_reads_back_exactly(v1):
    store = Store(v1)
    try:
        assert store.migrations() == ALL
        assert {r.run_id for r in store.runs()} == set(EXPECTED["runs"])
        for run_id, want in EXPECTED["runs"].items():
            assert plain(store.run(run_id)) == want["record"], run_id
            assert plain(store.rows(run_id)) == want["rows"], run_id
            assert plain(list(store.iter_rows(run_id))) == want["rows"], run_id
            bodies = store.requests(run_id)
            assert {str(k): digest(b) for k, b in bodies.items()} == want["requests"], run_id
            base_url = want["record"]["meta"].get("base_url")
            hashes = {r.row_id: r.request_hash for r in store.rows(run_id)}
            assert all(request_hash(b, base_url) == hashes[k] for k, b in bodies.items()), run_id
            assert {str(k): v for k, v in store.inputs(run_id)} == want["inputs"], run_id
            assert plain(store.edits(run_id)) == want["edits"], run_id
            assert sorted(store.accepted(run_id)) == want["accepted"], run_id
            assert store.regenerations(run_id) == want["regenerations"], run_id
            assert plain(store.batch_chunks(run_id)) == want["batch_chunks"], run_id
            assert batch.is_batch_run(store, run_id) is bool(want["batch_chunks"])
        for h, want in EXPECTED["responses"].items():
            assert plain(store.cached(h)) == want, h
        for key, want in EXPECTED["web_pages"].items():
            assert plain(store.web_page(key, 1e12)) == want, key
        spaces = Workspaces(store)
        # settings added since that release read as their defaults; everything it wrote reads back as written
        added = {
            "reasoning_effort": None,
            "reasoning_effort_set": False,
            "api": "auto",
            "max_tool_calls": None,
        }
        draft_added = {
            "reasoning_effort": None,
            "tools": [],
            "max_tool_calls": None,
            "search_context_size": None,
            "user_location": [],
            "one_answer_per": None,
        }
        read = [json.loads(ws.to_json()) for ws in spaces.recent()]
        for ws in read:
            for key, default in added.items():
                assert ws["settings"].pop(key) == default
            if ws.get("draft"):
                for key, default in draft_added.items():
                    assert ws["draft"].pop(key, default) == default
                assert ws["draft"]["checks"].pop("require_sources", False) is False
        assert read == EXPECTED["workspaces"]
        for ws_digest, sha in EXPECTED["uploads"].items():
            assert hashlib.sha256(spaces.file_bytes(ws_digest) or b"").hexdigest() == sha
    finally:
        store.close()


def test_what_the_fixture_holds_is_what_its_readme_says():
    """The cases the migration must carry over are really in the file (a regenerated fixture keeps them)."""
    runs = EXPECTED["runs"]
    finished = runs["live-finished"]
    statuses = {r["status"] for r in finished["rows"]}
    assert {"succeeded", "failed"} <= statuses and finished["edits"]
    assert any(f.startswith("quality:") for r in finished["rows"] for f in r["flags"])
    (attempt,) = finished["regenerations"]
    assert runs[attempt]["record"]["meta"]["kind"] == "regenerate"
    assert runs["live-cached"]["accepted"] and any(r["from_cache"] for r in runs["live-cached"]["rows"])
    assert all("packed" in r["flags"] for r in runs["live-packed"]["rows"])
    paused = runs["live-paused"]
    assert paused["record"]["status"] == "paused"
    assert {r["status"] for r in paused["rows"]} == {"succeeded", "pending"}
    assert len(runs["batch-run"]["batch_chunks"]) == 2
    assert len(EXPECTED["workspaces"]) == 2 and EXPECTED["uploads"]
    assert {p["error"] is None for p in EXPECTED["web_pages"].values()} == {True, False}


def test_the_paused_run_of_the_old_folder_resumes_and_sends_only_its_pending_rows(v1, sim):
    store = Store(v1)
    pending = {r.row_id for r in store.rows("live-paused") if r.status == "pending"}
    job = continue_run(store, "live-paused", Endpoint("sk-test-migrated-0001", sim.url), budget_usd=1.0)
    assert job.wait(60), job.snapshot()
    assert job.snapshot().status == "finished"
    assert sorted(int(e["row_id"]) for e in sim.ledger()) == sorted(pending)
    assert {r.status for r in store.rows("live-paused")} == {"succeeded"}
    store.close()


# --- migrations: once, in order, and only forward -------------------------------------------------------------


def test_opening_twice_applies_nothing_the_second_time(v1):
    Store(v1).close()
    db = sqlite3.connect(v1 / DB_NAME)
    first = db.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall()
    before = schema(v1 / DB_NAME)
    db.close()
    store = Store(v1)
    assert store.migrations() == ALL
    store.close()
    db = sqlite3.connect(v1 / DB_NAME)
    assert db.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall() == first
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.close()
    assert schema(v1 / DB_NAME) == before


def test_a_fresh_folder_gets_the_newest_schema_the_same_as_a_migrated_one(v1, data_dir):
    Store(data_dir).close()
    Store(v1).close()
    fresh, migrated = schema(data_dir / DB_NAME), schema(v1 / DB_NAME)
    assert fresh == migrated
    assert {"_migrations", "request_parts", "model_shapes", "endpoint_models", "batch_chunks"} <= set(fresh)
    assert Store(data_dir).migrations() == ALL


def test_a_folder_from_a_newer_version_is_refused_untouched(data_dir):
    Store(data_dir).close()
    db = sqlite3.connect(data_dir / DB_NAME)
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', 0)")
    db.commit()
    db.close()
    before = schema(data_dir / DB_NAME)
    with pytest.raises(StoreError, match="newer version") as refused:
        Store(data_dir)
    assert "m999_from_the_future" in str(refused.value) and str(data_dir) in str(refused.value)
    assert schema(data_dir / DB_NAME) == before


@pytest.mark.parametrize("missing", [c for c, _ in V1_ADDED_ROW_COLUMNS] + ["all"])
def test_a_file_older_than_the_columns_that_release_added_gains_them(data_dir, missing):
    old = V1_SCHEMA
    for column, decl in V1_ADDED_ROW_COLUMNS:
        if missing in (column, "all"):
            old = old.replace(f"    {column} {decl},\n", "")
    assert old != V1_SCHEMA
    db = sqlite3.connect(data_dir / DB_NAME)
    db.executescript(old)
    db.execute("INSERT INTO runs VALUES ('r', 0, 0, 'pending', NULL, '{}')")
    db.execute(
        "INSERT INTO rows (run_id, row_id, request_json, input_json, status) VALUES ('r', 1, ?, '{}', 'pending')",
        (json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),),
    )
    db.commit()
    db.close()
    store = Store(data_dir)
    assert store.migrations() == ALL
    assert store.requests("r") == {1: {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
    store.record("r", RowRecord(1, status="succeeded", text="x", service_tier="flex", latency_s=0.5))
    assert (store.rows("r")[0].service_tier, store.rows("r")[0].latency_s) == ("flex", 0.5)
    store.close()


# --- meta updates are atomic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["set_run_status", "update_run_meta", "both"])
def test_two_threads_updating_different_meta_keys_both_land(data_dir, how):
    store = Store(data_dir)
    store.create_run("r", {"model": "m"}, [])
    n = 150
    start = threading.Barrier(2)

    def writer(prefix: str, method: str) -> None:
        start.wait()
        for i in range(n):
            if method == "set_run_status":
                store.set_run_status("r", "running", None, **{f"{prefix}{i}": i})
            else:
                store.update_run_meta("r", **{f"{prefix}{i}": i})

    methods = {"both": ("set_run_status", "update_run_meta")}.get(how, (how, how))
    threads = [threading.Thread(target=writer, args=(p, m)) for p, m in zip("ab", methods, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = store.run("r").meta
    lost = [f"{p}{i}" for p in "ab" for i in range(n) if meta.get(f"{p}{i}") != i]
    assert not lost, f"{len(lost)} meta updates lost, e.g. {lost[:5]}"
    assert meta["model"] == "m"
    store.close()


def test_updating_the_meta_leaves_the_status_and_a_missing_run_is_a_key_error(data_dir):
    store = Store(data_dir)
    store.create_run("r", {"model": "m", "base_url": "http://a/v1"}, [])
    store.set_run_status("r", "paused", "Budget reached.")
    store.update_run_meta("r", base_url=None, cost_usd=0.25)
    run = store.run("r")
    assert (run.status, run.message) == ("paused", "Budget reached.")
    assert run.meta == {"model": "m", "base_url": None, "cost_usd": 0.25}
    with pytest.raises(KeyError):
        store.update_run_meta("nope", x=1)
    store.close()


# --- request bodies, compactly -------------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You write one line. " * 50}
SHOT = [{"role": "user", "content": "Example in"}, {"role": "assistant", "content": "Example out"}]
BODIES = [
    # (case, the body a row sent)
    ("plain user turn", {"model": "m", "messages": [SYSTEM, *SHOT, {"role": "user", "content": "Row ü 1"}]}),
    (
        "keys after messages, in their order",
        {"messages": [SYSTEM, {"role": "user", "content": "x"}], "model": "m", "response_format": {"type": "json_object"},
         "service_tier": "flex", "max_tokens": 80},
    ),
    ("a named user turn", {"model": "m", "messages": [SYSTEM, {"role": "user", "content": "x", "name": "lead"}]}),
    ("content before role", {"model": "m", "messages": [{"content": "x", "role": "user"}]}),
    ("content parts", {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
    ("ends with the assistant", {"model": "m", "messages": [SYSTEM, {"role": "assistant", "content": "pre"}]}),
    ("an empty user turn", {"model": "m", "messages": [{"role": "user", "content": ""}]}),
    ("no messages", {"model": "m", "input": "responses-style"}),
    ("empty messages", {"model": "m", "messages": []}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body"), BODIES, ids=[c for c, _ in BODIES])
def test_a_request_body_comes_back_exactly_with_its_keys_in_order(data_dir, case, body):
    store = Store(data_dir)
    store.create_run(
        "r", {}, [(1, "h1", body, {"A": "a"}, "pending"), (2, None, None, {"A": "b"}, "skipped")]
    )
    back = store.requests("r")
    assert list(back) == [1]
    assert json.dumps(back[1], ensure_ascii=False) == json.dumps(body, ensure_ascii=False), case
    store.close()


def test_the_shared_part_is_kept_once_per_distinct_value(data_dir):
    def body(system: str, row: int) -> dict:
        return {"model": "m", "messages": [{"role": "system", "content": system}, *SHOT, {"role": "user", "content": f"Row {row}"}]}  # fmt: skip

    rows = [
        (i, f"h{i}", body("A" * 2000 if i % 3 else "B" * 2000, i), {"n": str(i)}, "pending")
        for i in range(1, 301)
    ]
    store = Store(data_dir)
    store.create_run("r", {}, rows)
    assert store.requests("r") == {i: b for i, _, b, _, _ in rows}
    assert store.requests("r", [7, 9, 999]) == {7: rows[6][2], 9: rows[8][2]}
    db = sqlite3.connect(data_dir / DB_NAME)
    assert db.execute("SELECT COUNT(*) FROM request_parts WHERE run_id = 'r'").fetchone() == (2,)
    assert db.execute("SELECT COUNT(*) FROM rows WHERE request_json IS NOT NULL").fetchone() == (0,)
    db.close()
    store.delete_run("r")
    assert store.requests("r") == {}
    store.close()


# --- the batch journal and the tables issue 21 needs -----------------------------------------------------------


def test_the_batch_journal_is_the_stores_and_asking_whether_a_run_is_batched_opens_nothing(
    data_dir, monkeypatch
):
    store = Store(data_dir)
    store.create_run("b", {"mode": "batch"}, [])
    store.add_batch_chunks([Chunk("b", 0, (1, 2), "sha", 10, "b-0.jsonl", "prepared")])
    store.update_batch_chunk("b", 0, step="submitted", batch_id="batch_1")
    with pytest.raises(ValueError, match="unknown step"):
        store.update_batch_chunk("b", 0, step="flying")
    opened = []
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: opened.append(a))
    assert [batch.is_batch_run(store, r) for r in ("b", "other") for _ in range(50)] == [True] * 50 + [
        False
    ] * 50
    assert opened == []
    (chunk,) = store.batch_chunks("b")
    assert (chunk.row_ids, chunk.step, chunk.batch_id) == ((1, 2), "submitted", "batch_1")
    store.delete_run("b")
    assert not store.has_batches("b")
    store.close()


def test_model_shapes_and_model_listings_are_kept_per_endpoint(data_dir):
    store = Store(data_dir)
    assert store.shape_fixes("http://a/v1", "gpt-6-luna") is None
    store.save_shape_fixes(
        "http://a/v1", "gpt-6-luna", {"max_tokens": "max_completion_tokens"}, "400 said so"
    )
    store.save_shape_fixes("http://b/v1", "gpt-6-luna", {"temperature": None}, None)
    store.save_shape_fixes(
        "http://a/v1", "gpt-6-luna", {"max_tokens": "max_completion_tokens", "temperature": None}, None
    )
    assert store.shape_fixes("http://a/v1", "gpt-6-luna") == {
        "max_tokens": "max_completion_tokens",
        "temperature": None,
    }
    assert store.shape_fixes("http://b/v1", "gpt-6-luna") == {"temperature": None}
    models = [{"id": "gpt-6-luna", "shutdown_date": None}, {"id": "gpt-4o", "shutdown_date": "2027-01-14"}]
    store.save_models_listing("http://a/v1", models)
    store.close()
    store = Store(data_dir)
    assert store.models_listing("http://a/v1", 24 * 3600) == models
    assert store.models_listing("http://a/v1", -1) is None  # older than asked for
    assert store.models_listing("http://b/v1", 24 * 3600) is None
    store.close()


def test_a_web_page_and_a_workspace_go_through_public_methods(data_dir):
    store = Store(data_dir)
    store.save_web_page(WebPage("k", "http://x", None, "text", None, 1.0))
    assert store.web_page("k", 1e12) == WebPage("k", "http://x", None, "text", None, 1.0)
    store.save_workspace("w1", 1.0, 2.0, json.dumps({"id": "w1", "lead": {"digest": "d" * 64}}))
    assert store.upload_in_use("d" * 64) and not store.upload_in_use("e" * 64)
    assert store.recent_workspaces_json(5) == [store.workspace_json("w1")]
    store.delete_workspace("w1")
    assert store.workspace_json("w1") is None and not store.upload_in_use("d" * 64)
    store.close()
