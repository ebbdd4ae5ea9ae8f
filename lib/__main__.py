"""Command line: `python -m lib run ...` enriches a lead file headless; `python -m lib check ...` quotes it;
`python -m lib fetch ...` reads each row's website into `website_text` / `website_error` columns;
`python -m lib compare ...` tries prompt variants side by side on a few rows (lib/compare_cli.py).

A contract others build on: the last line on stdout is one JSON object; exit 0 when every row has a
final state, 2 for bad input or configuration, 3 when the run stopped early (budget, quota, key, an
endpoint that is not there or answers every row the same error, --give-up-after) or when every row sent
failed.
Running the same `run` command again after an interruption resumes it: answers already paid for are
reused from the data directory, so only the missing rows are sent. `--mode batch` sends the rows through
OpenAI's Batch API instead (half the price, results within 24 h); the final JSON line then also carries
`batch_ids`, `cost_live_usd` and `saved_usd`, and running the command again picks up its batches.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import signal
import sys
import time
from pathlib import Path

from lib import compare_cli
from lib.cli_common import EXIT_BAD_INPUT, EXIT_OK, EXIT_STOPPED, UsageError


def input_args(p: argparse.ArgumentParser) -> None:
    """How the input file is read: the same options for run, check and fetch."""
    p.add_argument("--sheet", help="XLSX: the sheet to read (default: the first holding a table)")
    p.add_argument(
        "--encoding",
        help="CSV: the file's encoding, e.g. cp1252 (Excel on Windows), mac_roman (Excel for Mac), "
        "utf-8 (default: detected)",
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="leave out rows that don't fit the columns (listed on stderr and in the JSON) instead of "
        "refusing the file",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Lead-enrichment studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    def prompt_args(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--prompt", help="a prompt of the library (name) or a prompt .yaml file")
        group.add_argument("--template", help="a user template with {{ Column Name }} placeholders")
        p.add_argument("--system", default="", help="system text (with --template)")
        p.add_argument("--model", help="model name (default: the prompt's, else gpt-4o-mini)")
        p.add_argument("--max-tokens", type=int, help="max output tokens per row")
        p.add_argument("--temperature", type=float)
        input_args(p)
        p.add_argument(
            "--skip-empty", action="store_true", help="skip rows whose placeholder cells are empty"
        )
        p.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="PLACEHOLDER=COLUMN",
            help="read this column for this placeholder, e.g. --map 'Company=Company Name' (repeatable)",
        )
        p.add_argument("--limit", type=int, help="only the first N rows")
        p.add_argument("--check-max-words", type=int, metavar="N", help="flag answers over N words")
        p.add_argument("--check-max-chars", type=int, metavar="N", help="flag answers over N characters")
        p.add_argument(
            "--check-banned",
            action="append",
            default=[],
            metavar="PHRASE",
            help="flag answers using this phrase (repeatable; on top of the prompt's banned phrases)",
        )
        p.add_argument(
            "--check-mention",
            action="append",
            default=[],
            metavar="COLUMN",
            help="flag answers that do not mention this column's value (repeatable)",
        )
        p.add_argument(
            "--price-input", type=float, help="USD per 1M input tokens (overrides the price table)"
        )
        p.add_argument("--price-cached-input", type=float, help="USD per 1M cached input tokens")
        p.add_argument("--price-output", type=float, help="USD per 1M output tokens")
        p.add_argument(
            "--price-as",
            metavar="MODEL",
            help="price a deployment or proxy model name as this priced model (e.g. gpt-4o-mini)",
        )
        p.add_argument(
            "--service-tier",
            choices=("default", "flex", "priority", "auto"),
            default="default",
            help="flex: batch prices on live requests, slower, retried when capacity is short; "
            "priority: faster, dearer (default: default)",
        )
        p.add_argument(
            "--rows-per-request",
            type=int,
            metavar="N",
            help="pack N rows into one request (the prompt's shared start is paid once per N rows); "
            "default: the prompt file's rows_per_request, else 1",
        )

    run = sub.add_parser("run", help="run a prompt over every row and write the results")
    run.add_argument("input")
    run.add_argument("--output", required=True, help="results file: .csv, .xlsx or .json")
    prompt_args(run)
    run.add_argument(
        "--csv-for",
        choices=("spreadsheet", "crm"),
        default="spreadsheet",
        help="CSV output: 'spreadsheet' (default) puts an apostrophe before cells Excel would run as "
        "formulas; 'crm' keeps every cell's exact text, for importing into a CRM",
    )
    run.add_argument("--workers", type=int, default=16)
    run.add_argument("--rpm", type=int, help="requests-per-minute ceiling (below the account's)")
    run.add_argument("--tpm", type=int, help="tokens-per-minute ceiling (below the account's)")
    run.add_argument("--budget", type=float, help="stop before spending more than this many USD")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    run.add_argument(
        "--give-up-after",
        type=float,
        metavar="S",
        help="pause (rows pending, exit 3) when nothing succeeds for S seconds while the server refuses",
    )
    run.add_argument(
        "--flex-fallback",
        action="store_true",
        help="with --service-tier flex: go on at the standard price if flex capacity stays unavailable",
    )
    run.add_argument(
        "--flex-patience",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds without flex capacity before --flex-fallback switches to the default tier (600)",
    )
    run.add_argument("--data-dir", default="results", help="where answers are journalled (default results/)")
    run.add_argument("--retry-failed", action="store_true", help="send failed rows again")
    run.add_argument(
        "--regenerate",
        type=int,
        default=0,
        metavar="N",
        help="ask again, at most N times, for rows a quality check flagged (each attempt billed and budgeted)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--mode",
        choices=("live", "batch"),
        default="live",
        help="live: send now (default); batch: OpenAI's Batch API, half the price, results within 24 h",
    )
    run.add_argument(
        "--poll-interval", type=float, default=30.0, help="batch mode: longest seconds between status checks"
    )
    run.add_argument(
        "--batch-max-requests",
        type=int,
        default=50_000,
        help="batch mode: requests per batch (at most 50,000)",
    )

    check = sub.add_parser("check", help="read the file, check the prompt, and quote tokens and cost")
    check.add_argument("input")
    prompt_args(check)

    fetch = sub.add_parser("fetch", help="read each row's website: adds website_text and website_error")
    fetch.add_argument("input")
    fetch.add_argument("--url-column", required=True, help="the column with each lead's website address")
    fetch.add_argument("--output", required=True, help="the input plus two columns: .csv, .xlsx or .json")
    fetch.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="an intranet host that may be read although it resolves to a private address (repeatable)",
    )
    fetch.add_argument("--workers", type=int, default=8, help="sites read at once (default 8)")
    fetch.add_argument("--timeout", type=float, default=15.0, help="seconds per request, all in (default 15)")
    fetch.add_argument("--data-dir", default="results", help="where readings are kept (default results/)")
    input_args(fetch)
    fetch.add_argument("--about-page", action="store_true", help="also read the page linked as About us")
    fetch.add_argument("--max-chars", type=int, default=8_000, help="text kept per site (default 8000)")
    fetch.add_argument(
        "--max-age-hours", type=float, default=168.0, help="read a site again after this long (default 168)"
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress line")
    compare_cli.add_parser(sub, input_args)
    return parser


def _load_spec(args: argparse.Namespace):
    """The prompt with the command's checks merged in; `args.prompt_identity` records where it came from."""
    from lib.prompts.identity import identity
    from lib.prompts.library import PromptLibrary, PromptLibraryError
    from lib.prompts.templates import PromptSpec

    if args.template is not None:
        spec = PromptSpec(name="command-line", system=args.system, template=args.template)
        args.prompt_identity = identity(spec, None)  # typed on the command line: an unsaved prompt
    else:
        try:
            spec = PromptLibrary().load(args.prompt)
        except PromptLibraryError as exc:
            raise UsageError(str(exc)) from exc
        args.prompt_identity = identity(spec, spec)  # as saved in the library or the file named
    for flag, value in (
        ("--check-max-words", args.check_max_words),
        ("--check-max-chars", args.check_max_chars),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be a whole number of at least 1 (got {value}).")
    if any(not p.strip() for p in args.check_banned):
        raise UsageError("--check-banned needs a phrase (got an empty one).")
    merged = spec.checks.merged(
        max_words=args.check_max_words,
        max_chars=args.check_max_chars,
        banned=[p.strip() for p in args.check_banned],
        mention=[c.strip() for c in args.check_mention],
    )
    return dataclasses.replace(spec, checks=merged)


def _check_mentions(spec, columns: list[str]) -> None:
    """A column to mention must exist: a typo would otherwise flag nothing, silently."""
    for column in spec.checks.mention:
        if column not in columns:
            close = difflib.get_close_matches(column, columns, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"Must-mention check: there is no column named '{column}'.{hint}")


def _read_input(args: argparse.Namespace):
    from lib.leads import LeadFileError, read_leads

    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"Input file not found: {path}")
    data = path.read_bytes()
    ragged = "skip" if args.skip_bad_rows else "reject"
    try:
        leads = read_leads(data, path.name, sheet=args.sheet, encoding=args.encoding, ragged=ragged)
    except LeadFileError as exc:
        hint = (
            " Or run again with --skip-bad-rows to leave those lines out."
            if exc.rejected and not args.skip_bad_rows
            else ""
        )
        raise UsageError(f"{path.name}: {exc}{hint}") from exc
    for line in leads.rejected:
        print(f"skipped line {line.line:,}: {line.reason}: {line.text}", file=sys.stderr)
    for warning in leads.warnings:
        if "encoding is not certain" in warning or "not UTF-8" in warning:
            print(f"note: {warning}", file=sys.stderr)
    return leads, data


