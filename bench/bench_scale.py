"""Memory, time and store size by list length: the command line's run, resume, export and check.

    .venv/bin/python -m bench.bench_scale                          # 1k, 10k, 100k and 1M rows
    .venv/bin/python -m bench.bench_scale --rows 1000,10000 --quick
    .venv/bin/python -m bench.bench_scale --tree /tmp/before --label before --save   # another checkout's CLI
    .venv/bin/python -m bench.bench_scale --label after --save --write-readme

Each size is one synthetic Apollo-style CSV (bench_quote.make_rows: 7 columns, every row distinct) run
with the shipped icebreaker prompt on gpt-4o-mini against the simulator (its own process, latency 0),
16 workers. Every step is `python -m lib ...` in a child process of the checkout named by --tree (this one
by default), measured by the kernel (`os.wait4`: peak RSS, user + system CPU) and the wall clock:

- check: read, validate and quote the list;
- run: the run, killed (SIGKILL) once half the rows are answered: planning, journalling and sending;
- resume: the same command again, which sends the other half;
- export csv / export xlsx: the same command again on the finished run (nothing left to send): the
  results written from the store, once as CSV and once as XLSX.

CPU per row is the run and the resume together, less the same two steps on a 100-row list (Python
starting and importing), over the rows; "flat" compares it with the smallest size's. The store is
measured after the run (WAL checkpointed): its file less twice the answers' text (kept by the row and
by the paid-answer cache), per row. Targets (issue 22): under 1 GB peak RSS at every step, CPU per row
within ~10% from the smallest list to the largest, and under 1 KB a row beyond the answer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_quote import make_rows
from bench.readme import replace_section
from lib.sim import SimConfig, SimProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("scale_results.json")
SECTION = "## Scale: memory, time and store size by list length"
GB = 1024**3
BASELINE_ROWS = 100
MODEL = "gpt-4o-mini"
STEPS = ("check", "run", "resume", "export csv", "export xlsx")


def write_csv(path: Path, n: int) -> None:
    """n distinct rows, written a chunk at a time."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = None
        for start in range(0, n, 50_000):
            rows = make_rows(min(50_000, n - start), seed=7 + start)
            for i, row in enumerate(rows):
                row["Last Name"] = f"Lastname{start + i}"
                if not (start + i) % 3:
                    row["Company"] = row["Company"].rsplit(" ", 1)[0] + f" {start + i}"
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
            writer.writerows(rows)


def measure(cmd: list[str], env: dict, cwd: Path, kill_when=None, log: Path | None = None) -> dict:
    """Run `cmd`; peak RSS and CPU from the kernel. `kill_when()` true: SIGKILL it (an interruption)."""
    out = open(log or os.devnull, "ab")  # noqa: SIM115 - closed below
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=out)
    killed = False
    if kill_when is not None:
        while proc.poll() is None:
            if kill_when():
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.25)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    return {
        "wall_s": round(time.monotonic() - start, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),  # KB on Linux
        "exit": proc.returncode,
        "killed": killed,
    }


