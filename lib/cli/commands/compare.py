"""`python -m lib compare INPUT --prompt A --prompt B ...`: prompt variants side by side on a few rows.

Each --prompt or --template starts a variant; --system, --model, --temperature, --max-tokens and --name
given after it apply to that variant, given before any variant they are every variant's default. The
variants run one after another over the same rows (lib/workbench/variants.py), so an answer already paid
for (by an earlier variant, compare or run on this endpoint) is reused, and a variant identical to an
earlier one sends nothing. The side-by-side table goes to --output (.csv, .xlsx or .json); without it a
readable table goes to stderr. The last line on stdout is one JSON object; exit codes as for run
(lib/cli/exits.py): 3 when a variant stopped early or every row of a variant failed, 4 when some rows failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lib.cli import args as cli_args
from lib.cli import loading
from lib.cli.exits import EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED, UsageError
from lib.cli.progress import Progress, run_frame
from lib.models.catalog import default_model

ORDER = 40
PER_VARIANT = ("system", "model", "temperature", "max_tokens", "name")
DEFAULT_ROWS = 5


class _InOrder(argparse.Action):
    """Records (option, value) in the order given, so each option can apply to the variant before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = list(getattr(namespace, "steps", None) or [])
        steps.append((self.dest, values, option_string))
        namespace.steps = steps


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare",
        help="try prompt variants side by side on a few rows",
        description="Each --prompt or --template starts a variant. --system, --model, --temperature, "
        "--max-tokens and --name after a variant apply to it; before the first variant they are the default "
        "of all. The app shows up to 4 variants side by side; here there is no limit, but each one is a "
        "sample run that costs money (answers already paid for are reused).",
    )
    p.add_argument("input")
    p.set_defaults(steps=[])
    p.add_argument("--prompt", action=_InOrder, metavar="NAME|FILE", help="a library prompt or a .yaml file")
    p.add_argument("--template", action=_InOrder, metavar="TEXT", help="a template with {{ Column }}s")
    p.add_argument("--system", action=_InOrder, metavar="TEXT", help="system text")
    p.add_argument("--model", action=_InOrder, help=f"model (default: the prompt's, else {default_model()})")
    p.add_argument("--temperature", action=_InOrder, type=cli_args.number(0, 2), metavar="T")
    p.add_argument(
        "--max-tokens", action=_InOrder, type=cli_args.whole(1), metavar="N", help="max output tokens per row"
    )
    p.add_argument("--name", action=_InOrder, help="the variant's name in the table and the JSON")
    rows = p.add_mutually_exclusive_group()
    rows.add_argument(
        "--rows", type=cli_args.whole(1), metavar="N", help=f"the first N rows (default {DEFAULT_ROWS})"
    )
    rows.add_argument("--row-ids", metavar="IDS", help="these rows, e.g. 1,5,9-12 (1 = the first data row)")
    rows.add_argument(
        "--random", type=cli_args.whole(1), metavar="N", help="N random rows (the same ones for a --seed)"
    )
    p.add_argument("--seed", type=int, default=1, help="with --random (default 1)")
    cli_args.input_args(p)
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="PLACEHOLDER=COLUMN",
        help="read this column for a placeholder, in every variant that has it (repeatable)",
    )
    p.add_argument(
        "--output",
        type=cli_args.output_path,
        help="the side-by-side table: .csv, .xlsx or .json (default: stderr only)",
    )
    cli_args.csv_for_arg(p)
    p.add_argument(
        "--workers", type=cli_args.whole(1, 256), default=8, help="requests at once per variant (default 8)"
    )
    p.add_argument(
        "--timeout",
        type=cli_args.number(0, 600, above=True, unit="seconds"),
        default=30.0,
        help="seconds per request (default 30)",
    )
    cli_args.data_dir_arg(p)
    p.add_argument("--quiet", action="store_true", help="no table or progress on stderr")
    return p


@dataclasses.dataclass
class _Wanted:
    kind: str  # prompt | template
    value: str
    option: str
    settings: dict


def wanted_variants(steps: Sequence[tuple[str, object, str]]) -> list[_Wanted]:
    """The variants the options describe, each with its settings (the defaults given before it applied)."""
    defaults: dict = {}
    variants: list[_Wanted] = []
    for dest, value, option in steps:
        if dest in ("prompt", "template"):
            variants.append(_Wanted(dest, str(value), option, {}))
        elif not variants:
            if dest == "name":
                raise UsageError(
                    "--name names one variant: give it after that variant's --prompt or --template."
                )
            defaults[dest] = value
        else:
            if dest in variants[-1].settings:
                raise UsageError(f"{option} is given twice for the same variant.")
            variants[-1].settings[dest] = value
    if not variants:
        raise UsageError("Give at least one --prompt NAME or --template TEXT: each one starts a variant.")
    for v in variants:
        v.settings = {**defaults, **v.settings}
    return variants