def _file_summary(leads) -> dict:
    """What the reader decided, for the JSON summary of run and check."""
    return {
        "encoding": leads.encoding,
        "detected_encoding": leads.detected_encoding,
        "encoding_uncertain": leads.encoding_uncertain,
        "delimiter": leads.delimiter,
        "sheet": leads.sheet,
        "rejected_lines": [{"line": r.line, "reason": r.reason, "text": r.text} for r in leads.rejected],
        "set_aside_lines": [{"line": s.line, "reason": s.reason, "text": s.text} for s in leads.set_aside],
    }


def _options(args: argparse.Namespace, spec):
    from lib.cost.pricing import Price, price_for
    from lib.engine.runs import RunOptions
    from lib.models import DEFAULT_MODEL

    price = None
    if args.price_as is not None:
        if args.price_input is not None or args.price_output is not None:
            raise UsageError("Give either --price-as or --price-input/--price-output, not both.")
        price = price_for(args.price_as)
        if price is None:
            raise UsageError(
                f"--price-as {args.price_as}: that model has no price either. Name a priced model "
                "(e.g. gpt-4o-mini) or give --price-input and --price-output."
            )
    if args.rows_per_request is not None and not 1 <= args.rows_per_request <= 50:
        raise UsageError("--rows-per-request must be between 1 and 50.")
    if args.price_input is not None or args.price_output is not None:
        if args.price_input is None or args.price_output is None:
            raise UsageError("Give both --price-input and --price-output (USD per 1M tokens).")
        if min(args.price_input, args.price_output, args.price_cached_input or 0) < 0:
            raise UsageError("Prices cannot be negative.")
        cached = args.price_cached_input if args.price_cached_input is not None else args.price_input
        price = Price(args.price_input, cached, args.price_output)
    return RunOptions(
        model=args.model or spec.model or DEFAULT_MODEL,
        max_tokens=args.max_tokens if args.max_tokens is not None else spec.max_tokens,
        temperature=args.temperature if args.temperature is not None else spec.temperature,
        empty="skip" if args.skip_empty else "send",
        limit=args.limit,
        price=price,
        service_tier=args.service_tier,
        rows_per_request=args.rows_per_request,
    )


