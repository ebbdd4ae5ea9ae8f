"""Run every benchmark and rewrite its section of bench/README.md: `make bench`."""

from __future__ import annotations

import subprocess
import sys

# Each benchmark and the arguments that make it rewrite its own section of bench/README.md.
BENCHMARKS = {
    "bench_simulator": ["--write-readme"],
    "bench_leads": ["--write-readme"],
    "bench_quote": [],  # prints its figures; the README section is updated by hand
    "bench_engine": ["--write-readme"],
    "bench_batch": ["--write-readme"],
    "bench_web": ["--write-readme"],
    "bench_cost_levers": ["--write-readme"],
    "bench_models": ["--write-readme"],
    "bench_store": [],  # prints its figures; the README section is updated by hand
    "bench_research": ["--write-readme"],
}


def main() -> int:
    failed = []
    for name, args in BENCHMARKS.items():
        print(f"== {name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *args])
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
