"""The docs stay true where that is cheap to check: the command line's flags and exit codes, the links, the
tests the guarantees name, the README's size and its first command-line run, and why a long module is one piece."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib.cli import exits, parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CLI_MD = DOCS / "cli.md"
PAGES = sorted(DOCS.glob("*.md"))
README_MAX_CHARS = 15_000
LONG_MODULE_LINES = 600

FLAG = re.compile(r"(?:\b(run|check|compare|fetch|models)\s+)?(--[a-z][a-z0-9-]*)")
COMMAND_LINE = re.compile(r"python -m lib (run|check|compare|fetch|models)\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def command_flags() -> dict[str, set[str]]:
    """Each command's option strings, from the parser `python -m lib` builds."""
    top = parser()
    sub = next(a for a in top._actions if a.dest == "command")
    return {
        name: {s for a in p._actions for s in a.option_strings if s.startswith("--")}
        for name, p in sub.choices.items()
    }


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for each `## ` section (what comes before the first one has heading '')."""
    parts = re.split(r"^## (.*)$", text, flags=re.M)
    return [("", parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]


def flag_mentions(text: str) -> list[tuple[str | None, str, str]]:
    """(the command each mention belongs to, or None for any, the flag, where) for every --flag in cli.md.

    A command word right before the flag (`run --retry-failed`) decides; else a `python -m lib CMD` line
    (and its continuation lines); else the section's heading (`## python -m lib CMD`)."""
    found = []
    for heading, body in sections(text):
        section_cmd = (COMMAND_LINE.search(heading) or [None, None])[1]
        line_cmd = None
        for line in body.splitlines():
            match = COMMAND_LINE.search(line)
            if match:
                line_cmd = match[1]
            for named, flag in FLAG.findall(line):
                found.append(
                    (named or line_cmd or section_cmd, flag, f"{heading or 'top'}: {line.strip()[:80]}")
                )
            if not line.rstrip().endswith("\\"):
                line_cmd = None
    return found


def test_every_flag_named_in_cli_md_exists_for_its_command():
    flags = command_flags()
    anywhere = set().union(*flags.values())
    wrong = [
        f"{flag} ({cmd or 'any command'}) in {where}"
        for cmd, flag, where in flag_mentions(CLI_MD.read_text("utf-8"))
        if flag not in (flags[cmd] if cmd else anywhere)
    ]
    assert not wrong, "docs/cli.md names flags the parser does not have:\n" + "\n".join(wrong)


@pytest.mark.parametrize("command", sorted(command_flags()))
def test_every_flag_of_every_command_is_in_its_section_of_cli_md(command):
    body = next(
        (b for h, b in sections(CLI_MD.read_text("utf-8")) if h.strip("`") == f"python -m lib {command}"),
        None,
    )
    assert body is not None, f"docs/cli.md has no section '## `python -m lib {command}`'"
    missing = sorted(command_flags()[command] - {"--help"} - set(re.findall(r"--[a-z][a-z0-9-]*", body)))
    assert not missing, f"docs/cli.md's {command} section does not mention {missing}"


@pytest.mark.parametrize(
    ("name", "code"), [(n, v) for n, v in vars(exits).items() if n.startswith("EXIT_") and isinstance(v, int)]
)
def test_every_exit_code_is_in_the_table_of_cli_md(name, code):
    assert re.search(rf"^\| `{code}` \| \S", CLI_MD.read_text("utf-8"), re.M), (
        f"{name} = {code} is not in the table"
    )


def test_the_exit_code_for_some_rows_failed_is_told_as_such():
    row = re.search(rf"^\| `{exits.EXIT_SOME_FAILED}` \|(.*)$", CLI_MD.read_text("utf-8"), re.M)
    assert row and "some rows failed" in row[1]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", path.read_text("utf-8"), re.M)}


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_local_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text("utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
            broken.append(target)
    assert not broken, f"{page.name} links to what is not there: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {
        m.removeprefix("docs/") for m in LINK.findall(README.read_text("utf-8")) if m.startswith("docs/")
    }
    missing = [p.name for p in PAGES if p.name not in linked]
    assert not missing, f"the README does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_docs_page_starts_with_one_line_saying_what_it_covers(page):
    first, _, rest = page.read_text("utf-8").partition("\n")
    assert first.startswith("# ") and len(first) > 20, first
    assert rest.startswith("\n"), "the first line is the whole title"


def test_the_readme_is_short():
    size = len(README.read_text("utf-8"))
    assert size < README_MAX_CHARS, f"README.md is {size:,} characters: move detail into docs/"


def test_readme_promises_are_what_the_makefile_does():
    make = (ROOT / "Makefile").read_text("utf-8")
    text = README.read_text("utf-8")
    assert "PORT ?= 8501" in make and "--server.port=$(PORT)" in make and "PORT=8502 make run" in text
    assert re.search(r"^run: \$\(VENV\)/\.runtime$", make, re.M), "make run sets up its own venv"
    assert re.search(r"^test: \$\(VENV\)/\.dev \$\(GATEWAY_VENV\)/\.installed chromium lint$", make, re.M)
    assert "demo-server:" in make and "--port 8765" in make and "127.0.0.1:8765/v1" in text


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_guarantee_test_is_named_in_guarantees_md():
    text = (DOCS / "guarantees.md").read_text("utf-8")
    unnamed = sorted(t for t in defined_tests(ROOT / "tests" / "test_guarantees.py") if t not in text)
    assert not unnamed, f"tests/test_guarantees.py has tests docs/guarantees.md does not name: {unnamed}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_test_the_docs_name_exists(page):
    missing = []
    for module, name in set(re.findall(r"(test_\w+)\.py::(test_\w+)", page.read_text("utf-8"))):
        path = ROOT / "tests" / f"{module}.py"
        if not path.exists() or name not in defined_tests(path):
            missing.append(f"{module}.py::{name}")
    assert not missing, f"{page.name} names tests that do not exist: {sorted(missing)}"


def module_docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""


LONG_MODULES = [
    p
    for p in sorted([*(ROOT / "lib").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"])
    if len(p.read_text("utf-8").splitlines()) > LONG_MODULE_LINES
]


@pytest.mark.parametrize("module", LONG_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_past_600_lines_says_at_its_top_why_it_is_one_piece(module):
    assert "past 600 lines" in module_docstring(module), (
        f"{module.relative_to(ROOT)} has more than {LONG_MODULE_LINES} lines: say at its top why it is one "
        "piece ('One piece past 600 lines on purpose: ...'), or split it"
    )


def readme_commands() -> list[list[str]]:
    """The `python -m lib ...` commands of the README's command-line first run, as argv lists."""
    text = README.read_text("utf-8")
    section = text.split("## A first run on the command line", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith(".venv/bin/python -m lib ")]
    return [shlex.split(ln.removeprefix(".venv/bin/python "), comments=True) for ln in lines]


def test_the_readmes_first_command_line_run_works_against_the_demo_server(sim, tmp_path):
    """What a newcomer types after `make demo-server`: the README's commands, as written, answer every row."""
    commands = readme_commands()
    assert [c[2] for c in commands] == ["check", "run"]
    (tmp_path / "docs").mkdir()
    shutil.copy(DOCS / "example-leads.csv", tmp_path / "docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(PYTHONPATH=str(ROOT), OPENAI_BASE_URL=sim.url, OPENAI_API_KEY="sk-demo")
    for argv in commands:
        proc = subprocess.run(
            [sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, (argv, proc.stderr)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["rows"] == 8
    assert summary["succeeded"] == 8 and (tmp_path / "enriched.csv").is_file()