def _variants(wanted: Sequence[_Wanted]):
    from lib.engine.runs import RunOptions
    from lib.models import DEFAULT_MODEL
    from lib.prompts.library import PromptLibrary, PromptLibraryError
    from lib.prompts.templates import PromptSpec
    from lib.workbench.variants import Variant

    library = PromptLibrary()
    made = []
    for w in wanted:
        s = w.settings
        if w.kind == "template":
            if not w.value.strip():
                raise UsageError("--template is empty: give the text sent for each row.")
            spec = PromptSpec(name="template", template=w.value)
        else:
            try:
                spec = library.load(w.value)
            except PromptLibraryError as exc:
                raise UsageError(str(exc)) from exc
        if s.get("system") is not None:
            spec = dataclasses.replace(spec, system=str(s["system"]))
        options = RunOptions(
            model=s.get("model") or spec.model or DEFAULT_MODEL,
            max_tokens=s["max_tokens"] if s.get("max_tokens") is not None else spec.max_tokens,
            temperature=s["temperature"] if s.get("temperature") is not None else spec.temperature,
        )
        made.append((s.get("name"), spec, options))
    given = [n for n, _, _ in made if n is not None]
    if len(set(given)) != len(given):
        raise UsageError("Two variants have the same --name: give each its own.")
    # The prompt's name, with the model when models differ; with the temperature where that is all that
    # tells two apart; then "(2)", "(3)" for true copies.
    models = {o.model for _, _, o in made}
    bases = [f"{spec.name} · {o.model}" if len(models) > 1 else spec.name for _, spec, o in made]
    for base in set(bases):
        group = [k for k, b in enumerate(bases) if b == base and made[k][0] is None]
        if len({made[k][2].temperature for k in group}) > 1:
            for k in group:
                t = made[k][2].temperature
                bases[k] = f"{base} · t={t if t is not None else 'default'}"
    taken, out = set(given), []
    for (name, spec, options), base in zip(made, bases, strict=True):
        if name is None:
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base} ({n})"
            taken.add(name)
        out.append(Variant(name, spec, options))
    return out


def _mapped(variants: list, columns: list[str], map_args: Sequence[str]):
    """The variants with `--map` applied: each mapping to the variants whose prompt has that placeholder."""
    from lib.prompts import mapping as fitting

    if not map_args:
        return variants, {}
    try:
        wanted = fitting.parse_map_args(map_args)
    except fitting.MappingError as exc:
        raise UsageError(str(exc)) from exc
    used: set[str] = set()
    out = []
    for v in variants:
        names = set(fitting.spec_placeholders(v.spec))
        mine = {p: c for p, c in wanted.items() if p in names}
        try:
            fitting.validate(v.spec, columns, mine)
        except fitting.MappingError as exc:
            raise UsageError(f"--map: {exc}") from exc
        used |= set(mine)
        out.append(dataclasses.replace(v, spec=fitting.apply(v.spec, mine)))
    unused = [p for p in wanted if p not in used]
    if unused:
        raise UsageError(f"--map: no variant's prompt has the placeholder '{unused[0]}'.")
    return out, wanted


def _row_ids(args: argparse.Namespace, df) -> list[int]:
    from lib.workbench.sample import SampleChoice, SampleError, choose_rows

    if args.row_ids is not None:
        choice = SampleChoice(how="ids", ids=args.row_ids)
    elif args.random is not None:
        choice = SampleChoice(how="random", n=args.random, seed=args.seed)
    else:
        choice = SampleChoice(n=args.rows if args.rows is not None else DEFAULT_ROWS)
    try:
        return choose_rows(df, choice)
    except SampleError as exc:
        flag = (
            "--row-ids" if args.row_ids is not None else "--random" if args.random is not None else "--rows"
        )
        raise UsageError(f"{flag}: {exc}") from exc


