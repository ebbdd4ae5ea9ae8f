"""`python -m lib fetch INPUT --url-column COL --output OUT`: read each row's website; the output is the
input plus `website_text` and `website_error`. Readings are kept in the data dir, so a rerun reads nothing
again. Exit codes as for run (lib/cli/exits.py): a site that could not be read is a failed row."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time

from lib.cli import args as cli_args
from lib.cli import loading
from lib.cli.exits import UsageError, rows_exit
from lib.cli.interrupts import Interrupts
from lib.cli.progress import Progress, fetch_frame

ORDER = 30


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("fetch", help="read each row's website: adds website_text and website_error")
    p.add_argument("input")
    p.add_argument("--url-column", required=True, help="the column with each lead's website address")
    p.add_argument(
        "--output",
        required=True,
        type=cli_args.output_path,
        help="the input plus two columns: .csv, .xlsx or .json",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="an intranet host that may be read although it resolves to a private address (repeatable)",
    )
    p.add_argument("--workers", type=cli_args.whole(1, 256), default=8, help="sites read at once (default 8)")
    p.add_argument(
        "--timeout",
        type=cli_args.number(0, 300, above=True, unit="seconds"),
        default=15.0,
        help="seconds per request, all in (default 15)",
    )
    cli_args.data_dir_arg(p, "readings are kept")
    cli_args.input_args(p)
    p.add_argument("--about-page", action="store_true", help="also read the page linked as About us")
    p.add_argument(
        "--max-chars", type=cli_args.whole(100), default=8_000, help="text kept per site (default 8000)"
    )
    p.add_argument(
        "--max-age-hours",
        type=cli_args.number(0, unit="hours"),
        default=168.0,
        help="read a site again after this long (default 168)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(args: argparse.Namespace) -> int:
    """Read each row's website; write the input plus website_text and website_error."""
    from lib import export, web
    from lib.store import Store, StoreError

    leads, _ = loading.read_input(args)
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
    interrupts = Interrupts().install()
    job = interrupts.watch(web.WebJob(cells, settings=settings, store=store).start())
    Progress(args.quiet).follow(job, fetch_frame)
    snap = job.snapshot()
    job.close()
    frame = web.website_columns(leads.df, job.rows())
    try:
        export.write_atomic(args.output, export.export_bytes(frame, cli_args.output_format(args.output)))
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
        "output": str(args.output),
    }
    stopped = interrupts.stopped or snap.status != "finished" or bool(snap.pending)
    reason = None
    if stopped:
        reason = snap.message or "Stopped before every site was read."
    elif snap.succeeded == 0 and snap.failed:
        first = snap.recent_errors[0].message if snap.recent_errors else ""
        reason = f"No website could be read ({snap.failed} failed). The first reason: {first}"
    elif snap.failed:
        reason = f"{snap.failed:,} of {snap.total:,} websites could not be read: website_error says why."
    if reason:
        summary["reason"] = reason
        print(reason, file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    return rows_exit(stopped=stopped, succeeded=snap.succeeded, failed=snap.failed)
