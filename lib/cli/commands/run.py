"""`python -m lib run INPUT --output OUT --prompt NAME`: enrich a lead file headless.

Running the same command again after an interruption resumes it: answers already paid for are reused
from the data directory, so only the missing rows are sent. `--mode batch` sends the rows through
OpenAI's Batch API instead (half the price, results within 24 h); the final JSON line then also carries
`batch_ids`, `cost_live_usd` and `saved_usd`, and running the command again picks up its batches.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from lib.cli import args as cli_args
from lib.cli import loading
from lib.cli.exits import UsageError, rows_exit
from lib.cli.interrupts import Interrupts
from lib.cli.progress import Progress
from lib.cli.regenerate import Regenerated, ask_again

ORDER = 10
BATCH_MAX_REQUESTS = 50_000  # the Batch API's own limit per batch (lib/batch/files.py MAX_REQUESTS)


def add_parser(sub) -> argparse.ArgumentParser:
    whole, number, seconds = cli_args.whole, cli_args.number, cli_args.seconds
    p = sub.add_parser("run", help="run a prompt over every row and write the results")
    p.add_argument("input")
    p.add_argument(
        "--output", required=True, type=cli_args.output_path, help="results file: .csv, .xlsx or .json"
    )
    cli_args.prompt_args(p)
    cli_args.csv_for_arg(p)
    p.add_argument("--workers", type=whole(1, 1000), default=16, help="requests at once (default 16)")
    p.add_argument(
        "--rpm",
        type=whole(1, unit="requests per minute"),
        help="requests-per-minute ceiling (below the account's)",
    )
    p.add_argument(
        "--tpm",
        type=whole(1, unit="tokens per minute"),
        help="tokens-per-minute ceiling (below the account's)",
    )
    p.add_argument("--budget", type=cli_args.usd, help="stop before spending more than this many USD")
    p.add_argument("--timeout", type=seconds, default=30.0, help="seconds per request (default 30)")
    p.add_argument(
        "--give-up-after",
        type=seconds,
        metavar="S",
        help="pause (rows pending, exit 3) when nothing succeeds for S seconds while the server refuses",
    )
    p.add_argument(
        "--flex-fallback",
        action="store_true",
        help="with --service-tier flex: go on at the standard price if flex capacity stays unavailable",
    )
    p.add_argument(
        "--flex-patience",
        type=number(0, unit="seconds"),
        default=600.0,
        metavar="S",
        help="seconds without flex capacity before --flex-fallback switches to the default tier (600)",
    )
    cli_args.data_dir_arg(p)
    p.add_argument("--retry-failed", action="store_true", help="send failed rows again")
    p.add_argument(
        "--regenerate",
        type=whole(0, 10, unit="attempts"),
        default=0,
        metavar="N",
        help="ask again, at most N times, for rows a quality check flagged (each attempt billed and budgeted)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--mode",
        choices=("live", "batch"),
        default="live",
        help="live: send now (default); batch: OpenAI's Batch API, half the price, results within 24 h",
    )
    p.add_argument(
        "--poll-interval",
        type=seconds,
        default=30.0,
        help="batch mode: longest seconds between status checks",
    )
    p.add_argument(
        "--batch-max-requests",
        type=whole(1, BATCH_MAX_REQUESTS),
        default=BATCH_MAX_REQUESTS,
        help=f"batch mode: requests per batch (at most {BATCH_MAX_REQUESTS:,})",
    )
    return p


def check_flags(args: argparse.Namespace) -> None:
    """The options that only make sense together, before anything is read, planned or written."""
    cli_args.check_prompt_flags(args)
    if args.flex_fallback and args.service_tier != "flex":
        raise UsageError("--flex-fallback only applies with --service-tier flex.")
    if args.mode == "batch" and args.service_tier != "default":
        raise UsageError("--service-tier applies to live runs; the Batch API has its own price.")


def settings_of(args: argparse.Namespace):
    from lib import engine

    return engine.RunSettings(
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


def main(args: argparse.Namespace) -> int:
    from lib import engine, export
    from lib.engine.client import endpoint_from_env
    from lib.engine.runs import (
        NEWER_OPTIONS,
        PlanError,
        plan_run,
        quality_counts,
        results_frame,
        stable_run_id,
        with_list_checks,
    )
    from lib.envfile import load_dotenv_files, no_key_message
    from lib.prompts.library import dump_spec
    from lib.prompts.mapping import fit
    from lib.store import Store, StoreError

    check_flags(args)
    settings = settings_of(args)
    load_dotenv_files()
    endpoint = endpoint_from_env()
    if endpoint is None:
        raise UsageError(no_key_message())
    spec = loading.load_spec(args)
    leads, raw = loading.read_input(args)
    options = loading.run_options(args, spec)
    columns = [str(c) for c in leads.df.columns]
    spec, mapping = loading.mapped(args, spec, columns)
    missing = loading.missing_columns(spec, columns)
    loading.check_mentions(spec, columns)
    if missing:
        raise UsageError(loading.missing_message(missing, fit(spec, columns)))
    run_id = stable_run_id(
        hashlib.sha256(raw).hexdigest(),
        dump_spec(spec),
        json.dumps(
            {k: v for k, v in options.__dict__.items() if v is not None or k not in NEWER_OPTIONS},
            sort_keys=True,
            default=str,
        ),
        endpoint.base_url or "",
        str(args.sheet),
        # The encoding changes every cell's text, so another one is another run (None: detected).
        *([f"encoding={leads.encoding}"] if args.encoding else []),
    )
    try:
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
                # What the app's Resume and Regenerate carry on with (tier, ceilings, budget, workers).
                "run_settings": dataclasses.asdict(settings),
            },
        )
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    settings = dataclasses.replace(settings, transport=plan.meta["api"])  # the API the plan was made for
    if args.mode == "batch":
        check_batch(args, plan)
    try:
        store = Store(args.data_dir)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc

    # The endpoint's model list (kept a day): a model past its shutdown date is refused by the engine before
    # anything is sent (every row pending, exit 3); one shutting down is a warning.
    model_state = loading.model_status(options.model, endpoint, store)
    started = time.monotonic()
    interrupts = Interrupts().install()
    progress = Progress(args.quiet)
    if args.mode == "batch":
        job = interrupts.watch(start_batch(args, plan, endpoint, store))
    else:
        job = interrupts.watch(engine.start(plan, endpoint=endpoint, settings=settings, store=store))
    progress.follow(job)
    if args.retry_failed and job.snapshot().failed and not interrupts.stopped:
        from lib.engine.resume import continue_run  # the one way on; a batch's failed rows go again live

        job = interrupts.watch(
            continue_run(store, plan.run_id, endpoint, retry_failed=True, settings=settings)
        )
        progress.follow(job)
    snap = job.snapshot()
    again = Regenerated(rows=job.rows())
    if args.regenerate and not interrupts.stopped and snap.status == "finished":
        again = ask_again(
            store,
            plan.run_id,
            again.rows,
            endpoint=endpoint,
            settings=settings,
            most=args.regenerate,
            progress=progress,
            interrupts=interrupts,
        )
    frame = results_frame(plan.inputs, again.rows, plan.meta, job.edits())
    quality = quality_counts(with_list_checks(again.rows, plan.meta))
    fmt = cli_args.output_format(args.output)
    try:
        export.write_atomic(args.output, export.export_bytes(frame, fmt, csv_for=args.csv_for))
    except export.ExportError as exc:
        raise UsageError(str(exc)) from exc
    summary = {
        "rows": snap.total,
        "succeeded": snap.succeeded,
        "failed": snap.failed,
        "pending": snap.pending,
        "skipped": snap.skipped,
        "prompt_tokens": snap.prompt_tokens + again.prompt_tokens,
        "completion_tokens": snap.completion_tokens + again.completion_tokens,
        "cost_usd": round(snap.cost_usd + again.cost_usd, 8) if snap.cost_known else None,
        # Of which an estimate: requests that may have been billed though no answer said so (dropped, timed out).
        "estimated_usd": round(snap.estimated_usd, 8),
        "requests_sent": snap.requests_sent + again.requests_sent,
        "cache_hits": snap.cache_hits + again.cache_hits,
        "service_tiers": dict(snap.tier_rows),
        "cached_tokens": snap.cached_tokens,
        "cache_write_tokens": snap.cache_write_tokens,
        "saved_by_caching_usd": round(snap.saved_by_caching_usd, 8) if snap.cost_known else None,
        "elapsed_s": round(time.monotonic() - started, 3),
        "status": snap.status,
        "reasoning_effort": plan.meta.get("reasoning_effort"),
        "reasoning_tokens": snap.reasoning_tokens,
        "api": plan.meta.get("api"),
        "web_search_calls": getattr(snap, "web_search_calls", 0),
        "model_status": model_state,
        "output": str(args.output),
        **loading.file_summary(leads),
        "quality": quality,
    }
    if fmt == "csv":
        summary["csv_for"] = args.csv_for
        summary["cells_guarded"] = (
            export.csv_changes(frame).spreadsheet if args.csv_for == "spreadsheet" else 0
        )
    adjusted = getattr(snap, "adjustments", ())
    if adjusted:
        summary["adjusted"] = list(adjusted)
        for note in adjusted:
            print(f"Adjusted: {note}", file=sys.stderr)
    if args.regenerate:
        summary["regenerated"] = again.asked  # rows asked again, per attempt
        if again.stopped:
            summary["regenerate_stopped"] = again.stopped
            print(again.stopped, file=sys.stderr)
    if args.mode == "batch":
        saving = job.savings()
        summary.update(
            mode="batch",
            batch_ids=job.batch_ids(),
            cost_live_usd=round(saving.live_cost_usd, 8) if saving.live_cost_usd is not None else None,
            saved_usd=round(saving.saved_usd, 8) if saving.saved_usd is not None else None,
        )
    # Ctrl-C after the list was done but while flagged rows were being asked again stops that, too.
    regenerate_cut = bool(args.regenerate) and interrupts.stopped and snap.status == "finished"
    stopped = snap.status != "finished" or snap.pending > 0 or regenerate_cut
    reason = _reason(snap, stopped, again.stopped if regenerate_cut else None)
    if reason:
        summary["reason"] = reason
        if reason != again.stopped:  # that line is on stderr already
            print(reason, file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    return rows_exit(stopped=stopped, succeeded=snap.succeeded, failed=snap.failed)


def _reason(snap, stopped: bool, regenerate_cut: str | None) -> str | None:
    """Why the run did not end with every row answered, in one line (None when it did)."""
    if stopped and snap.status == "finished" and not snap.pending:
        return regenerate_cut or "Stopped (Ctrl-C) before every flagged row was asked again."
    if stopped:
        return snap.message or "Stopped before every row was sent."
    if snap.failed and not snap.succeeded:  # every row sent failed: not a finished list, whatever the status
        first = snap.recent_errors[0].message if snap.recent_errors else "unknown"
        return f"Every row sent failed ({snap.failed}); the first error: {first}"
    if snap.failed:
        return f"{snap.failed:,} of {snap.total:,} rows failed: run again with --retry-failed to send them again."
    return None


def check_batch(args: argparse.Namespace, plan) -> None:
    """Batch mode: refuse what cannot work, before anything is written."""
    from lib.cost.pricing import Usage, cost
    from lib.prompts.research import allowance

    if plan.packs:
        raise UsageError(
            "Packed rows go live; leave out --rows-per-request (or rows_per_request) for a batch."
        )
    if args.budget is not None and plan.price is not None:
        # A batch cannot be stopped half-way at a budget: its worst case must fit before it is sent.
        def most(item) -> float:
            calls, per_call = allowance(item.body)
            usage = Usage(
                item.prompt_tokens + calls * per_call, item.max_output_tokens, web_search_calls=calls
            )
            return cost(usage, plan.price, batch=True) or 0.0

        worst = sum(most(i) for i in plan.items)
        if worst > args.budget:
            raise UsageError(
                f"Batch mode sends every row at once: the worst case is ${worst:.2f}, over the "
                f"--budget ${args.budget:.2f}. Raise the budget, lower --max-tokens or use --mode live."
            )


def start_batch(args: argparse.Namespace, plan, endpoint, store):
    """Start (or pick up) the run's batches."""
    from lib import batch
    from lib.batch.files import BatchLimits

    settings = batch.BatchSettings(
        poll_interval_s=args.poll_interval, limits=BatchLimits(max_requests=args.batch_max_requests)
    )
    return batch.start(plan, endpoint=endpoint, store=store, settings=settings)