def _map(args: argparse.Namespace, spec, columns: list[str]):
    """The prompt with --map applied (and the mapping, {} without --map); bad --map is bad input."""
    from lib.prompts.mapping import MappingError, mapped_spec

    try:
        return mapped_spec(spec, columns, args.map)
    except MappingError as exc:
        raise UsageError(str(exc)) from exc


def _fit_rows(found) -> list[dict]:
    """A Fit's rows as JSON: each placeholder's column and status on this file, with a note."""
    return [
        {"placeholder": r.placeholder, "column": r.column, "status": r.status, "note": r.note}
        for r in found.rows
    ]


def _print_fit(found) -> None:
    """The fit as lines a person reads, on stderr (stdout's last line stays the JSON); nothing when every
    placeholder has its own column (so an error stays one line)."""
    if all(r.status == "matches" for r in found.rows) and not found.example_notes:
        return
    print("Placeholders on this file:", file=sys.stderr)
    for r in found.rows:
        print(f"  {{{{ {r.placeholder} }}}} -> {r.column or '-'}: {r.status}. {r.note}", file=sys.stderr)
    for note in found.example_notes:
        print(f"  Note: {note}", file=sys.stderr)


def _map_hint(found) -> str:
    """' Try: --map "Company=Company Name"' for the suggestions a fit has."""
    pairs = [f'--map "{r.placeholder}={r.column}"' for r in found.rows if r.status == "suggested"]
    return f" Try: {' '.join(pairs)}" if pairs else ""