def main(args: argparse.Namespace) -> int:
    from lib import export
    from lib.engine import RunSettings
    from lib.engine.client import endpoint_from_env
    from lib.envfile import load_dotenv_files, no_key_message
    from lib.store import Store, StoreError
    from lib.workbench import compare, table
    from lib.workbench.variants import CompareError, run_variants

    output = args.output
    variants = _variants(wanted_variants(args.steps))
    load_dotenv_files()
    endpoint = endpoint_from_env()
    if endpoint is None:
        raise UsageError(no_key_message())
    leads, _ = loading.read_input(args)
    variants, mapping = _mapped(variants, [str(c) for c in leads.df.columns], args.map)
    row_ids = _row_ids(args, leads.df)
    try:
        store = Store(args.data_dir)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    progress = Progress(args.quiet)
    try:
        runs = run_variants(
            leads.df,
            row_ids,
            variants,
            endpoint=endpoint,
            store=store,
            settings=RunSettings(workers=min(args.workers, len(row_ids)), timeout_s=args.timeout),
            on_progress=lambda name, snap: progress.draw(
                run_frame(snap, name), final=snap.status not in ("pending", "running")
            ),
            meta={
                "input_name": Path(args.input).name,
                "input_encoding": leads.encoding,
                "prompt_mapping": mapping or None,
            },
        )
    except CompareError as exc:
        raise UsageError(str(exc)) from exc
    matrix = compare.build_matrix(row_ids, {r.variant.name: r.rows for r in runs})
    differing = compare.differing_rows(matrix)
    frame = table.side_by_side(leads.df, row_ids, runs)
    if output is not None:
        try:
            export.write_atomic(
                output, export.export_bytes(frame, cli_args.output_format(output), csv_for=args.csv_for)
            )
        except export.ExportError as exc:
            raise UsageError(str(exc)) from exc
    elif not args.quiet:
        print_table(leads.df, row_ids, runs, matrix, differing)
    summary_variants, problems, failures = [], [], []
    for run in runs:
        t = compare.totals(matrix, run.variant.name, run.variant.options.model)
        projected = compare.project_cost(t, len(leads.df))
        summary_variants.append(
            {
                "name": run.variant.name,
                "prompt": run.variant.spec.name,
                "model": run.variant.options.model,
                "temperature": run.variant.options.temperature,
                "answered": t.answered,
                "failed": t.failed,
                "flagged": t.flagged,
                "cost_usd": round(t.cost_usd, 8) if t.cost_usd is not None else None,
                "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "mean_latency_s": round(t.mean_latency_s, 3) if t.mean_latency_s is not None else None,
                "requests_sent": run.requests_sent,
                "reused_rows": t.reused,
                "same_as": run.same_as,
                "list_cost_usd": round(projected, 8) if projected is not None else None,
                "status": run.status,
                "run_id": run.run_id,
            }
        )
        if run.status != "finished":
            problems.append(f"Variant '{run.variant.name}' stopped: {run.message or run.status}")
        elif t.answered == 0 and t.failed:
            first = next(
                (c.error for c in (matrix.cell(run.variant.name, i) for i in row_ids) if c.error), ""
            )
            problems.append(f"Variant '{run.variant.name}': every row failed; the first error: {first}")
        elif t.failed:
            failures.append(f"Variant '{run.variant.name}': {t.failed} of {len(row_ids)} rows failed.")
    summary = {
        "rows": len(row_ids),
        "row_ids": row_ids,
        "rows_differing": len(differing),
        "differing_row_ids": differing,
        "list_rows": len(leads.df),
        "variants": summary_variants,
        "output": str(output) if output is not None else None,
    }
    if problems or failures:
        summary["reason"] = " ".join(dict.fromkeys(problems or failures))
        print(summary["reason"], file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    # A variant stopped or answering nothing is the whole compare stopped; failed rows elsewhere are a 4.
    return EXIT_STOPPED if problems else EXIT_SOME_FAILED if failures else EXIT_OK


def print_table(df, row_ids, runs, matrix, differing) -> None:
    """The answers as blocks a person reads in a terminal: each row's first cells, then each variant's answer;
    rows where answers differ are marked, and with two variants their word difference is shown."""
    from lib.workbench.compare import diff_text

    columns = [str(c) for c in df.columns][:3]
    width = max(len(r.variant.name) for r in runs)
    out = sys.stderr
    for row_id in row_ids:
        cells = " · ".join(f"{c}: {_short(str(df.at[row_id, c]))}" for c in columns)
        mark = "  (answers differ)" if row_id in differing else ""
        print(f"\nrow {row_id} · {cells}{mark}", file=out)
        for run in runs:
            cell = matrix.cell(run.variant.name, row_id)
            text = cell.text if cell.text is not None else f"[{cell.status}] {cell.error or ''}".strip()
            print(f"  {run.variant.name.ljust(width)} | {' '.join(text.split())}", file=out)
        if len(runs) == 2 and row_id in differing:
            a, b = (matrix.cell(r.variant.name, row_id).text or "" for r in runs)
            print(f"  {'diff'.ljust(width)} | {' '.join(diff_text(a, b).split())}", file=out)
    print(file=out)


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
