"""Cost per 1,000 icebreakers on the retiring default and its replacement, at two reasoning efforts.

    .venv/bin/python -m bench.bench_models                  # print the figures
    .venv/bin/python -m bench.bench_models --write-readme   # and replace the "Models" section

The shipped icebreaker prompt over the same 1,000 distinct leads, sent through the engine to the local server
in its own process (its own model rules: reasoning tokens by effort, billed as output), on gpt-4o-mini (shuts
down 14 Jan 2027) and on gpt-6-luna at effort none and medium (the model's default when no effort is sent),
medium once with the prompt's 80 max tokens and once with room for the thinking. Cost is what the server
billed (its ledger priced from the price data, genai-prices), per 1,000 rows, and as a ratio to the cheapest
configuration; "cut short" counts answers whose hidden reasoning used up the cap.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from bench.bench_cost_levers import leads
from bench.readme import replace_section
from lib import engine
from lib.cost import pricing
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.library import PromptLibrary
from lib.sim import SimConfig, SimProcess
from lib.store import Store

SECTION = "## Models"
WORKERS = 32
CONFIGS = (
    ("gpt-4o-mini", None, None),
    ("gpt-6-luna", "none", None),
    ("gpt-6-luna", "medium", None),
    ("gpt-6-luna", "medium", 2000),
)


def billed(ledger: list[dict]) -> float:
    total = 0.0
    for e in ledger:
        usage = pricing.Usage(
            e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"], 0, e.get("cache_write_tokens", 0)
        )
        total += (
            pricing.cost(usage, pricing.price_for(e["model"], tier=e.get("service_tier") or "default")) or 0
        )
    return total


def run(server: SimProcess, df, spec, model: str, effort: str | None, cap: int | None) -> dict:
    server.reset(SimConfig(today="2026-12-05"))
    options = RunOptions(model=model, reasoning_effort=effort, max_tokens=cap or spec.max_tokens)
    plan = plan_run(df, spec, options, base_url=server.url)
    with tempfile.TemporaryDirectory() as tmp:
        job = engine.Job(
            plan,
            endpoint=Endpoint(api_key="sk-bench-models", base_url=server.url),
            settings=engine.RunSettings(workers=WORKERS, timeout_s=30),
            store=Store(tmp),
            governor=Governor(),
        ).start()
        while not job.wait(0.25):
            pass
        snap, rows = job.snapshot(), job.rows()
    ledger = server.ledger()
    n = len(df)
    return {
        "model": model,
        "effort": effort or "(not a reasoning model)",
        "cap": cap or spec.max_tokens,
        "answered": snap.succeeded,
        "billed": billed(ledger),
        "engine": snap.cost_usd,
        "per_1000": billed(ledger) * 1000 / n,
        "reasoning_per_row": sum(e.get("reasoning_tokens", 0) for e in ledger) / n,
        "output_per_row": sum(e["completion_tokens"] for e in ledger) / n,
        "cut": sum("reasoning_cut" in r.flags for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    spec = PromptLibrary().load("icebreaker")
    df = leads(args.rows)
    with SimProcess(SimConfig(today="2026-12-05")) as server:
        results = [run(server, df, spec, *config) for config in CONFIGS]
    text = section(args.rows, results)
    print(text)
    if args.write_readme:
        replace_section(text)


def section(rows: int, results: list[dict]) -> str:
    cheapest = min(r["per_1000"] for r in results)
    lines = [
        SECTION,
        "",
        f"The shipped icebreaker over {rows:,} distinct leads, per configuration; one run each, load average "
        f"{os.getloadavg()[0]:.1f} on 2 cores. Prices from {pricing.DATA_SOURCE} (as of {pricing.PRICES_READ_ON}).",
        "",
        "| model | effort | max tokens | rows answered | $ per 1,000 rows (billed) | × cheapest | engine $ = billed |"
        " reasoning tokens a row | output tokens a row | cut short by reasoning |",
        "|---|---|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for r in results:
        same = "yes" if abs(r["engine"] - r["billed"]) <= 1e-9 * max(1.0, r["billed"]) else "NO"
        lines.append(
            f"| {r['model']} | {r['effort']} | {r['cap']} | {r['answered']:,} | {r['per_1000']:.4f} | "
            f"{r['per_1000'] / cheapest:.2f} | {same} | {r['reasoning_per_row']:.0f} | "
            f"{r['output_per_row']:.0f} | {r['cut']:,} |"
        )
    lines += [
        "",
        "At effort none gpt-6-luna writes the same answers with no hidden thinking; at its default (medium) the "
        "thinking is billed as output and, under the prompt's 80-token cap, leaves many answers empty or cut "
        "short, which is why the studio sends `none` unless told otherwise. The simulator's reasoning lengths "
        "are its own (lib/sim/replies.py), not OpenAI's: the ratio shows the shape, not a forecast.",
        "",
        "Reproduce:",
        "",
        "```",
        ".venv/bin/python -m bench.bench_models                  # print the figures",
        ".venv/bin/python -m bench.bench_models --write-readme   # and replace this section",
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
