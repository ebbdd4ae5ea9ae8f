"""Quote 100,000 realistic Apollo-style rows with the shipped icebreaker prompt: time and rows per second.

    .venv/bin/python -m bench.bench_quote [--rows 100000] [--model gpt-4o-mini] [--repeat 3]

Rendering (`build_request` per row) and counting (`quote`) are timed separately: the app does both
before a run. Rows are synthetic but shaped like a real export (names with accents, long titles,
legal suffixes, some empty optional cells).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from lib.cost import tokens
from lib.cost.quote import quote
from lib.prompts.library import PromptLibrary
from lib.prompts.templates import build_request

FIRST = ["Maria", "Tom", "Priya", "Zoë", "Jean-Luc", "Aisha", "Kenji", "Olga", "Mateus", "Siobhán", "Dana"]
TITLES = [
    "VP of Sales",
    "Head of Revenue Operations",
    "Chief Executive Officer & Co-Founder",
    "Senior Director, Demand Generation EMEA",
    "Owner",
    "Marketing Manager",
    "Director of Procurement and Supply Chain",
    "CTO",
]
COMPANIES = [
    "Northwind Logistics B.V.",
    "Brightwave",
    "ACME Holdings, Inc.",
    "Müller Maschinenbau GmbH & Co. KG",
    "Saffron Table LLC",
    "Fernhill Analytics Ltd",
    "HubSpot, Inc.",
    "Blue Harbor Dental Group",
]
INDUSTRIES = ["logistics & supply chain", "computer software", "restaurants", "machinery", "", "marketing"]
CITIES = ["Rotterdam", "Austin", "Leeds", "São Paulo", "Osaka", "", "Lyon", "Toronto"]


def make_rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "First Name": rng.choice(FIRST),
            "Last Name": f"Lastname{i}",
            "Title": rng.choice(TITLES),
            "Company": rng.choice(COMPANIES) + ("" if i % 3 else f" {i}"),
            "Industry": rng.choice(INDUSTRIES),
            "# Employees": str(rng.choice([3, 12, 45, 240, 1800, 12000])),
            "City": rng.choice(CITIES),
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    spec = PromptLibrary().load("icebreaker")
    rows = make_rows(args.rows)
    tokens.get_encoding("o200k_base")  # seeding the offline cache is a one-off, not part of a quote
    render_s, quote_s = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        requests = [
            build_request(
                spec, row, model=args.model, max_tokens=spec.max_tokens, temperature=spec.temperature
            )
            for row in rows
        ]
        render_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = quote(requests, args.model, max_tokens=spec.max_tokens)
        quote_s.append(time.perf_counter() - start)

    render, counting = statistics.median(render_s), statistics.median(quote_s)
    print(f"rows: {args.rows:,}  model: {args.model}  cpus: {os.cpu_count()}  (median of {args.repeat})")
    print(f"render (build_request): {render:.2f} s  {args.rows / render:,.0f} rows/s")
    print(f"quote (count + price):  {counting:.2f} s  {args.rows / counting:,.0f} rows/s")
    print(f"total:                  {render + counting:.2f} s")
    print(
        f"input tokens: {result.input_tokens:,} ({result.input_tokens / args.rows:.0f}/row, "
        f"exact={result.exact}, {result.encoding})  output: {result.output_tokens_low:,}-"
        f"{result.output_tokens_high:,}  cost: ${result.cost_low:.2f}-${result.cost_high:.2f}"
    )


if __name__ == "__main__":
    main()
