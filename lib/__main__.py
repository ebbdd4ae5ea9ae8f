"""Command line: `python -m lib run ...` enriches a lead file headless; `python -m lib check ...` quotes it.

A contract others build on: the last line on stdout is one JSON object; exit 0 when every row has a
final state, 2 for bad input or configuration, 3 when the run stopped early (budget, quota, key).
Running the same `run` command again after an interruption resumes it: answers already paid for are
reused from the data directory, so only the missing rows are sent. `--mode batch` sends the rows through
OpenAI's Batch API instead (half the price, results within 24 h); the final JSON line then also carries
`batch_ids`, `cost_live_usd` and `saved_usd`, and running the command again picks up its batches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 2, 3


class UsageError(Exception):
    """Bad input or configuration: printed as one clear line, exit code 2."""


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
        p.add_argument("--sheet", help="XLSX: the sheet to read (default: the first with data)")
        p.add_argument(
            "--skip-empty", action="store_true", help="skip rows whose placeholder cells are empty"
        )
        p.add_argument("--limit", type=int, help="only the first N rows")
        p.add_argument(
            "--price-input", type=float, help="USD per 1M input tokens (overrides the price table)"
        )
        p.add_argument("--price-cached-input", type=float, help="USD per 1M cached input tokens")
        p.add_argument("--price-output", type=float, help="USD per 1M output tokens")
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
    run.add_argument("--workers", type=int, default=16)
    run.add_argument("--rpm", type=int, help="requests-per-minute ceiling (below the account's)")
    run.add_argument("--tpm", type=int, help="tokens-per-minute ceiling (below the account's)")
    run.add_argument("--budget", type=float, help="stop before spending more than this many USD")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
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
    return parser


def _load_spec(args: argparse.Namespace):
    from lib.prompts.library import PromptLibrary, PromptLibraryError
    from lib.prompts.templates import PromptSpec

    if args.template is not None:
        return PromptSpec(name="command-line", system=args.system, template=args.template)
    try:
        return PromptLibrary().load(args.prompt)
    except PromptLibraryError as exc:
        raise UsageError(str(exc)) from exc


def _read_input(args: argparse.Namespace):
    from lib.leads import LeadFileError, read_leads

    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"Input file not found: {path}")
    data = path.read_bytes()
    try:
        return read_leads(data, path.name, sheet=args.sheet, ragged="skip"), data
    except LeadFileError as exc:
        raise UsageError(f"{path.name}: {exc}") from exc


def _options(args: argparse.Namespace, spec):
    from lib.cost.pricing import Price
    from lib.engine.runs import RunOptions
    from lib.prompts.models import DEFAULT_MODEL

    price = None
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

    spec = _load_spec(args)
    leads, _ = _read_input(args)
    options = _options(args, spec)
    missing = _check_template(spec, list(leads.df.columns))
    summary = {
        "rows": len(leads.df),
        "columns": list(leads.df.columns),
        "encoding": leads.encoding,
        "delimiter": leads.delimiter,
        "sheet": leads.sheet,
        "renamed_headers": leads.renamed_headers,
        "rejected_lines": [{"line": r.line, "reason": r.reason} for r in leads.rejected],
        "missing_placeholders": missing,
        "model": options.model,
    }
    if missing:
        print(json.dumps(summary, ensure_ascii=False))
        print(
            "The prompt uses columns the file does not have: " + "; ".join(m["message"] for m in missing),
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
    from lib.engine.runs import PlanError, plan_run, results_frame, stable_run_id
    from lib.prompts.library import dump_spec
    from lib.store import Store, StoreError

    output = Path(args.output)
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx", "json"):
        raise UsageError(f"--output must end in .csv, .xlsx or .json (got '{output.name}').")
    if args.workers < 1 or args.workers > 1000:
        raise UsageError("--workers must be between 1 and 1000.")
    load_dotenv_once()
    endpoint = endpoint_from_env()
    if endpoint is None:
        raise UsageError("No API key: set OPENAI_API_KEY in the environment or in a .env file.")
    spec = _load_spec(args)
    leads, raw = _read_input(args)
    options = _options(args, spec)
    missing = _check_template(spec, list(leads.df.columns))
    if missing:
        raise UsageError(
            "The prompt uses columns the file does not have: " + "; ".join(m["message"] for m in missing)
        )
    run_id = stable_run_id(
        hashlib.sha256(raw).hexdigest(),
        dump_spec(spec),
        json.dumps(options.__dict__, sort_keys=True, default=str),
        endpoint.base_url or "",
        str(args.sheet),
    )
    try:
        store = Store(args.data_dir)
        plan = plan_run(
            leads.df,
            spec,
            options,
            base_url=endpoint.base_url,
            run_id=run_id,
            meta={"input_name": Path(args.input).name},
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
        if args.mode == "batch":
            job.resend_live(settings)  # what the batch could not answer (expired, per-line errors) goes live
        else:
            job.retry_failed()
        while not job.wait(timeout=0.25):
            progress.draw(job.snapshot())
    snap = job.snapshot()
    progress.draw(snap, final=True)
    frame = results_frame(plan.inputs, job.rows(), plan.meta, job.edits())
    try:
        export.write_atomic(output, export.export_bytes(frame, fmt))
    except export.ExportError as exc:
        raise UsageError(str(exc)) from exc
    summary = {
        "rows": snap.total,
        "succeeded": snap.succeeded,
        "failed": snap.failed,
        "pending": snap.pending,
        "skipped": snap.skipped,
        "prompt_tokens": snap.prompt_tokens,
        "completion_tokens": snap.completion_tokens,
        "cost_usd": round(snap.cost_usd, 8) if snap.cost_known else None,
        "requests_sent": snap.requests_sent,
        "cache_hits": snap.cache_hits,
        "service_tiers": dict(snap.tier_rows),
        "cached_tokens": snap.cached_tokens,
        "cache_write_tokens": snap.cache_write_tokens,
        "saved_by_caching_usd": round(snap.saved_by_caching_usd, 8) if snap.cost_known else None,
        "elapsed_s": round(time.monotonic() - started, 3),
        "status": snap.status,
        "output": str(output),
    }
    if args.mode == "batch":
        saving = job.savings()
        summary.update(
            mode="batch",
            batch_ids=job.batch_ids(),
            cost_live_usd=round(saving.live_cost_usd, 8) if saving.live_cost_usd is not None else None,
            saved_usd=round(saving.saved_usd, 8) if saving.saved_usd is not None else None,
        )
    if snap.message and snap.status != "finished":
        summary["reason"] = snap.message
        print(snap.message, file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK if snap.status == "finished" and snap.pending == 0 else EXIT_STOPPED


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
        if getattr(job, "mode", "live") == "batch":
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return cmd_run(args) if args.command == "run" else cmd_check(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
