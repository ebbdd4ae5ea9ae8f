"""The durable journal: create, record, reopen, cache, edits, and a clear error when the disk refuses."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest

from lib.cost.pricing import Usage
from lib.store import CachedResponse, RowRecord, Store, StoreError


def make_run(store: Store, run_id: str = "run1", n: int = 3) -> None:
    rows = [
        (
            i,
            f"h{i}",
            {"model": "m", "messages": [{"role": "user", "content": str(i)}]},
            {"A": f"a{i}"},
            "pending",
        )
        for i in range(1, n + 1)
    ]
    store.create_run(run_id, {"model": "m"}, rows)


def test_record_survives_reopen(data_dir):
    store = Store(data_dir)
    make_run(store)
    answer = RowRecord(
        2, status="succeeded", text="hi", usage=Usage(10, 5, 0, 0), cost_usd=0.001, request_hash="h2"
    )
    store.record("run1", answer, cache=CachedResponse("h2", "chatcmpl-1", "hi", "stop", Usage(10, 5)))
    store.close()
    reopened = Store(data_dir)
    rows = {r.row_id: r for r in reopened.rows("run1")}
    assert rows[2].status == "succeeded" and rows[2].text == "hi" and rows[2].usage == Usage(10, 5, 0, 0)
    assert rows[1].status == "pending" and rows[3].status == "pending"
    assert reopened.cached("h2").text == "hi"
    assert reopened.cached("h1") is None
    assert reopened.requests("run1", [1])[1]["messages"][0]["content"] == "1"
    assert dict(reopened.inputs("run1"))[3] == {"A": "a3"}


def test_edits_replace_and_reload(data_dir):
    store = Store(data_dir)
    make_run(store)
    store.save_edits("run1", {1: {"output": "fixed"}})
    store.save_edits("run1", {2: {"output": "other"}, 3: {"A": "x"}})
    assert store.edits("run1") == {2: {"output": "other"}, 3: {"A": "x"}}


def test_reset_rows_makes_them_pending(data_dir):
    store = Store(data_dir)
    make_run(store)
    store.record("run1", RowRecord(1, status="failed", error="boom", retryable=True))
    store.reset_rows("run1", [1])
    row = store.rows("run1")[0]
    assert (row.status, row.error, row.retryable) == ("pending", None, False)


def test_history_lists_newest_first(data_dir):
    store = Store(data_dir)
    make_run(store, "old")
    make_run(store, "new")
    store.set_run_status("new", "finished", None, cost_usd=0.5)
    runs = store.runs()
    assert [r.run_id for r in runs] == ["new", "old"]
    assert runs[0].meta["cost_usd"] == 0.5 and runs[0].status == "finished"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_folder_is_a_clear_error(data_dir):
    store = Store(data_dir)
    make_run(store)
    os.chmod(data_dir, 0o500)
    os.chmod(store.path, 0o400)
    try:
        with pytest.raises(StoreError, match="not writable"):
            store.record("run1", RowRecord(1, status="succeeded", text="x"))
    finally:
        os.chmod(data_dir, 0o700)
        os.chmod(store.path, 0o600)


def test_disk_full_is_a_clear_error_and_keeps_earlier_rows(data_dir):
    store = Store(data_dir)
    make_run(store)
    store.record("run1", RowRecord(1, status="succeeded", text="kept"))
    # SQLite's own limit stands in for a full disk: the same error path ("database or disk is full").
    store._db.execute("PRAGMA max_page_count = 1")
    with pytest.raises(StoreError, match="disk is full"):
        for i in range(200):
            store.record("run1", RowRecord(2, status="succeeded", text="x" * 100_000 + str(i)))
    store._db.execute("PRAGMA max_page_count = 1073741823")
    assert Store(data_dir).rows("run1")[0].text == "kept"


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (
            OSError(errno.EROFS, "Read-only file system", "/data/full-year/results"),
            "the folder is not writable",
        ),
        (OSError(errno.EACCES, "Permission denied", "/tmp/bt-full/x"), "the folder is not writable"),
        (OSError(errno.ENOSPC, "No space left on device", "/srv/leads"), "the disk is full"),
        (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "the folder is not writable"),
    ],
)
def test_a_failing_disk_is_named_by_what_failed_not_by_words_in_its_path(exc, why):
    from lib.store import _why

    assert _why(exc) == why