def answered(db: Path) -> int:
    """Rows the store has answered (read beside the writer; 0 until the run is journalled)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM rows WHERE status = 'succeeded'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def store_size(db: Path) -> dict:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows, answer = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0) FROM rows"
        ).fetchone()
    finally:
        conn.close()
    size = db.stat().st_size
    return {
        "file_bytes": size,
        "bytes_per_row": round(size / rows),
        "answer_bytes_per_row": round(answer / rows),
        "beyond_answer_per_row": round((size - 2 * answer) / rows),
    }


def output_rows(path: Path) -> tuple[int, int]:
    """(data rows, rows whose enrich_status is succeeded) of a CSV export."""
    total = ok = 0
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        at = header.index("enrich_status")
        for row in reader:
            total += 1
            ok += row[at] == "succeeded"
    return total, ok


def one_size(n: int, tree: Path, work: Path, sim_url: str) -> dict:
    """Every step on an n-row list."""
    folder = work / f"rows-{n}"
    folder.mkdir()
    source = folder / "leads.csv"
    write_csv(source, n)
    data = folder / "data"
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-bench-simulator",
        "OPENAI_BASE_URL": sim_url,
        "PYTHONPATH": str(tree),
        "LEAD_STUDIO_TODAY": "2026-12-05",
    }
    py = sys.executable
    common = ["--prompt", "icebreaker", "--model", MODEL]
    run = [
        py,
        "-m",
        "lib",
        "run",
        str(source),
        *common,
        "--data-dir",
        str(data),
        "--workers",
        "16",
        "--quiet",
    ]
    log = folder / "log.txt"
    steps: dict[str, dict] = {}
    steps["check"] = measure([py, "-m", "lib", "check", str(source), *common], env, tree, log=log)
    db = data / "studio.sqlite3"
    steps["run"] = measure(
        [*run, "--output", str(folder / "part.csv")],
        env,
        tree,
        kill_when=lambda: answered(db) >= n // 2,
        log=log,
    )
    steps["run"]["answered"] = answered(db)
    steps["resume"] = measure([*run, "--output", str(folder / "out.csv")], env, tree, log=log)
    steps["export csv"] = measure([*run, "--output", str(folder / "again.csv")], env, tree, log=log)
    steps["export xlsx"] = measure([*run, "--output", str(folder / "again.xlsx")], env, tree, log=log)
    total, ok = output_rows(folder / "again.csv")
    store = store_size(db)
    for path in folder.glob("*.*"):
        if path.suffix in (".csv", ".xlsx"):
            path.unlink()
    return {"rows": n, "steps": steps, "store": store, "exported": total, "succeeded": ok}


def summarise(results: list[dict], baseline: dict) -> list[dict]:
    """Per size: the worst RSS, CPU per row (run + resume, less the baseline's) and the ratios."""
    fixed = baseline["steps"]["run"]["cpu_s"] + baseline["steps"]["resume"]["cpu_s"]
    out = []
    for r in results:
        cpu = r["steps"]["run"]["cpu_s"] + r["steps"]["resume"]["cpu_s"]
        per_row = (cpu - fixed) / max(r["rows"] - BASELINE_ROWS, 1) * 1000
        out.append({"rows": r["rows"], "cpu_ms_per_row": round(per_row, 3)})
    smallest = out[0]["cpu_ms_per_row"] if out else 0
    for s in out:
        s["flat"] = round(s["cpu_ms_per_row"] / smallest, 2) if smallest > 0 else None
    return out


def table(label: str, results: list[dict], baseline: dict) -> str:
    head = "| rows | step | wall s | CPU s | peak RSS | % of 1 GB |\n|---:|---|---:|---:|---:|---:|\n"
    lines = []
    for r in results:
        for name in STEPS:
            s = r["steps"].get(name)
            if s is None:
                continue
            note = f" (killed at {s['answered']:,} answered)" if s.get("killed") else ""
            note += f" (exit {s['exit']})" if s["exit"] not in (0, -9) and not s.get("killed") else ""
            lines.append(
                f"| {r['rows']:,} | {name}{note} | {s['wall_s']:,} | {s['cpu_s']:,} | "
                f"{s['rss_mb']:,.0f} MB | {s['rss_mb'] * 1024 * 1024 / GB:.0%} |"
            )
    per = summarise(results, baseline)
    ratios = (
        "| rows | CPU ms a row (run + resume, less startup) | × smallest list | store B/row | "
        "beyond the answer | % of 1 KB | rows exported (succeeded) |\n|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for r, p in zip(results, per, strict=True):
        st = r["store"]
        ratios += (
            f"| {r['rows']:,} | {p['cpu_ms_per_row']} | {p['flat']} | {st['bytes_per_row']:,} | "
            f"{st['beyond_answer_per_row']:,} | {st['beyond_answer_per_row'] / 1024:.0%} | "
            f"{r['exported']:,} ({r['succeeded']:,}) |\n"
        )
    worst = max(s["rss_mb"] for r in results for s in r["steps"].values())
    return (
        f"**{label}** (measured {results[0].get('when', '')}, load average at start "
        f"{results[0].get('load', '?')}; startup baseline: run + resume of {BASELINE_ROWS} rows = "
        f"{baseline['steps']['run']['cpu_s'] + baseline['steps']['resume']['cpu_s']:.2f} CPU s)\n\n"
        + head
        + "\n".join(lines)
        + f"\n\nWorst peak RSS: {worst:,.0f} MB ({worst * 1024 * 1024 / GB:.0%} of 1 GB).\n\n"
        + ratios
    )


def section(saved: dict) -> str:
    parts = [
        SECTION,
        "",
        __doc__.split("\n\n", 2)[2].strip(),
        "",
        "```",
        ".venv/bin/python -m bench.bench_scale --rows 1000,10000,100000,1000000 --label after --save --write-readme",
        "git worktree add --detach /tmp/before <commit> && .venv/bin/python -m bench.bench_scale \\",
        "    --tree /tmp/before --rows 1000,10000,100000 --label before --save --write-readme",
        "```",
        "",
    ]
    for label in ("before", "after"):
        if label in saved:
            entry = saved[label]
            parts += [table(entry["title"], entry["results"], entry["baseline"]), ""]
    if "notes" in saved:
        parts += [saved["notes"], ""]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000,100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 rows only")
    parser.add_argument(
        "--tree", type=Path, default=ROOT, help="the checkout whose `python -m lib` is measured"
    )
    parser.add_argument("--label", default="after", help="before | after: where --save keeps the figures")
    parser.add_argument("--title", help="the label as the README shows it")
    parser.add_argument("--save", action="store_true", help=f"keep the figures in {RESULTS.name}")
    parser.add_argument("--write-readme", action="store_true", help="rewrite this section of bench/README.md")
    args = parser.parse_args()
    sizes = [1000, 10_000] if args.quick else [int(x) for x in args.rows.split(",") if x]
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        SimProcess(SimConfig(latency_ms=0)) as sim,
    ):
        work = Path(tmp)
        baseline = one_size(BASELINE_ROWS, args.tree, work, sim.url)
        results = []
        for n in sizes:
            sim.reset(SimConfig(latency_ms=0))  # an empty ledger: the simulator's memory stays its own
            result = one_size(n, args.tree, work, sim.url)
            result.update(when=time.strftime("%Y-%m-%d"), load=round(load, 1))
            results.append(result)
            print(json.dumps(result), flush=True)
    title = args.title or f"{args.label} ({args.tree})"
    print(table(title, results, baseline))
    if args.save or args.write_readme:
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if args.save:
            saved[args.label] = {"title": title, "results": results, "baseline": baseline}
            RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
        if args.write_readme:
            replace_section(section(saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