def _check_template(spec, columns) -> list[dict]:
    from lib.prompts.templates import check

    return [
        {"placeholder": p.placeholder, "message": p.message, "suggestions": list(p.suggestions)}
        for p in check(spec, columns)
    ]


def cmd_check(args: argparse.Namespace) -> int:
    from lib.cost import pricing
    from lib.cost import quote as quoting
    from lib.engine.runs import PlanError, packed_requests, plan_run
    from lib.prompts.checks import to_mapping
    from lib.prompts.mapping import fit

    spec = _load_spec(args)
    leads, _ = _read_input(args)
    options = _options(args, spec)
    columns = [str(c) for c in leads.df.columns]
    unmapped = spec
    spec, mapping = _map(args, spec, columns)
    missing = _check_template(spec, columns)
    _check_mentions(spec, columns)
    found = fit(unmapped, columns, mapping)  # told in the prompt's own placeholders
    _print_fit(found)
    summary = {
        "rows": len(leads.df),
        "columns": list(leads.df.columns),
        **_file_summary(leads),
        "renamed_headers": leads.renamed_headers,
        "missing_placeholders": missing,
        "fit": _fit_rows(found),
        "example_notes": list(found.example_notes),
        "prompt": {**args.prompt_identity, "prompt_mapping": mapping},
        "model": options.model,
        "checks": to_mapping(spec.checks),
    }
    if missing:
        print(json.dumps(summary, ensure_ascii=False))
        print(
            "The prompt uses columns the file does not have: "
            + "; ".join(m["message"] for m in missing)
            + _map_hint(found),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        plan = plan_run(leads.df, spec, options, base_url=None)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    q = quoting.quote(
        [i.body for i in plan.items], options.model, max_tokens=options.max_tokens, price=plan.price
    )
    summary.update(
        {
            "rows_to_send": len(plan.items),
            "rows_skipped": len(plan.skipped),
            "input_tokens": q.input_tokens,
            "exact": q.exact,
            "encoding_used": q.encoding,
            "output_tokens_low": q.output_tokens_low,
            "output_tokens_high": q.output_tokens_high,
            "cost_low_usd": q.cost_low,
            "cost_high_usd": q.cost_high,
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
            "cost_low_usd": p.cost_low,
            "cost_high_usd": p.cost_high,
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


class _Progress:
    """A one-line progress bar on stderr (a line every few seconds when stderr is not a terminal)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def draw(self, snap, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not final and now - self.last < (0.5 if self.tty else 5.0)):
            return
        self.last = now
        width = 28
        filled = int(width * snap.progress)
        eta = f" ETA {_duration(snap.eta_s)}" if snap.eta_s else ""
        if snap.status == "running" and snap.message:  # batch mode: where the batches are at OpenAI
            eta += f" · {snap.message}"
        from lib.views.run_status import stall_text

        stall = stall_text(snap)
        if stall:
            eta += f" · {stall}"
        cost = f"${snap.cost_usd:.4f}" if snap.cost_known else "cost unknown (unpriced model)"
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {snap.done}/{snap.total} "
            f"({snap.failed} failed) {cost} {snap.rows_per_s:.1f} rows/s{eta} [{snap.status}]"
        )
        if self.tty:
            sys.stderr.write("\r" + line.ljust(110) + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def cmd_run(args: argparse.Namespace) -> int:
    from lib import engine, export
    from lib.engine.client import endpoint_from_env, load_dotenv_once
    from lib.engine.runs import (
        PlanError,
        plan_run,
        quality_counts,
        results_frame,
        stable_run_id,
        with_list_checks,
    )
    from lib.prompts.library import dump_spec
    from lib.prompts.mapping import fit
    from lib.store import Store, StoreError

    output = Path(args.output)
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx", "json"):
        raise UsageError(f"--output must end in .csv, .xlsx or .json (got '{output.name}').")
    if args.regenerate < 0 or args.regenerate > 10:
        raise UsageError("--regenerate must be from 0 to 10 attempts.")
    if args.workers < 1 or args.workers > 1000:
        raise UsageError("--workers must be between 1 and 1000.")
    if args.give_up_after is not None and args.give_up_after <= 0:
        raise UsageError("--give-up-after must be a positive number of seconds.")
    load_dotenv_once()
    endpoint = endpoint_from_env()
    if endpoint is None:
        raise UsageError("No API key: set OPENAI_API_KEY in the environment or in a .env file.")
    spec = _load_spec(args)
    leads, raw = _read_input(args)
    options = _options(args, spec)
    columns = [str(c) for c in leads.df.columns]
    spec, mapping = _map(args, spec, columns)
    missing = _check_template(spec, columns)
    _check_mentions(spec, columns)
    if missing:
        found = fit(spec, columns)
        raise UsageError(
            "The prompt uses columns the file does not have: "
            + "; ".join(m["message"] for m in missing)
            + _map_hint(found)
        )
    run_id = stable_run_id(
        hashlib.sha256(raw).hexdigest(),
        dump_spec(spec),
        json.dumps(options.__dict__, sort_keys=True, default=str),
        endpoint.base_url or "",
        str(args.sheet),
        # The encoding changes every cell's text, so another one is another run (None: detected).
        *([f"encoding={leads.encoding}"] if args.encoding else []),
    )
    try:
        store = Store(args.data_dir)
        plan = plan_run(
            leads.df,
            spec,
            options,
            base_url=endpoint.base_url,
            run_id=run_id,
            meta={
                "input_name": Path(args.input).name,
                "input_encoding": leads.encoding,
                "input_encoding_chosen": bool(args.encoding),
                "skipped_bad_rows": [r.line for r in leads.rejected],
                **args.prompt_identity,  # plan_run puts the hash of the prompt as sent over its own
                **({"prompt_mapping": mapping} if mapping else {}),
            },
        )
    except (PlanError, StoreError) as exc:
        raise UsageError(str(exc)) from exc
    if args.flex_fallback and args.service_tier != "flex":
        raise UsageError("--flex-fallback only applies with --service-tier flex.")
    if args.flex_patience < 0:
        raise UsageError("--flex-patience cannot be negative.")
    if args.mode == "batch" and args.service_tier != "default":
        raise UsageError("--service-tier applies to live runs; the Batch API has its own price.")
    if args.mode == "batch" and plan.packs:
        raise UsageError(
            "Packed rows go live; leave out --rows-per-request (or rows_per_request) for a batch."
        )
    settings = engine.RunSettings(
        workers=args.workers,
        rpm=args.rpm,
        tpm=args.tpm,
        budget_usd=args.budget,
        timeout_s=args.timeout,
        give_up_after_s=args.give_up_after,
        service_tier=args.service_tier,
        flex_fallback=args.flex_fallback,
        flex_patience_s=args.flex_patience,
    )
    started = time.monotonic()
    if args.mode == "batch":
        job = _start_batch(args, plan, endpoint, store)
    else:
        job = engine.start(plan, endpoint=endpoint, settings=settings, store=store)
    interrupted = _handle_interrupts(job)
    progress = _Progress(args.quiet)
    while not job.wait(timeout=0.25):
        progress.draw(job.snapshot())
    if args.retry_failed and job.snapshot().failed and not interrupted:
        from lib.engine.resume import continue_run  # a batch's failed rows (expired, per-line errors) go live

        job = continue_run(store, plan.run_id, endpoint, retry_failed=True, settings=settings)
        while not job.wait(timeout=0.25):
            progress.draw(job.snapshot())
    snap = job.snapshot()
    progress.draw(snap, final=True)
    rows, attempts, regen_stopped = job.rows(), [], None
    if args.regenerate and not interrupted and snap.status == "finished":
        rows, attempts, regen_stopped = _regenerate(
            args, plan, rows, snap, endpoint, store, progress, settings
        )
    frame = results_frame(plan.inputs, rows, plan.meta, job.edits())
    quality = quality_counts(with_list_checks(rows, plan.meta))
    try:
        export.write_atomic(output, export.export_bytes(frame, fmt, csv_for=args.csv_for))
    except export.ExportError as exc:
        raise UsageError(str(exc)) from exc
    summary = {
        "rows": snap.total,
        "succeeded": snap.succeeded,
        "failed": snap.failed,
        "pending": snap.pending,
        "skipped": snap.skipped,
        "prompt_tokens": snap.prompt_tokens + sum(a.prompt_tokens for a in attempts),
        "completion_tokens": snap.completion_tokens + sum(a.completion_tokens for a in attempts),
        "cost_usd": round(snap.cost_usd + sum(a.cost_usd for a in attempts), 8) if snap.cost_known else None,
        # Of which an estimate: requests that may have been billed though no answer said so (dropped, timed out).
        "estimated_usd": round(snap.estimated_usd + sum(a.estimated_usd for a in attempts), 8),
        "requests_sent": snap.requests_sent + sum(a.requests_sent for a in attempts),
        "cache_hits": snap.cache_hits + sum(a.cache_hits for a in attempts),
        "service_tiers": dict(snap.tier_rows),
        "cached_tokens": snap.cached_tokens,
        "cache_write_tokens": snap.cache_write_tokens,
        "saved_by_caching_usd": round(snap.saved_by_caching_usd, 8) if snap.cost_known else None,
        "elapsed_s": round(time.monotonic() - started, 3),
        "status": snap.status,
        "output": str(output),
        **_file_summary(leads),
        "quality": quality,
    }
    if fmt == "csv":
        summary["csv_for"] = args.csv_for
        summary["cells_guarded"] = (
            export.csv_changes(frame).spreadsheet if args.csv_for == "spreadsheet" else 0
        )
    if args.regenerate:
        summary["regenerated"] = [a.total for a in attempts]  # rows asked again, per attempt
        if regen_stopped:
            summary["regenerate_stopped"] = regen_stopped
    if args.mode == "batch":
        saving = job.savings()
        summary.update(
            mode="batch",
            batch_ids=job.batch_ids(),
            cost_live_usd=round(saving.live_cost_usd, 8) if saving.live_cost_usd is not None else None,
            saved_usd=round(saving.saved_usd, 8) if saving.saved_usd is not None else None,
        )
    all_failed = snap.failed > 0 and snap.succeeded == 0
    if snap.message and snap.status != "finished":
        summary["reason"] = snap.message
        print(snap.message, file=sys.stderr)
    elif all_failed:  # every row sent failed: that is not a finished list, whatever the status says
        summary["reason"] = f"Every row sent failed ({snap.failed}); the first error: " + (
            snap.recent_errors[0].message if snap.recent_errors else "unknown"
        )
        print(summary["reason"], file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    ok = snap.status == "finished" and snap.pending == 0 and not all_failed
    return EXIT_OK if ok else EXIT_STOPPED


def _regenerate(args: argparse.Namespace, plan, rows, snap, endpoint, store, progress, settings):
    """Ask flagged rows again, up to --regenerate times, live, with the run's settings and what is left of
    its budget (lib.engine.regenerate.Rounds); Ctrl-C cancels the attempt going and ends the rounds."""
    from lib.engine import regenerate

    rounds = regenerate.Rounds(store, plan.run_id, endpoint, times=args.regenerate, settings=settings)
    attempts = []
    for job in rounds:
        _handle_interrupts(job)
        while not job.wait(timeout=0.25):
            progress.draw(job.snapshot())
        attempts.append(job.snapshot())
    if rounds.jobs:
        rows = regenerate.current_rows(store, plan.run_id, rows)
    if rounds.stopped:
        print(rounds.stopped, file=sys.stderr)
    return rows, attempts, rounds.stopped


def _start_batch(args: argparse.Namespace, plan, endpoint, store):
    """Batch mode: refuse what cannot work, then start (or pick up) the run's batches."""
    from lib import batch
    from lib.batch.files import MAX_REQUESTS, BatchLimits
    from lib.cost.pricing import Usage, cost

    if not 1 <= args.batch_max_requests <= MAX_REQUESTS:
        raise UsageError(f"--batch-max-requests must be between 1 and {MAX_REQUESTS:,}.")
    if args.poll_interval <= 0:
        raise UsageError("--poll-interval must be a positive number of seconds.")
    if args.budget is not None and plan.price is not None:
        # A batch cannot be stopped half-way at a budget: its worst case must fit before it is sent.
        worst = sum(
            cost(Usage(i.prompt_tokens, i.max_output_tokens), plan.price, batch=True) or 0.0
            for i in plan.items
        )
        if worst > args.budget:
            raise UsageError(
                f"Batch mode sends every row at once: the worst case is ${worst:.2f}, over the "
                f"--budget ${args.budget:.2f}. Raise the budget, lower --max-tokens or use --mode live."
            )
    settings = batch.BatchSettings(
        poll_interval_s=args.poll_interval, limits=BatchLimits(max_requests=args.batch_max_requests)
    )
    return batch.start(plan, endpoint=endpoint, store=store, settings=settings)


def _handle_interrupts(job) -> list[bool]:
    """Ctrl-C / SIGTERM: stop sending, record what is in flight, write the output, exit 3. Twice: now."""
    seen: list[bool] = []

    def handler(signum, frame):
        if seen:
            raise KeyboardInterrupt
        seen.append(True)
        if job.kind == "batch":
            # The batches go on at OpenAI and are paid for anyway: stop watching, do not cancel them.
            print(
                "\nStopping: the batches go on at OpenAI; run the same command again to collect them.",
                file=sys.stderr,
            )
            job.pause(
                "Stopped watching: the batches go on at OpenAI. Run the same command again to collect them."
            )
            return
        print("\nStopping: waiting for requests in flight (Ctrl-C again to quit now)...", file=sys.stderr)
        job.cancel()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return seen


def cmd_fetch(args: argparse.Namespace) -> int:
    """Read each row's website; write the input plus website_text and website_error."""
    import difflib

    from lib import export, web
    from lib.store import Store, StoreError

    output = Path(args.output)
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx", "json"):
        raise UsageError(f"--output must end in .csv, .xlsx or .json (got '{output.name}').")
    if not 1 <= args.workers <= 256:
        raise UsageError("--workers must be between 1 and 256.")
    if not 0 < args.timeout <= 300:
        raise UsageError("--timeout must be between 0 and 300 seconds.")
    if args.max_chars < 100:
        raise UsageError("--max-chars must be at least 100.")
    leads, _ = _read_input(args)
    columns = [str(c) for c in leads.df.columns]
    if args.url_column not in columns:
        close = difflib.get_close_matches(args.url_column, columns, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(
            f"There is no column named '{args.url_column}'.{hint} Columns: {', '.join(columns)}."
        )
    cells = {int(i): str(v) for i, v in leads.df[args.url_column].items()}
    if cells and not any(v.strip() for v in cells.values()):
        raise UsageError(f"The column '{args.url_column}' has no website addresses: every cell is empty.")
    try:
        store = Store(args.data_dir)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    fetch = web.FetchSettings(
        timeout_s=args.timeout,
        connect_timeout_s=min(5.0, args.timeout),
        about_page=args.about_page,
        max_chars=args.max_chars,
    )
    settings = web.WebSettings(
        workers=args.workers,
        fetch=fetch,
        allow_hosts=tuple(args.allow_host),
        max_age_s=args.max_age_hours * 3600.0,
    )
    started = time.monotonic()
    job = web.WebJob(cells, settings=settings, store=store).start()
    interrupted = _handle_interrupts(job)
    last = 0.0
    while not job.wait(timeout=0.25):
        last = _draw_fetch(job.snapshot(), args.quiet, last)
    snap = job.snapshot()
    _draw_fetch(snap, args.quiet, 0.0, final=True)
    job.close()
    frame = web.website_columns(leads.df, job.rows())
    try:
        export.write_atomic(output, export.export_bytes(frame, fmt))
    except export.ExportError as exc:
        raise UsageError(str(exc)) from exc
    summary = {
        "rows": snap.total,
        "succeeded": snap.succeeded,
        "failed": snap.failed,
        "skipped": snap.skipped,
        "pending": snap.pending,
        "sites": snap.sites,
        "cache_hits": snap.cache_hits,
        "requests_sent": snap.requests,
        "bytes_read": snap.bytes_read,
        "elapsed_s": round(time.monotonic() - started, 3),
        "status": snap.status,
        "output": str(output),
    }
    reason = None
    if interrupted or snap.status != "finished" or snap.pending:
        reason = snap.message or "Stopped before every site was read."
    elif snap.succeeded == 0 and snap.failed:
        first = snap.recent_errors[0].message if snap.recent_errors else ""
        reason = f"No website could be read ({snap.failed} failed). The first reason: {first}"
    if reason:
        summary["reason"] = reason
        print(reason, file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_STOPPED if reason else EXIT_OK


def _draw_fetch(snap, quiet: bool, last: float, final: bool = False) -> float:
    """One progress line on stderr for `fetch` (every few seconds when stderr is not a terminal)."""
    now = time.monotonic()
    tty = sys.stderr.isatty()
    if quiet or (not final and now - last < (0.5 if tty else 5.0)):
        return last
    width = 28
    filled = int(width * snap.progress)
    eta = f" ETA {_duration(snap.eta_s)}" if snap.eta_s else ""
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}] {snap.done}/{snap.total} rows "
        f"({snap.failed} failed, {snap.cache_hits} sites from the store) "
        f"{snap.sites_per_s:.1f} sites/s{eta} [{snap.status}]"
    )
    sys.stderr.write(("\r" + line.ljust(110) + ("\n" if final else "")) if tty else line + "\n")
    sys.stderr.flush()
    return now


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "run": cmd_run,
        "check": cmd_check,
        "fetch": cmd_fetch,
        "compare": lambda a: compare_cli.cmd_compare(a, read_input=_read_input),
    }
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
