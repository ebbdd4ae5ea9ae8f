"""`python -m lib run|check` as a pipeline would use it: real subprocesses against the local server."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from lib.engine.runs import STATUS_COLUMNS, RunOptions, plan_run
from lib.leads import read_leads
from lib.prompts.library import PromptLibrary
from lib.sim import SimConfig, SimProcess, expected_reply
from tests.conftest import SIM_TODAY
from tests.engine_helpers import wait_until
from tests.leadfiles import apollo_csv

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = {
    "rows",
    "succeeded",
    "failed",
    "pending",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "requests_sent",
    "cache_hits",
    "elapsed_s",
    "status",
    "output",
}


def cli(*args: str, sim_url: str | None, key: str | None = "sk-test-cli", cwd: Path, timeout: float = 120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if key:
        env["OPENAI_API_KEY"] = key
    if sim_url:
        env["OPENAI_BASE_URL"] = sim_url
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def leads_csv(tmp_path) -> Path:
    path = tmp_path / "apollo.csv"
    path.write_bytes(apollo_csv(60))
    return path


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    if path.suffix == ".json":
        return json.loads(path.read_text("utf-8"))
    sheet = openpyxl.load_workbook(path, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], ["" if v is None else v for v in r], strict=True)) for r in rows[1:]]


@pytest.mark.parametrize("ext", ["csv", "xlsx", "json"])
def test_run_writes_every_row_in_order_with_its_own_answer(sim, tmp_path, leads_csv, ext):
    out = tmp_path / f"out.{ext}"
    proc = cli("run", str(leads_csv), "--output", str(out), "--prompt", "icebreaker", "--workers", "8",
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert set(result) >= SUMMARY_KEYS
    assert (result["rows"], result["succeeded"], result["failed"], result["status"]) == (
        60,
        60,
        0,
        "finished",
    )
    assert result["prompt_tokens"] == sum(e["prompt_tokens"] for e in sim.ledger())
    assert "Traceback" not in proc.stderr

    rows = read_output(out)
    leads = read_leads(leads_csv.read_bytes(), leads_csv.name)
    columns = list(leads.df.columns)
    spec = PromptLibrary().load("icebreaker")
    assert list(rows[0].keys()) == [*columns, *spec.output_columns, *STATUS_COLUMNS]
    plan = plan_run(
        leads.df,
        spec,
        RunOptions(model=spec.model, max_tokens=spec.max_tokens, temperature=spec.temperature),
        base_url=sim.url,
    )
    bodies = {i.row_id: i.body for i in plan.items}
    for row_id, row in zip(leads.df.index, rows, strict=True):
        for column in columns:  # input text exactly as in the file (leading-zero ZIPs included)
            assert str(row[column]).lstrip("'") == leads.df.loc[row_id, column]
        assert row[spec.output_columns[0]] == expected_reply(
            bodies[row_id]["messages"], bodies[row_id]["model"]
        )
        assert int(row["enrich_row_id"]) == row_id


@pytest.mark.parametrize(
    ("args", "key", "needle"),
    [
        (["run", "missing.csv", "--output", "o.csv", "--prompt", "icebreaker"], "sk-test", "not found"),
        (["run", "LEADS", "--output", "o.txt", "--prompt", "icebreaker"], "sk-test", ".csv, .xlsx or .json"),
        (["run", "LEADS", "--output", "o.csv", "--prompt", "icebreaker"], None, "OPENAI_API_KEY"),
        (["run", "LEADS", "--output", "o.csv", "--template", "Hi {{ Frist Name }}"], "sk-test", "First Name"),
        (["run", "LEADS", "--output", "o.csv", "--prompt", "no-such-prompt"], "sk-test", "no-such-prompt"),
        (["check", "LEADS", "--template", "Hi {{ Compnay }}"], None, "Company"),
        (["run", "BINARY", "--output", "o.csv", "--prompt", "icebreaker"], "sk-test", "CSV"),
    ],
    ids=[
        "missing-file",
        "bad-extension",
        "no-key",
        "typo-placeholder",
        "unknown-prompt",
        "check-typo",
        "binary-file",
    ],
)
def test_bad_input_exits_2_with_a_clear_message(sim, tmp_path, leads_csv, args, key, needle):
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    args = [str(leads_csv) if a == "LEADS" else str(binary) if a == "BINARY" else a for a in args]
    proc = cli(*args, sim_url=sim.url, key=key, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("model", "exact"),
    [("gpt-5.4-mini", True), ("gpt-6-luna", False)],  # tiktoken does not name gpt-6's tokenizer: an estimate
)
def test_check_quotes_tokens_and_cost(sim, tmp_path, leads_csv, model, exact):
    proc = cli(
        "check",
        str(leads_csv),
        "--prompt",
        "icebreaker",
        "--model",
        model,
        sim_url=None,
        key=None,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert (result["rows"], result["encoding"], result["delimiter"]) == (60, "utf-8", ",")
    assert result["missing_placeholders"] == []
    assert result["exact"] is exact and result["input_tokens"] > 60 * 100
    assert 0 < result["cost_low_usd"] <= result["cost_high_usd"]
    # Dollars with no float noise, as the run's summary gives them (check printed 0.0009306000000000001).
    costs = [result["cost_low_usd"], result["cost_high_usd"]] + [
        c for path in result["paths"] for c in (path["cost_low_usd"], path["cost_high_usd"]) if c is not None
    ]
    assert all(len(repr(c).split(".")[-1]) <= 8 for c in costs), costs
    assert result["reasoning_effort"] == "none" and result["model_status"]["state"] == "current"


@pytest.mark.parametrize(
    ("extra", "priced_like"),
    [
        ([], None),  # a deployment name that only starts like gpt-4o-mini: unpriced, never guessed
        (["--price-as", "gpt-4o-mini"], "gpt-4o-mini"),
        (["--price-as", "gpt-4.1"], "gpt-4.1"),
    ],
)
def test_check_prices_a_deployment_name_only_when_mapped(tmp_path, leads_csv, extra, priced_like):
    def quote(model, *more):
        proc = cli(
            "check",
            str(leads_csv),
            "--prompt",
            "icebreaker",
            "--model",
            model,
            *more,
            sim_url=None,
            key=None,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        return summary(proc)["cost_high_usd"]

    cost = quote("gpt-4o-mini-json", *extra)
    assert cost == (quote(priced_like) if priced_like else None)


def test_price_as_an_unpriced_model_is_bad_input(tmp_path, leads_csv):
    proc = cli(
        "check",
        str(leads_csv),
        "--prompt",
        "icebreaker",
        "--price-as",
        "my-llama",
        sim_url=None,
        key=None,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "--price-as my-llama" in proc.stderr


def test_quota_stops_with_exit_3_then_rerun_resumes(sim, tmp_path, leads_csv):
    sim.configure(quota_after=25)
    out = tmp_path / "out.csv"
    args = ("run", str(leads_csv), "--output", str(out), "--prompt", "icebreaker", "--workers", "4")
    first = cli(*args, sim_url=sim.url, cwd=tmp_path)
    assert first.returncode == 3
    assert "credit" in first.stderr
    assert summary(first)["status"] == "paused" and summary(first)["pending"] == 35
    rows = read_output(out)  # partial results are written, pending rows marked
    assert Counter(r["enrich_status"] for r in rows) == {"succeeded": 25, "pending": 35}
    sim.configure(quota_after=None)
    second = cli(*args, sim_url=sim.url, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert summary(second)["succeeded"] == 60 and summary(second)["requests_sent"] == 35
    assert len(sim.ledger()) == 60


def test_budget_stops_with_exit_3(sim, tmp_path, leads_csv):
    out = tmp_path / "out.csv"
    proc = cli("run", str(leads_csv), "--output", str(out), "--prompt", "icebreaker", "--budget", "0.002",
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 3
    result = summary(proc)
    assert result["status"] == "paused" and "Budget" in result["reason"]
    assert result["cost_usd"] <= 0.002


@pytest.mark.faults
def test_kill_9_mid_run_then_rerun_loses_nothing_and_repeats_at_most_in_flight(tmp_path, leads_csv):
    big = tmp_path / "big.csv"
    big.write_bytes(apollo_csv(400))
    workers = 12
    with SimProcess(
        SimConfig(today=SIM_TODAY, latency_ms=60, latency_dist="lognormal", latency_p99_ms=300, seed=9)
    ) as server:
        out = tmp_path / "out.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env.update(OPENAI_API_KEY="sk-test-kill", OPENAI_BASE_URL=server.url, PYTHONPATH=str(ROOT))
        args = [sys.executable, "-m", "lib", "run", str(big), "--output", str(out), "--prompt", "icebreaker",
                "--workers", str(workers), "--quiet"]  # fmt: skip
        for kill_after in (40, 150):  # two crashes at different moments
            proc = subprocess.Popen(
                args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert wait_until(lambda n=kill_after: len(server.ledger()) >= n, 60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        final = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        assert summary(final)["succeeded"] == 400
        billed = Counter(int(e["row_id"]) for e in server.ledger())
    assert set(billed) == set(range(1, 401))  # no row lost
    repeats = sum(billed.values()) - 400
    assert repeats <= 2 * workers, f"{repeats} rows paid twice"  # at most what was in flight, per crash
    rows = read_output(out)
    assert [int(r["enrich_row_id"]) for r in rows] == list(range(1, 401))
    assert all(r["enrich_status"] == "succeeded" and r["icebreaker"].startswith("SIM[") for r in rows)


def test_ctrl_c_writes_partial_results_and_exits_3(tmp_path, leads_csv):
    with SimProcess(SimConfig(today=SIM_TODAY, latency_ms=200)) as server:
        out = tmp_path / "out.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env.update(OPENAI_API_KEY="sk-test-int", OPENAI_BASE_URL=server.url, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib", "run", str(leads_csv), "--output", str(out), "--prompt", "icebreaker", "--workers", "2"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_until(lambda: len(server.ledger()) >= 4, 30)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["status"] == "cancelled" and 0 < result["succeeded"] < 60
    assert len(read_output(out)) == 60


def test_an_exported_file_enriched_again_keeps_its_old_status_columns(sim, tmp_path, leads_csv):
    first = tmp_path / "first.csv"
    assert cli("run", str(leads_csv), "--output", str(first), "--prompt", "icebreaker", "--limit", "5",
               sim_url=sim.url, cwd=tmp_path).returncode == 0  # fmt: skip
    second = tmp_path / "second.csv"
    proc = cli("run", str(first), "--output", str(second), "--template", "Shorten: {{ icebreaker }}",
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    before, after = read_output(first), read_output(second)
    assert [r["enrich_status"] for r in after] == [
        r["enrich_status"] for r in before
    ]  # the old columns, intact
    assert [r["enrich_cost_usd"] for r in after] == [r["enrich_cost_usd"] for r in before]
    assert all(r["enrich_status (2)"] == "succeeded" and r["output"].startswith("SIM[") for r in after)


@pytest.mark.parametrize(
    ("price_args", "priced"),
    [(["--price-input", "1.0", "--price-output", "2.0"], True), ([], False)],
    ids=["priced-by-the-user", "unpriced"],
)
def test_an_unknown_model_is_priced_by_the_user_or_shown_unpriced(
    sim, tmp_path, leads_csv, price_args, priced
):
    sim.configure(models=(*sim.config.models, "llama-3.1-8b-local"))
    out = tmp_path / "out.csv"
    proc = cli("run", str(leads_csv), "--output", str(out), "--prompt", "icebreaker", "--limit", "10",
               "--model", "llama-3.1-8b-local", *price_args, sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    if priced:
        expected = (result["prompt_tokens"] * 1.0 + result["completion_tokens"] * 2.0) / 1_000_000
        assert result["cost_usd"] == pytest.approx(expected)
    else:
        assert result["cost_usd"] is None  # unknown, never a made-up $0
