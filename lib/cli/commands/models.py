"""`python -m lib models`: the endpoint's models with their price, tiers, effort levels and shutdown dates.

Reads GET /v1/models of the endpoint in the environment (kept a day in the data folder; --refresh asks
again); an endpoint that lists no models gets the price table's models instead, said so. Sends nothing
billed. The last stdout line is one JSON object, as for every command.
"""

from __future__ import annotations

import argparse
import json
import sys

from lib.cli import args as cli_args
from lib.cli.exits import EXIT_OK

ORDER = 50


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models", help="list the endpoint's models: price, tiers, effort levels, shutdown dates"
    )
    cli_args.data_dir_arg(p, "the model list is kept for a day")
    p.add_argument("--refresh", action="store_true", help="ask the endpoint again instead of the kept list")
    p.add_argument("--all", action="store_true", help="also list models that are not chat models")
    return p


def main(args: argparse.Namespace) -> int:
    from lib.cost import pricing
    from lib.engine.client import endpoint_from_env
    from lib.envfile import load_dotenv_files
    from lib.models import as_of
    from lib.models.listing import endpoint_key, fetch_models
    from lib.models.table import model_rows
    from lib.store import Store, StoreError

    load_dotenv_files()
    endpoint = endpoint_from_env()
    store = None
    try:
        store = Store(args.data_dir)
    except StoreError as exc:
        print(f"Not keeping the list: {exc}", file=sys.stderr)
    listing = None
    if endpoint is not None:
        listing = fetch_models(endpoint, store=store, refresh=args.refresh)
    if listing is None:
        why = "no API key in the environment" if endpoint is None else "the endpoint lists no models"
        print(f"Showing the price table's models ({why}).", file=sys.stderr)
    rows = model_rows(listing, everything=args.all)
    _print_table(rows)
    print(
        json.dumps(
            {
                "endpoint": endpoint_key(endpoint.base_url) if endpoint is not None else None,
                "listed_by_endpoint": listing is not None,
                "prices_from": f"{pricing.DATA_SOURCE}, prices as of {pricing.PRICES_READ_ON}",
                "shutdowns_as_of": as_of(),
                "models": rows,
            },
            ensure_ascii=False,
        )
    )
    return EXIT_OK


def _price(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:g}"


def _print_table(rows: list[dict]) -> None:
    """A table for people on stderr (stdout's last line stays the JSON)."""
    head = ("model", "in/1M", "out/1M", "tiers", "effort", "shutdown")
    lines = [
        (
            r["model"],
            _price(r["input_per_1m"]),
            _price(r["output_per_1m"]),
            ",".join(t for t in r["tiers"] if t != "default") or "-",
            "/".join(r["reasoning_efforts"]) or "-",
            r["note"] or "",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=False)]
    for line in (head, *lines):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip(), file=sys.stderr)
