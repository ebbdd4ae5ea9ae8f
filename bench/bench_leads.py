"""How fast lib.leads reads big lead files, and how much memory it needs.

.venv/bin/python -m bench.bench_leads                  # print the figures
.venv/bin/python -m bench.bench_leads --write-readme   # and replace the README section
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from bench.readme import replace_section
from lib.leads import read_leads
from tests import leadfiles as L

README = Path(__file__).with_name("README.md")
SECTION = "## Reading lead files"


def _cases(csv_rows: int, xlsx_rows: int) -> list[tuple[str, Callable[[], bytes], str, int]]:
    return [
        (f"Apollo CSV, UTF-8, comma, {len(L.APOLLO_COLUMNS)} columns", lambda: L.apollo_csv(csv_rows), "a.csv", csv_rows),
        (f"Salesforce CSV, cp1252, semicolon, {len(L.SALESFORCE_COLUMNS)} columns", lambda: L.salesforce_csv(csv_rows), "s.csv", csv_rows),
        ("Excel Unicode text, UTF-16, tab, 12 columns", lambda: L.excel_utf16_tab(csv_rows), "u.txt", csv_rows),
        ("XLSX (openpyxl-written), 12 columns", lambda: L.xlsx_bytes({"Leads": L.apollo_rows(xlsx_rows)}), "a.xlsx", xlsx_rows),
    ]  # fmt: skip


def measure(data: bytes, filename: str, rows: int, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        lf = read_leads(data, filename)
        times.append(time.perf_counter() - start)
        assert len(lf.df) == rows, (filename, len(lf.df))
        del lf
    gc.collect()
    # A separate, untimed pass: tracemalloc slows Python allocation down about twofold.
    tracemalloc.start()
    lf = read_leads(data, filename)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frame = lf.df.memory_usage(deep=True).sum()
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "rows_s": rows / seconds,
        "mb": len(data) / 1e6,
        "peak": peak / 1e6,
        "frame": frame / 1e6,
    }


def run(csv_rows: int, xlsx_rows: int, repeat: int) -> tuple[str, float]:
    """The markdown table, and peak memory over file size for the first (UTF-8 CSV) case."""
    ratios = []
    lines = [
        "| file | rows | size | read (median) | rows/s | peak traced memory | frame in memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, make, filename, rows in _cases(csv_rows, xlsx_rows):
        data = make()
        m = measure(data, filename, rows, repeat)
        lines.append(
            f"| {label} | {rows:,} | {m['mb']:.1f} MB | {m['seconds']:.2f} s | {m['rows_s']:,.0f} | "
            f"{m['peak']:,.0f} MB | {m['frame']:,.0f} MB |"
        )
        print(lines[-1], flush=True)
        ratios.append(m["peak"] / m["mb"])
    return "\n".join(lines), ratios[0]


def section(table: str, repeat: int, ratio: float) -> str:
    return f"""{SECTION}

How long `lib.leads.read_leads` takes on big exports built by `tests/leadfiles.py` (the files are made
in memory first; only the read is timed, median of {repeat}). "Peak traced memory" is tracemalloc's peak
during one extra read (Python allocations, input bytes excluded); "frame in memory" is the resulting
DataFrame (`memory_usage(deep=True)`, pandas "string" dtype on pyarrow).

```
.venv/bin/python -m bench.bench_leads                  # print the figures
.venv/bin/python -m bench.bench_leads --write-readme   # and replace this section
.venv/bin/python -m bench.bench_leads --csv-rows 20000 --xlsx-rows 5000 --repeat 1   # quick
```

Measured on {platform.machine()} with 2 cores (shared with other work), Python {platform.python_version()},
pandas {pd.__version__}, {date.today().isoformat()}:

{table}

Where the time goes: the stdlib csv reader plus our per-row checks are about half of the CSV figure,
building pyarrow-backed "string" columns most of the rest; the cyclic garbage collector is paused
during a read (it doubled the time). The cp1252 file adds the failed strict UTF-8 pass and the
charset check. XLSX is bound by openpyxl's XML parsing (read-only, streaming; lxml is not installed).
Peak memory is about {ratio:.0f}x the CSV's size, because every cell is a Python str before the
columns are built: at the 200 MB upload limit, plan for roughly {ratio * 0.2:.1f} GB during a read.
"""


def write_readme(text: str) -> None:
    replace_section(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument("--xlsx-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    table, ratio = run(args.csv_rows, args.xlsx_rows, args.repeat)
    if args.write_readme:
        write_readme(section(table, args.repeat, ratio))
        print(f"updated {README}")


if __name__ == "__main__":
    main()
