"""The store's size per row: a 10,000-row icebreaker run journalled and answered as the live engine does it.

    .venv/bin/python -m bench.bench_store                 # 10,000 rows
    .venv/bin/python -m bench.bench_store --rows 100000

Plans the run with the shipped icebreaker prompt (`plan_run`: one request body per row, the system prompt
and three few-shot turns in each), journals it (`Store.create_run`), then records every row's answer with
its paid response (`Store.record`, one transaction per row, as the engine's workers do), the answer being
the simulator's reply to that request. No network: the store is what is measured. Reported after the
store is closed (the WAL checkpointed): the file's bytes per row, each table's (SQLite's `dbstat`), and
the answer's own bytes, which the row and the paid-answer cache each keep once.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.bench_quote import make_rows
from lib.cost.pricing import Usage
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.library import PromptLibrary
from lib.sim import expected_reply
from lib.store import DB_NAME, CachedResponse, RowRecord, Store


def measure(n: int, data_dir: Path) -> dict:
    """Journal and answer an n-row run; the store's size, by table, per row."""
    df = pd.DataFrame(make_rows(n))
    df.index = pd.RangeIndex(1, n + 1, name="row_id")
    spec = PromptLibrary().load("icebreaker")
    plan = plan_run(df, spec, RunOptions(model="gpt-4o-mini"), base_url="http://127.0.0.1:9/v1")
    store = Store(data_dir)
    start = time.perf_counter()
    store.create_run(
        plan.run_id,
        dict(plan.meta),
        [(i.row_id, i.request_hash, i.body, plan.inputs[i.row_id], "pending") for i in plan.items],
    )
    created_s = time.perf_counter() - start
    answer_bytes = 0
    start = time.perf_counter()
    for item in plan.items:
        text = expected_reply(item.body["messages"], item.body["model"])
        answer_bytes += len(text.encode())
        usage = Usage(item.prompt_tokens, 40)
        row = RowRecord(
            item.row_id, "succeeded", text=text, usage=usage, cost_usd=1e-4, attempts=1,
            request_hash=item.request_hash, latency_s=0.5,
        )  # fmt: skip
        cache = CachedResponse(item.request_hash, f"chatcmpl-{item.row_id}", text, "stop", usage)
        store.record(plan.run_id, row, cache=cache)
    recorded_s = time.perf_counter() - start
    bodies = store.requests(plan.run_id)
    assert len(bodies) == n and bodies[1] == plan.items[0].body, "the stored request is not the sent one"
    store.close()
    path = data_dir / DB_NAME
    db = sqlite3.connect(path)
    tables = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
    db.close()
    return {
        "rows": n,
        "file": path.stat().st_size,
        "tables": tables,
        "answer": answer_bytes,
        "create_s": created_s,
        "record_s": recorded_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        m = measure(args.rows, Path(tmp))
    n = m["rows"]
    print(f"rows: {n:,}  file: {m['file']:,} bytes  {m['file'] / n:,.0f} bytes/row")
    print(f"answer text: {m['answer'] / n:,.0f} bytes/row (kept twice: the row and the paid-answer cache)")
    beyond = (m["file"] - 2 * m["answer"]) / n
    print(f"beyond the answer: {beyond:,.0f} bytes/row")
    print(f"create_run {m['create_s']:.2f} s, record {m['record_s']:.2f} s")
    for name, size in m["tables"].items():
        print(f"  {name:32} {size:>12,} bytes  {size / n:>8,.0f}/row")


if __name__ == "__main__":
    main()
