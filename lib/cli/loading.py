"""What run, check and compare do with their input and prompt arguments: read the file, load the prompt
with the command's checks, fit its placeholders to the columns, and the model's options."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from pathlib import Path

from lib.cli.exits import UsageError


def load_spec(args: argparse.Namespace):
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
    merged = spec.checks.merged(
        max_words=args.check_max_words,
        max_chars=args.check_max_chars,
        banned=[p.strip() for p in args.check_banned],
        mention=[c.strip() for c in args.check_mention],
    )
    return dataclasses.replace(spec, checks=merged)


def check_mentions(spec, columns: list[str]) -> None:
    """A column to mention must exist: a typo would otherwise flag nothing, silently."""
    for column in spec.checks.mention:
        if column not in columns:
            close = difflib.get_close_matches(column, columns, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"Must-mention check: there is no column named '{column}'.{hint}")


def read_input(args: argparse.Namespace):
    """(the lead file as read, its bytes); a file that cannot be read is bad input, in one line."""
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


def file_summary(leads) -> dict:
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


def run_options(args: argparse.Namespace, spec):
    """The model's options from the flags over the prompt's own (the flags were checked as they were read)."""
    from lib.cost.pricing import Price, price_for
    from lib.engine.runs import RunOptions
    from lib.models import DEFAULT_MODEL

    price = None
    if args.price_as is not None:
        price = price_for(args.price_as)
        if price is None:
            raise UsageError(
                f"--price-as {args.price_as}: that model has no price either. Name a priced model "
                "(e.g. gpt-6-luna) or give --price-input and --price-output."
            )
    if args.price_input is not None:
        cached = args.price_cached_input if args.price_cached_input is not None else args.price_input
        per_call = (
            args.price_web_search / 1000 if getattr(args, "price_web_search", None) is not None else None
        )
        price = Price(args.price_input, cached, args.price_output, web_search_call=per_call)
    return RunOptions(
        model=args.model or spec.model or DEFAULT_MODEL,
        max_tokens=args.max_tokens if args.max_tokens is not None else spec.max_tokens,
        temperature=args.temperature if args.temperature is not None else spec.temperature,
        reasoning_effort=(None if args.reasoning_effort in (None, "auto") else args.reasoning_effort)
        or spec.reasoning_effort,
        empty="skip" if args.skip_empty else "send",
        limit=args.limit,
        price=price,
        service_tier=args.service_tier,
        rows_per_request=args.rows_per_request,
        api=None if args.api == "auto" else args.api,
        web_search=args.web_search,
        max_tool_calls=args.max_tool_calls,
        search_context_size=args.search_context_size,
        one_answer_per=args.one_answer_per,
    )


def model_status(model: str, endpoint=None, store=None) -> dict:
    """The model's shutdown state for the JSON line (and a warning on stderr when it is retiring): from the
    endpoint's GET /v1/models when there is an endpoint (kept a day in the store), else the catalog."""
    from lib.models import retirement
    from lib.models.listing import fetch_models

    listing = fetch_models(endpoint, store=store) if endpoint is not None else None
    status = retirement(model, listing=listing)
    if status.retiring:
        print(f"Warning: {status.words()}", file=sys.stderr)
    return {
        "state": status.state,
        "shutdown_date": status.date.isoformat() if status.date else None,
        "replacement": status.replacement,
        "source": status.source or None,
    }


def mapped(args: argparse.Namespace, spec, columns: list[str]):
    """The prompt with --map applied (and the mapping, {} without --map); bad --map is bad input."""
    from lib.prompts.mapping import MappingError, mapped_spec

    try:
        return mapped_spec(spec, columns, args.map)
    except MappingError as exc:
        raise UsageError(str(exc)) from exc


def missing_columns(spec, columns) -> list[dict]:
    """The placeholders the file has no column for, each with its message and suggestions."""
    from lib.prompts.templates import check

    return [
        {"placeholder": p.placeholder, "message": p.message, "suggestions": list(p.suggestions)}
        for p in check(spec, columns)
    ]


def fit_rows(found) -> list[dict]:
    """A Fit's rows as JSON: each placeholder's column and status on this file, with a note."""
    return [
        {"placeholder": r.placeholder, "column": r.column, "status": r.status, "note": r.note}
        for r in found.rows
    ]


def print_fit(found) -> None:
    """The fit as lines a person reads, on stderr (stdout's last line stays the JSON); nothing when every
    placeholder has its own column (so an error stays one line)."""
    if all(r.status == "matches" for r in found.rows) and not found.example_notes:
        return
    print("Placeholders on this file:", file=sys.stderr)
    for r in found.rows:
        print(f"  {{{{ {r.placeholder} }}}} -> {r.column or '-'}: {r.status}. {r.note}", file=sys.stderr)
    for note in found.example_notes:
        print(f"  Note: {note}", file=sys.stderr)


def missing_message(missing: list[dict], found) -> str:
    """'The prompt uses columns the file does not have: ...' ending with the --map arguments suggested."""
    pairs = [f'--map "{r.placeholder}={r.column}"' for r in found.rows if r.status == "suggested"]
    hint = f" Try: {' '.join(pairs)}" if pairs else ""
    return (
        "The prompt uses columns the file does not have: " + "; ".join(m["message"] for m in missing) + hint
    )
