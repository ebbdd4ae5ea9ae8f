"""Cost and time per 1,000 rows of company research: from the homepage, or on the web, per row or per company.

    .venv/bin/python -m bench.bench_research                  # print the figures
    .venv/bin/python -m bench.bench_research --write-readme   # and replace the "Web research" section

A list of 1,000 leads where every company has 3 leads (334 companies), each lead writing the company's website
its own way. Four ways to answer "what is new at this company", each through the engine to the local server in
its own process (latency --latency-ms a request, --workers at once), on gpt-6-luna at effort none:

- homepage: the website-analysis prompt over the text "Read websites" adds (here a fixed 1,500-character
  page per company, already read: reading time not included; see "Reading websites" for it);
- no research: the company-research prompt with web research switched off (the model's own knowledge);
- web, per row: company-research with web search, every lead asked on its own;
- web, per company: company-research as shipped (one_answer_per: Website), one request per company.

Cost is what the server billed (its ledger: tokens priced from the price data, web search calls at the
server's per-call price), per 1,000 rows; time is the wall time of the run scaled to 1,000 rows. Then the
workbench's comparison on a 5-row sample (lib.workbench.variants): the homepage prompt beside web research,
with each one's cost per row and the sources it cites.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import pandas as pd

from bench.readme import replace_section
from lib import engine
from lib.cost import pricing
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.library import PromptLibrary
from lib.sim import SimConfig, SimProcess
from lib.store import Store
from lib.workbench import compare
from lib.workbench.variants import Variant, run_variants

SECTION = "## Web research"
MODEL = "gpt-6-luna"
LEADS_PER_COMPANY = 3
PAGE = (
    "{company} builds software for mid-sized manufacturers: planning, quality and maintenance in one place. "
    "Founded in 2014, the company serves customers in Europe and North America from offices in three "
    "cities. Products: production planning, quality inspection, predictive maintenance, supplier portal. "
) * 4  # about 1,500 characters, the size of a typical homepage's main text once menus are gone


def lead_list(rows: int) -> pd.DataFrame:
    """`rows` leads, LEADS_PER_COMPANY to a company, each writing its company's website its own way."""
    ways = ["https://www.{d}/", "{d}", "http://{D}"]
    companies = -(-rows // LEADS_PER_COMPANY)
    data: dict[str, list[str]] = {"First Name": [], "Company": [], "Website": [], "website_text": []}
    for i in range(rows):
        k = i % companies
        domain = f"maker{k}.example"
        data["First Name"].append(f"Person{i}")
        data["Company"].append(f"Maker {k}")
        data["Website"].append(ways[(i // companies) % len(ways)].format(d=domain, D=domain.upper()))
        data["website_text"].append(PAGE.format(company=f"Maker {k}"))
    df = pd.DataFrame(data, dtype="string")
    df.index = pd.RangeIndex(1, rows + 1, name="row_id")
    return df


def billed(ledger: list[dict]) -> float:
    total = 0.0
    for e in ledger:
        usage = pricing.Usage(
            e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"], 0, e.get("cache_write_tokens", 0)
        )
        price = pricing.price_for(e["model"], tier=e.get("service_tier") or "default")
        total += (pricing.cost(usage, price) or 0.0) + e.get("web_search_calls", 0) * e.get(
            "web_search_call_price", 0.0
        )
    return total


def configs() -> list[tuple[str, object, RunOptions]]:
    library = PromptLibrary()
    homepage = library.load("website-analysis")
    research = library.load("company-research")
    return [
        ("homepage (website-analysis)", homepage, RunOptions(model=MODEL)),
        (
            "no research (company-research, web off)",
            research,
            RunOptions(model=MODEL, web_search=False, one_answer_per=""),
        ),
        ("web, per row", research, RunOptions(model=MODEL, one_answer_per="")),
        ("web, per company (as shipped)", research, RunOptions(model=MODEL)),
    ]


def run(
    server: SimProcess, config: SimConfig, df: pd.DataFrame, name: str, spec, options, workers: int
) -> dict:
    server.reset(config)
    plan = plan_run(df, spec, options, base_url=server.url)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        job = engine.Job(
            plan,
            endpoint=Endpoint(api_key="sk-bench-research", base_url=server.url),
            settings=engine.RunSettings(workers=workers, timeout_s=30, transport=plan.meta["api"]),
            store=Store(tmp),
            governor=Governor(),
        ).start()
        while not job.wait(0.25):
            pass
        elapsed = time.monotonic() - started
        snap, rows = job.snapshot(), job.rows()
    ledger = server.ledger()
    n = len(df)
    cost = billed(ledger)
    cited = [len(r.sources) for r in rows if r.status == "succeeded"]
    return {
        "name": name,
        "api": plan.meta["api"],
        "answered": snap.succeeded,
        "requests": len(ledger),
        "searches": sum(e.get("web_search_calls", 0) for e in ledger),
        "per_1000": cost * 1000 / n,
        "search_share": sum(e.get("web_search_calls", 0) * e.get("web_search_call_price", 0) for e in ledger)
        / cost
        if cost
        else 0.0,
        "same": abs(snap.cost_usd - cost) <= 1e-9 * max(1.0, cost),
        "seconds_per_1000": elapsed * 1000 / n,
        "sources": sum(cited) / len(cited) if cited else 0.0,
        "no_source": sum("quality:no_source" in r.flags for r in rows),
    }


def sample_comparison(server: SimProcess, config: SimConfig, df: pd.DataFrame) -> list[dict]:
    """The workbench's side by side on 5 rows: the homepage prompt and web research."""
    server.reset(config)
    library = PromptLibrary()
    variants = [
        Variant("homepage", library.load("website-analysis"), RunOptions(model=MODEL)),
        Variant("web research", library.load("company-research"), RunOptions(model=MODEL)),
    ]
    sample = [1, 2, 3, 4, 5]
    with tempfile.TemporaryDirectory() as tmp:
        done = run_variants(
            df,
            sample,
            variants,
            endpoint=Endpoint(api_key="sk-bench-research", base_url=server.url),
            store=Store(tmp),
            governor=Governor(),
        )
    matrix = compare.build_matrix(sample, {v.variant.name: v.rows for v in done})
    out = []
    for v in done:
        t = compare.totals(matrix, v.variant.name, MODEL)
        cells = [matrix.cell(v.variant.name, r) for r in sample]
        out.append(
            {
                "name": v.variant.name,
                "per_row": (t.cost_usd or 0.0) / len(sample),
                "searches": sum(c.web_search_calls for c in cells),
                "sources": sum(len(c.sources) for c in cells),
                "example": next((c.sources[0] for c in cells if c.sources), "(none)"),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    df = lead_list(args.rows)
    config = SimConfig(today="2026-12-05", latency_ms=args.latency_ms, seed=24)
    with SimProcess(config) as server:
        results = [
            run(server, config, df, name, spec, options, args.workers) for name, spec, options in configs()
        ]
        sample = sample_comparison(server, replace(config, latency_ms=0), df)
    text = section(args, results, sample)
    print(text)
    if args.write_readme:
        replace_section(text)


def section(args: argparse.Namespace, results: list[dict], sample: list[dict]) -> str:
    cheapest = min(r["per_1000"] for r in results)
    lines = [
        SECTION,
        "",
        f"{args.rows:,} leads, {LEADS_PER_COMPANY} to a company, on {MODEL} at effort none; {args.workers} workers, "
        f"{args.latency_ms} ms a request at the local server; one run each, load average {os.getloadavg()[0]:.1f} "
        f"on 2 cores. Prices from {pricing.DATA_SOURCE} (as of {pricing.PRICES_READ_ON}); web search calls at the "
        "server's $10 per 1,000.",
        "",
        "| way | API | rows answered | requests | web searches | $ per 1,000 rows (billed) | × cheapest | "
        "of which searches | engine $ = billed | s per 1,000 rows | sources a row | no_source rows |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['api']} | {r['answered']:,} | {r['requests']:,} | {r['searches']:,} | "
            f"{r['per_1000']:.4f} | {r['per_1000'] / cheapest:.2f} | {r['search_share']:.0%} | "
            f"{'yes' if r['same'] else 'NO'} | {r['seconds_per_1000']:.1f} | {r['sources']:.2f} | {r['no_source']:,} |"
        )
    lines += [
        "",
        "Web research costs mostly its searches (billed per call, hidden follow-up searches included) and the "
        "pages they bring (billed as input tokens); asking once per company divides both by the leads a company "
        "has, and the time with them. The homepage row leaves out reading the sites (about 0.07 s a site at 16 "
        "workers, see Reading websites) and answers only what the homepage says; the no-research row answers "
        "from the model's knowledge alone, without sources. The simulator's searches, pages and answer lengths "
        "are its own (lib/sim/websearch.py): the ratios show the shape, not a forecast.",
        "",
        "On the workbench (5 sample rows, the two prompts side by side):",
        "",
        "| variant | $ a row | web searches | sources cited | e.g. |",
        "|---|---:|---:|---:|---|",
    ]
    for s in sample:
        lines.append(
            f"| {s['name']} | {s['per_row']:.6f} | {s['searches']} | {s['sources']} | {s['example']} |"
        )
    lines += [
        "",
        "Reproduce:",
        "",
        "```",
        ".venv/bin/python -m bench.bench_research                  # print the figures",
        ".venv/bin/python -m bench.bench_research --write-readme   # and replace this section",
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
