"""The command line's exit codes and flag checks (lib/cli/exits.py, lib/cli/args.py), and --regenerate
through the library's `start_again`: real subprocesses against the local server.

Issue 22: a negative --budget was taken as a paused run (exit 3); a run with some failed rows exited 0;
--regenerate was the command line's own copy (it dropped the service tier) and Ctrl-C did not stop it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from lib.cli.exits import EXIT_BAD_INPUT, EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED, rows_exit
from lib.cli.progress import Frame, Progress
from lib.store import Store
from tests.engine_helpers import wait_until
from tests.test_cli import ROOT, cli, read_output, summary

TEMPLATE = "Write a short opener for {{ First Name }} at {{ Company }}."
MODEL = ["--model", "gpt-4o-mini"]  # named, so these tests do not hang on which model is the default
RUN = ["run", "MISSING", "--output", "o.csv", "--template", TEMPLATE]
CHECK = ["check", "MISSING", "--template", TEMPLATE]
FETCH = ["fetch", "MISSING", "--url-column", "Website", "--output", "o.csv"]
COMPARE = ["compare", "MISSING", "--template", TEMPLATE]

# (the command, the bad flag and its value, the one line that must say what the flag accepts)
BAD_NUMBERS = [
    (RUN, ["--budget", "-1"], "--budget must be a number of at least 0, in US dollars (got '-1')"),
    (RUN, ["--budget", "five"], "--budget must be a number of at least 0, in US dollars (got 'five')"),
    (RUN, ["--budget", "nan"], "--budget must be a number of at least 0, in US dollars (got 'nan')"),
    (RUN, ["--budget=-0.01"], "--budget must be a number of at least 0, in US dollars (got '-0.01')"),
    (RUN, ["--workers", "0"], "--workers must be a whole number from 1 to 1,000 (got '0')"),
    (RUN, ["--workers", "2.5"], "--workers must be a whole number from 1 to 1,000 (got '2.5')"),
    (RUN, ["--workers", "1001"], "--workers must be a whole number from 1 to 1,000 (got '1001')"),
    (RUN, ["--rpm", "0"], "--rpm must be a whole number of at least 1, in requests per minute (got '0')"),
    (RUN, ["--tpm", "-5"], "--tpm must be a whole number of at least 1, in tokens per minute (got '-5')"),
    (RUN, ["--max-tokens", "0"], "--max-tokens must be a whole number of at least 1 (got '0')"),
    (RUN, ["--timeout", "0"], "--timeout must be a number above 0, in seconds (got '0')"),
    (RUN, ["--timeout", "-3"], "--timeout must be a number above 0, in seconds (got '-3')"),
    (RUN, ["--give-up-after", "0"], "--give-up-after must be a number above 0, in seconds (got '0')"),
    (RUN, ["--flex-patience", "-1"], "--flex-patience must be a number of at least 0, in seconds (got '-1')"),
    (RUN, ["--poll-interval", "0"], "--poll-interval must be a number above 0, in seconds (got '0')"),
    (RUN, ["--regenerate", "11"], "--regenerate must be a whole number from 0 to 10, in attempts (got '11')"),
    (RUN, ["--batch-max-requests", "50001"], "--batch-max-requests must be a whole number from 1 to 50,000"),
    (RUN, ["--rows-per-request", "51"], "--rows-per-request must be a whole number from 1 to 50 (got '51')"),
    (RUN, ["--limit", "0"], "--limit must be a whole number of at least 1 (got '0')"),
    (RUN, ["--temperature", "2.5"], "--temperature must be a number from 0 to 2 (got '2.5')"),
    (
        RUN,
        ["--price-input", "-1"],
        "--price-input must be a number of at least 0, in US dollars per 1M tokens",
    ),
    (RUN, ["--check-max-chars", "0"], "--check-max-chars must be a whole number of at least 1 (got '0')"),
    (CHECK, ["--max-tokens", "-2"], "--max-tokens must be a whole number of at least 1 (got '-2')"),
    (CHECK, ["--check-max-words", "x"], "--check-max-words must be a whole number of at least 1 (got 'x')"),
    (FETCH, ["--workers", "257"], "--workers must be a whole number from 1 to 256 (got '257')"),
    (FETCH, ["--timeout", "0"], "--timeout must be a number above 0 and at most 300, in seconds (got '0')"),
    (FETCH, ["--max-chars", "50"], "--max-chars must be a whole number of at least 100 (got '50')"),
    (FETCH, ["--max-age-hours", "-1"], "--max-age-hours must be a number of at least 0, in hours (got '-1')"),
    (COMPARE, ["--workers", "0"], "--workers must be a whole number from 1 to 256 (got '0')"),
    (COMPARE, ["--timeout", "601"], "--timeout must be a number above 0 and at most 600, in seconds"),
    (COMPARE, ["--random", "0"], "--random must be a whole number of at least 1 (got '0')"),
    (COMPARE, ["--temperature", "-1"], "--temperature must be a number from 0 to 2 (got '-1')"),
]

# Flags that only make sense together: refused before the file is read or the data dir opened.
BAD_COMBINATIONS = [
    (RUN, ["--flex-fallback"], "--flex-fallback only applies with --service-tier flex."),
    (RUN, ["--mode", "batch", "--service-tier", "flex"], "--service-tier applies to live runs"),
    (RUN, ["--price-as", "gpt-4o-mini", "--price-input", "1", "--price-output", "2"], "not both"),
    (RUN, ["--price-input", "1"], "Give both --price-input and --price-output"),
    (CHECK, ["--price-cached-input", "1"], "--price-cached-input goes with --price-input"),
    (CHECK, ["--check-banned", " "], "--check-banned needs a phrase"),
]


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    BAD_NUMBERS + BAD_COMBINATIONS,
    ids=[f"{c[0]}{''.join(f)}" for c, f, _ in BAD_NUMBERS + BAD_COMBINATIONS],
)
def test_a_bad_flag_is_a_usage_error_before_anything_is_read_or_written(tmp_path, command, flags, message):
    data = tmp_path / "data"
    # No key and no such input file: the flag is what must be named, so it was checked first.
    args = [str(tmp_path / "missing.csv") if a == "MISSING" else a for a in command]
    if command is not CHECK:  # check keeps nothing
        args += ["--data-dir", str(data)]
    proc = cli(*args, *flags, sim_url=None, key=None, cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not data.exists()  # the store was never opened
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nor the output written


@pytest.mark.parametrize(
    ("stopped", "succeeded", "failed", "code"),
    [
        (False, 5, 0, EXIT_OK),
        (False, 0, 0, EXIT_OK),  # every row skipped as asked
        (False, 4, 1, EXIT_SOME_FAILED),
        (False, 0, 5, EXIT_STOPPED),  # every row sent failed: never 0
        (True, 3, 0, EXIT_STOPPED),
        (True, 3, 2, EXIT_STOPPED),  # rows pending weighs more than rows failed
    ],
)
def test_rows_exit_table(stopped, succeeded, failed, code):
    assert rows_exit(stopped=stopped, succeeded=succeeded, failed=failed) == code


def _leads(tmp_path: Path, refused: set[int], n: int = 6) -> Path:
    """A list of n leads; the rows in `refused` make the simulator refuse to answer (a failed row)."""
    lines = ["First Name,Company"] + [
        f"Lead{i},Co{i}{' [[sim:refusal]]' if i in refused else ''}" for i in range(1, n + 1)
    ]
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.mark.parametrize(
    ("refused", "code", "reason"),
    [
        (set(), EXIT_OK, None),
        ({2, 5}, EXIT_SOME_FAILED, "2 of 6 rows failed: run again with --retry-failed"),
        ({1, 2, 3, 4, 5, 6}, EXIT_STOPPED, "Every row sent failed (6)"),
    ],
    ids=["all-answered", "some-failed", "all-failed"],
)
def test_run_exit_code_says_whether_rows_failed(sim, tmp_path, refused, code, reason):
    source = _leads(tmp_path, refused)
    proc = cli("run", str(source), "--output", str(tmp_path / "out.csv"), "--template", TEMPLATE, *MODEL, "--quiet",
               "--data-dir", str(tmp_path / "data"), sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == code, proc.stderr
    result = summary(proc)
    assert (result["status"], result["failed"], result["pending"]) == ("finished", len(refused), 0)
    if reason is None:
        assert "reason" not in result
    else:
        assert reason in result["reason"] and reason in proc.stderr
    rows = read_output(tmp_path / "out.csv")
    statuses = Counter(r["enrich_status"] for r in rows)
    assert statuses == +Counter({"succeeded": 6 - len(refused), "failed": len(refused)})


def test_compare_exits_4_when_a_variant_has_some_failed_rows(sim, tmp_path):
    source = _leads(tmp_path, {2})
    proc = cli("compare", str(source), "--template", TEMPLATE, *MODEL, "--rows", "3", "--quiet",
               "--data-dir", str(tmp_path / "data"), sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr
    result = summary(proc)
    assert (result["variants"][0]["answered"], result["variants"][0]["failed"]) == (2, 1)
    assert result["reason"] == "Variant 'template': 1 of 3 rows failed."


# --- --regenerate through the library's start_again -------------------------------------------------------

FOLLOW_UP = "breaks the prompt's rules"  # in every regenerate request (lib/engine/regenerate.py FOLLOW_UP)
REGENERATE = ["--check-max-words", "2", "--regenerate", "1", "--quiet"]  # every answer is over 2 words


def test_regenerate_carries_the_service_tier_and_the_ceilings(sim, tmp_path):
    source = _leads(tmp_path, set())
    proc = cli("run", str(source), "--output", str(tmp_path / "out.csv"), "--template", TEMPLATE, *MODEL, *REGENERATE,
               "--service-tier", "priority", "--workers", "3", "--rpm", "600", "--data-dir", str(tmp_path / "d"),
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    result = summary(proc)
    assert result["regenerated"] == [6] and result["requests_sent"] == 12
    assert Counter(e["service_tier"] for e in sim.ledger()) == {"priority": 12}  # the attempt's six too
    store = Store(tmp_path / "d")
    (run,) = [r for r in store.runs() if r.meta.get("kind") != "regenerate"]
    (attempt,) = store.regenerations(run.run_id)
    asked = store.run(attempt).meta["run_settings"]
    assert (asked["service_tier"], asked["workers"], asked["rpm"]) == ("priority", 3, 600)
    assert run.meta["run_settings"]["service_tier"] == "priority"  # the app's Resume carries it on too
    store.close()


def test_ctrl_c_stops_regenerate_records_the_answers_in_flight_and_exits_3(sim, tmp_path):
    source = _leads(tmp_path, set())
    data = tmp_path / "data"
    sim.configure(hold=FOLLOW_UP)  # the run's answers come; the attempt's wait for the gate
    args = ["run", str(source), "--output", str(tmp_path / "out.csv"), "--template", TEMPLATE, *MODEL, *REGENERATE,
            "--workers", "2", "--data-dir", str(data)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-regen-int", OPENAI_BASE_URL=sim.url, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "lib", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: sim.stats()["held_now"] == 2, 60), "the attempt never reached the gate"
        assert len(sim.ledger()) == 6  # the run itself is done; two of the six rows asked again are in flight
        proc.send_signal(signal.SIGINT)
        assert wait_until(lambda: any("Stopping" in line for line in err), 30), "".join(err)
    finally:
        sim.configure(hold="")  # the two answers in flight arrive
    stdout = proc.stdout.read()
    proc.wait(60)
    reader.join(10)
    assert proc.returncode == EXIT_STOPPED, "".join(err)
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["regenerated"] == [6]
    assert "Regenerate attempt 1 stopped" in result["regenerate_stopped"] and result["reason"]
    assert len(sim.ledger()) == 8  # nothing sent after Ctrl-C
    store = Store(data)
    (run,) = [r for r in store.runs() if r.meta.get("kind") != "regenerate"]
    (attempt,) = store.regenerations(run.run_id)
    assert Counter(r.status for r in store.rows(attempt)) == {"succeeded": 2, "pending": 4}
    answered = {r.row_id: r.text for r in store.rows(attempt) if r.status == "succeeded"}
    store.close()
    written = {int(r["enrich_row_id"]): r["output"] for r in read_output(tmp_path / "out.csv")}
    assert len(written) == 6 and all(written[i] == text for i, text in answered.items())  # laid over

    # The same command again continues the stopped attempt: only its four pending rows are sent.
    again = cli(*args, sim_url=sim.url, cwd=tmp_path)
    assert again.returncode == EXIT_OK, again.stderr
    assert summary(again)["regenerated"] == [6] and summary(again)["requests_sent"] == 4
    assert len(sim.ledger()) == 12
    # And once more: the run has had its one attempt, so nothing is sent.
    assert summary(cli(*args, sim_url=sim.url, cwd=tmp_path))["requests_sent"] == 0
    assert len(sim.ledger()) == 12


# --- the parts every command shares -------------------------------------------------------------------------


def test_every_module_in_lib_cli_commands_is_a_command_in_help_order():
    from lib.cli import command_modules, parser

    assert [m.__name__.rsplit(".", 1)[1] for m in command_modules()] == [
        "run",
        "check",
        "fetch",
        "compare",
        "models",
    ]
    assert (
        parser().parse_args(["check", "x.csv", "--template", "Hi"]).handler.__module__
        == "lib.cli.commands.check"
    )


def test_the_batch_request_limit_is_the_batch_apis():
    from lib.batch.files import MAX_REQUESTS
    from lib.cli.commands.run import BATCH_MAX_REQUESTS

    assert BATCH_MAX_REQUESTS == MAX_REQUESTS


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("frame", "line"),
    [
        (
            Frame(done=7, total=28, failed=1, status="running", rate=2.5, cost="$0.0123", eta_s=75.0),
            "[#######.....................] 7/28 rows (1 failed) $0.0123 2.5 rows/s ETA 1m15s [running]",
        ),
        (
            Frame(
                done=3,
                total=3,
                failed=0,
                status="finished",
                unit="sites/s",
                notes=("2 sites from the store",),
            ),
            "[############################] 3/3 rows (0 failed) 0.0 sites/s · 2 sites from the store [finished]",
        ),
        (
            Frame(done=0, total=0, failed=0, status="finished", label="regenerate 1", cost="cost unknown"),
            "regenerate 1 [############################] 0/0 rows (0 failed) cost unknown 0.0 rows/s [finished]",
        ),
    ],
)
def test_a_progress_frame_is_one_line(frame, line):
    assert frame.line() == line


@pytest.mark.parametrize(
    ("quiet", "tty", "written"),
    [
        (True, True, ""),  # --quiet: nothing
        (False, False, "{line}\n{line}\n"),  # a log: the first line, then only the final one (every 5 s)
        (False, True, "\r{padded}\r{padded}\n"),  # a terminal: redrawn in place, the last line kept
    ],
)
def test_progress_draws_on_its_stream_only(quiet, tty, written):
    frame = Frame(done=1, total=2, failed=0, status="running")
    stream = _Stream(tty)
    progress = Progress(quiet, stream=stream)
    progress.draw(frame)
    progress.draw(frame)  # too soon after the first: skipped
    progress.draw(frame, final=True)
    assert stream.getvalue() == written.format(line=frame.line(), padded=frame.line().ljust(110))
