"""What the commands share on their command line: the parser, number checks for `type=`, and the input and
prompt arguments.

Numbers are checked by argparse as they are read (`whole`, `number`, `usd`), so a bad one is a usage error
(exit 2, one line naming the flag and what it accepts) before any file is read or the data dir is opened.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from lib.cli.exits import EXIT_BAD_INPUT, UsageError
from lib.models.catalog import default_model, effort_ladder

OUTPUT_FORMATS = ("csv", "xlsx", "json")


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line: `error: --workers must be ... (got '0').` and exit 2."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --workers: must be..."; the flag then reads as the sentence's subject.
        if message.startswith("argument "):
            flag, _, rest = message.removeprefix("argument ").partition(": ")
            message = f"{flag} {rest}" if rest.startswith("must ") else f"{flag}: {rest}"
        message = message.rstrip(".") + "."
        print(f"error: {message} See `{self.prog} --help`.", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _bounds(low: float, high: float | None, above: bool) -> str:
    if high is not None:
        return f"above {low:,g} and at most {high:,g}" if above else f"from {low:,g} to {high:,g}"
    return f"above {low:,g}" if above else f"of at least {low:,g}"


def whole(low: int, high: int | None = None, unit: str = "") -> Callable[[str], int]:
    """A `type=` for a whole number from `low` (to `high`); anything else is refused naming the range."""
    wanted = f"a whole number {_bounds(low, high, False)}" + (f", in {unit}" if unit else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted} (got {text!r})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted} (got {text!r})")
        return value

    return parse


def number(
    low: float, high: float | None = None, *, above: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """A `type=` for a finite number from `low` (strictly above it with `above`), at most `high`."""
    wanted = f"a number {_bounds(low, high, above)}" + (f", in {unit}" if unit else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted} (got {text!r})") from None
        if (
            not math.isfinite(value)
            or value < low
            or (above and value == low)
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"must be {wanted} (got {text!r})")
        return value

    return parse


seconds = number(0, above=True, unit="seconds")
usd = number(0, unit="US dollars")
per_million = number(0, unit="US dollars per 1M tokens")


def output_path(text: str) -> Path:
    """A `type=` for --output: a file whose name says its format."""
    path = Path(text)
    if path.suffix.lower().lstrip(".") not in OUTPUT_FORMATS:
        raise argparse.ArgumentTypeError(f"must end in .csv, .xlsx or .json (got '{path.name}')")
    return path


def output_format(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def input_args(p: argparse.ArgumentParser) -> None:
    """How the input file is read: the same options for run, check, fetch and compare."""
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


def data_dir_arg(p: argparse.ArgumentParser, what: str = "answers are journalled") -> None:
    p.add_argument("--data-dir", default="results", help=f"where {what} (default results/)")


def csv_for_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv-for",
        choices=("spreadsheet", "crm"),
        default="spreadsheet",
        help="CSV output: 'spreadsheet' (default) puts an apostrophe before cells Excel would run as "
        "formulas; 'crm' keeps every cell's exact text, for importing into a CRM",
    )


def prompt_args(p: argparse.ArgumentParser) -> None:
    """The prompt, the model's settings, the checks and the prices: the same options for run and check."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", help="a prompt of the library (name) or a prompt .yaml file")
    group.add_argument("--template", help="a user template with {{ Column Name }} placeholders")
    p.add_argument("--system", default="", help="system text (with --template)")
    p.add_argument("--model", help=f"model name (default: the prompt's, else {default_model()})")
    p.add_argument(
        "--reasoning-effort",
        choices=("auto", *effort_ladder()),
        help="hidden thinking for reasoning models, billed as output (default: the prompt's, else the "
        "cheapest the model takes: none where it exists); a model that does not reason ignores it",
    )
    p.add_argument("--max-tokens", type=whole(1), help="max output tokens per row")
    p.add_argument("--temperature", type=number(0, 2))
    input_args(p)
    p.add_argument("--skip-empty", action="store_true", help="skip rows whose placeholder cells are empty")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="PLACEHOLDER=COLUMN",
        help="read this column for this placeholder, e.g. --map 'Company=Company Name' (repeatable)",
    )
    p.add_argument("--limit", type=whole(1), help="only the first N rows")
    p.add_argument("--check-max-words", type=whole(1), metavar="N", help="flag answers over N words")
    p.add_argument("--check-max-chars", type=whole(1), metavar="N", help="flag answers over N characters")
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
        "--price-input", type=per_million, help="USD per 1M input tokens (overrides the price table)"
    )
    p.add_argument("--price-cached-input", type=per_million, help="USD per 1M cached input tokens")
    p.add_argument("--price-output", type=per_million, help="USD per 1M output tokens")
    p.add_argument(
        "--price-as",
        metavar="MODEL",
        help="price a deployment or proxy model name as this priced model (e.g. gpt-6-luna)",
    )
    p.add_argument(
        "--service-tier",
        choices=("default", "flex", "priority", "fast", "auto"),
        default="default",
        help="flex: batch prices on live requests, slower, retried when capacity is short; "
        "priority: faster, dearer (default: default)",
    )
    p.add_argument(
        "--rows-per-request",
        type=whole(1, 50),
        metavar="N",
        help="pack N rows into one request (the prompt's shared start is paid once per N rows); "
        "default: the prompt file's rows_per_request, else 1",
    )
    p.add_argument(
        "--api",
        choices=("auto", "responses", "chat"),
        default="auto",
        help="the API rows go through: responses (OpenAI's Responses API) or chat (Chat Completions); "
        "auto (default): responses on api.openai.com, chat on other endpoints. Web research needs responses",
    )
    p.add_argument(
        "--web-search",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="research each row on the web (the Responses API's web_search tool, billed per call) and "
        "add a sources column; default: the prompt's tools",
    )
    p.add_argument(
        "--max-tool-calls",
        type=whole(1, 20),
        metavar="N",
        help="web research: the most billed searches one row may make (default: the prompt's, else 3)",
    )
    p.add_argument(
        "--search-context-size",
        choices=("low", "medium", "high"),
        help="web research: how much of the found pages the model reads (billed as input; default medium)",
    )
    p.add_argument(
        "--one-answer-per",
        metavar="FIELD",
        help="ask once per company and give every row of it that answer: the placeholder whose value keys "
        "it (a website, e-mail address or company name, normalised); '' for none. Default: the prompt's",
    )
    p.add_argument(
        "--price-web-search",
        type=number(0, unit="USD per 1,000 calls"),
        metavar="USD",
        help="USD per 1,000 web search calls (with --price-input/--price-output; default: the price table's)",
    )


def check_prompt_flags(args: argparse.Namespace) -> None:
    """The prompt options that only make sense together, checked before anything is read."""
    if args.price_as is not None and (args.price_input is not None or args.price_output is not None):
        raise UsageError("Give either --price-as or --price-input/--price-output, not both.")
    if (args.price_input is None) != (args.price_output is None):
        raise UsageError("Give both --price-input and --price-output (USD per 1M tokens).")
    if args.price_cached_input is not None and args.price_input is None:
        raise UsageError("--price-cached-input goes with --price-input and --price-output.")
    if args.price_web_search is not None and args.price_input is None:
        raise UsageError("--price-web-search goes with --price-input and --price-output.")
    if args.web_search is False and (args.max_tool_calls is not None or args.search_context_size is not None):
        raise UsageError(
            "--max-tool-calls and --search-context-size apply to web research: leave out --no-web-search."
        )
    if args.web_search and args.api == "chat":
        raise UsageError(
            "--web-search needs the Responses API (its web_search tool): use --api responses or leave --api out."
        )
    if any(not p.strip() for p in args.check_banned):
        raise UsageError("--check-banned needs a phrase (got an empty one).")
