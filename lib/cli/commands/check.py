"""`python -m lib check INPUT --prompt NAME`: read the file, check the prompt against it, quote tokens and cost.
Sends nothing and writes nothing; exit 2 when the prompt uses columns the file does not have."""

from __future__ import annotations

import argparse
import json
import sys

from lib import models
from lib.cli import args as cli_args
from lib.cli import loading
from lib.cli.exits import EXIT_BAD_INPUT, EXIT_OK, UsageError

ORDER = 20


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="read the file, check the prompt, and quote tokens and cost")
    p.add_argument("input")
    cli_args.prompt_args(p)
    return p


def _endpoint():
    """The endpoint of the environment, for its model list (an unbilled GET); None without a key."""
    from lib.engine.client import endpoint_from_env
    from lib.envfile import load_dotenv_files

    load_dotenv_files()
    return endpoint_from_env()


def main(args: argparse.Namespace) -> int:
    from lib.cost import pricing
    from lib.cost import quote as quoting
    from lib.engine.runs import PlanError, packed_requests, plan_run
    from lib.prompts.checks import to_mapping
    from lib.prompts.mapping import fit

    cli_args.check_prompt_flags(args)
    spec = loading.load_spec(args)
    leads, _ = loading.read_input(args)
    options = loading.run_options(args, spec)
    columns = [str(c) for c in leads.df.columns]
    unmapped = spec
    spec, mapping = loading.mapped(args, spec, columns)
    missing = loading.missing_columns(spec, columns)
    loading.check_mentions(spec, columns)
    found = fit(unmapped, columns, mapping)  # told in the prompt's own placeholders
    loading.print_fit(found)
    summary = {
        "rows": len(leads.df),
        "columns": list(leads.df.columns),
        **loading.file_summary(leads),
        "renamed_headers": leads.renamed_headers,
        "missing_placeholders": missing,
        "fit": loading.fit_rows(found),
        "example_notes": list(found.example_notes),
        "prompt": {**args.prompt_identity, "prompt_mapping": mapping},
        "model": options.model,
        "reasoning_effort": models.effort_for(options.model, options.reasoning_effort),
        "model_status": loading.model_status(options.model, _endpoint()),
        "checks": to_mapping(spec.checks),
    }
    if missing:
        print(json.dumps(summary, ensure_ascii=False))
        print(loading.missing_message(missing, found), file=sys.stderr)
        return EXIT_BAD_INPUT
    endpoint = _endpoint()
    try:
        plan = plan_run(leads.df, spec, options, base_url=endpoint.base_url if endpoint else None)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    q = quoting.quote(
        [i.body for i in plan.items], options.model, max_tokens=options.max_tokens, price=plan.price
    )
    summary["api"] = plan.meta["api"]
    if q.web_search:
        summary["web_search"] = {
            **(plan.meta.get("web_search") or {}),
            "calls_low": q.search_calls_low,
            "calls_high": q.search_calls_high,
            "search_content_tokens_low": q.search_tokens_low,
            "search_content_tokens_high": q.search_tokens_high,
            "calls_cost_low_usd": q.search_cost_low,
            "calls_cost_high_usd": q.search_cost_high,
            "basis": q.search_basis,
        }
    if plan.meta.get("one_answer_per"):
        summary["one_answer_per"] = plan.meta["one_answer_per"]
    summary.update(
        {
            "rows_to_send": len(plan.items),
            "rows_skipped": len(plan.skipped),
            "input_tokens": q.input_tokens,
            "exact": q.exact,
            "encoding_used": q.encoding,
            "output_tokens_low": q.output_tokens_low,
            "output_tokens_high": q.output_tokens_high,
            "cost_low_usd": _usd(q.cost_low),
            "cost_high_usd": _usd(q.cost_high),
            "output_basis": q.basis,
            "distinct_requests": q.distinct,
            "reused_rows": q.reused_rows,
            "static_prefix_tokens": q.prefix_tokens,
            "cached_tokens_estimate": q.cached_tokens,
            "prices_from": f"{pricing.DATA_SOURCE}, prices as of {pricing.PRICES_READ_ON}",
        }
    )
    packed = None
    if plan.packs:
        packed = quoting.packed_quote(q, packed_requests(plan), options.model, price=plan.price)
    summary["paths"] = [
        {
            "path": p.name,
            "available": p.available,
            "cost_low_usd": _usd(p.cost_low),
            "cost_high_usd": _usd(p.cost_high),
            "likely_time": p.duration,
            **({"note": p.note} if p.note else {}),
        }
        for p in quoting.paths(
            q,
            options.model,
            prices=plan.tier_prices,
            packed=packed,
            rows_per_request=plan.meta.get("rows_per_request"),
        )
    ]
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK


def _usd(value: float | None) -> float | None:
    """Dollars as the run's summary gives them: 8 decimals, no float noise (0.0009306000000000001)."""
    return None if value is None else round(value, 8)
