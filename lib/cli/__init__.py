"""The command line: `python -m lib run | check | fetch | compare ...` (lib/__main__.py calls `main`).

A contract others build on: the last line on stdout is one JSON object, progress and messages go to
stderr, and the exit code says how it ended (the table is in lib/cli/exits.py). Every flag is checked as
it is read (lib/cli/args.py), before any file is read, anything planned or the data dir opened.

Each module in lib/cli/commands/ is one command, found here by its name: it defines `ORDER` (its place in
`--help`), `add_parser(sub)` (its arguments) and `main(args) -> int` (the exit code). Adding a command is
adding such a module; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from lib.cli.args import Parser
from lib.cli.exits import EXIT_BAD_INPUT, EXIT_STOPPED, UsageError
from lib.cli.interrupts import Interrupted


def command_modules() -> list:
    """The command modules of lib/cli/commands/, in their --help order."""
    package = importlib.import_module("lib.cli.commands")

    found = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(found, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def parser() -> Parser:
    top = Parser(prog="python -m lib", description="Lead-enrichment studio, headless.")
    sub = top.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.add_parser(sub).set_defaults(handler=module.main)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Interrupted, KeyboardInterrupt):
        print(
            "\nStopped at once: the output was not written. Run the same command again to go on.",
            file=sys.stderr,
        )
        return EXIT_STOPPED
