"""What one redraw of the run page's live panel costs the server on a 50,000-row run.

    .venv/bin/python -m bench.bench_live_panel [--rows 50000] [--write-readme]

The panel (pages/run.py `panel`) redraws every 500 ms while a run is active. Each redraw takes a
snapshot, builds the cost chart, applies the review queue's rules to the rows (acceptances, edits checked
again, the list-level checks: lib.engine.regenerate.review_rows), rebuilds the results grid for the rows
that changed, puts the flagged rows first, and hands both to Streamlit, which serialises the grid to
Arrow and the chart to JSON for the browser. One answer in ten is flagged. This measures those
steps on a job mid-run (about 200 rows finishing between two redraws, i.e. 400 rows/s) and reports the
total as a share of the 500 ms interval. The browser's own rendering is not included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from streamlit.dataframe_util import convert_pandas_df_to_arrow_bytes

from bench.readme import replace_section
from lib import charts, engine
from lib.cost.pricing import Usage
from lib.engine import regenerate
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.library import PromptLibrary
from lib.store import RowRecord, Store
from lib.views import live_table, review
from tests.leadfiles import apollo_rows

INTERVAL_MS = 500.0
PER_TICK = 200  # rows finishing between two redraws at 400 rows/s
README = Path(__file__).with_name("README.md")
SECTION = "## Live panel redraw"


def job_mid_run(rows: int, data_dir: str) -> engine.Job:
    table = apollo_rows(rows)
    df = pd.DataFrame(table[1:], columns=table[0])
    df.index = pd.RangeIndex(1, rows + 1, name="row_id")
    spec = PromptLibrary().load("icebreaker")
    plan = plan_run(
        df, spec, RunOptions(model="gpt-4o-mini", max_tokens=80), base_url="http://bench.invalid/v1"
    )
    job = engine.Job(
        plan,
        endpoint=Endpoint(api_key="sk-bench", base_url="http://bench.invalid/v1"),
        settings=engine.RunSettings(workers=200),
        store=Store(data_dir),
        governor=Governor(),
    )
    job._open()  # journal the run without starting workers: the bench feeds answers itself
    job.status = "running"
    return job


def finish_rows(job: engine.Job, row_ids: range) -> None:
    for row_id in row_ids:
        text = f"Row {row_id}: congratulations on the new logistics hub in Rotterdam, saw the announcement."
        flags = ("quality:too_long",) if row_id % 10 == 0 else ()
        job._count(RowRecord(row_id, "succeeded", text, flags=flags, usage=Usage(760, 24), cost_usd=0.00013))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        job = job_mid_run(args.rows, data_dir)
        table = live_table.LiveTable(job.plan.inputs, job.plan.meta)
        t0 = time.perf_counter()
        table.build(job.rows(), job.edits(), -1)
        first_ms = 1000 * (time.perf_counter() - t0)
        names = ("snapshot", "chart", "review", "grid", "order", "arrow")
        steps: dict[str, list[float]] = {name: [] for name in (*names, "total")}
        start = args.rows // 2  # mid-run: half the rows answered
        finish_rows(job, range(1, start))
        table.build(job.rows(), job.edits(), job.snapshot().version)  # the page was drawn mid-run already
        for tick in range(args.ticks):
            finish_rows(job, range(start + tick * PER_TICK, start + (tick + 1) * PER_TICK))
            t = [time.perf_counter()]
            snap = job.snapshot()
            t.append(time.perf_counter())
            charts.cost_over_time(snap.cost_series, budget=snap.budget_usd).to_json()
            t.append(time.perf_counter())
            rows = regenerate.review_rows(
                job.store, job.id, job.rows(), meta=job.plan.meta, inputs=job.plan.inputs, edits=job.edits()
            )
            t.append(time.perf_counter())
            frame = table.build(rows, job.edits(), snap.version)
            t.append(time.perf_counter())
            _, shown = review.live_view(frame)
            t.append(time.perf_counter())
            convert_pandas_df_to_arrow_bytes(shown)
            t.append(time.perf_counter())
            for name, a, b in zip(names, t, t[1:], strict=False):
                steps[name].append(1000 * (b - a))
            steps["total"].append(1000 * (t[-1] - t[0]))
        job.store.close()
    medians = {k: statistics.median(v) for k, v in steps.items()}
    p90 = sorted(steps["total"])[int(0.9 * (len(steps["total"]) - 1))]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python -m bench.bench_live_panel --write-readme`: a {args.rows:,}-row icebreaker run, half",
        f"answered, {PER_TICK} more rows per redraw; median of {args.ticks} redraws (server side; browser rendering",
        "not included).",
        "",
        "| step | ms per redraw |",
        "|---|---|",
        *(f"| {k} | {v:.1f} |" for k, v in medians.items() if k != "total"),
        f"| **total** | **{medians['total']:.1f}** (p90 {p90:.1f}) |",
        "",
        f"Total = **{100 * medians['total'] / INTERVAL_MS:.0f}%** of the 500 ms refresh interval. The first draw of",
        f"the grid (all {args.rows:,} inputs) takes {first_ms:.0f} ms once per run. Load average during the",
        f"run: {os.getloadavg()[0]:.1f} (a shared 2-core machine).",
        "",
    ]
    print("\n".join(lines))
    if args.write_readme:
        replace_section("\n".join(lines))


if __name__ == "__main__":
    main()
