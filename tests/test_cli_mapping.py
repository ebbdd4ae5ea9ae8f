"""`--map PLACEHOLDER=COLUMN` on check and run, and the prompt identity each run stores (real subprocesses
against the local simulator)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lib.engine.runs import RunOptions, plan_run
from lib.leads import read_leads
from lib.prompts.identity import prompt_hash
from lib.prompts.library import PromptLibrary
from lib.prompts.mapping import apply
from lib.sim import expected_reply
from lib.store import Store
from lib.views.history import prompt_label
from tests.test_cli import cli, read_output, summary

HEADER = ["First Name", "Last Name", "Job Title", "Company Name", "Sector", "Email"]  # a HubSpot-like export
PEOPLE = [
    ["Jane", "Doe", "CFO", "Acme", "Retail", "jane@acme.test"],
    ["Li", "Wei", "VP Sales", "Bolt Ltd", "Logistics", "li@bolt.test"],
    ["Ana", "Ruiz", "Owner", "Café Sol", "", "ana@sol.test"],
]
ICEBREAKER_VERSION = PromptLibrary().load("Icebreaker").version
MAP = ["--map", "Title=Job Title", "--map", "Company=Company Name"]


@pytest.fixture
def hubspot_csv(tmp_path) -> Path:
    path = tmp_path / "hubspot.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *PEOPLE])
    return path


def test_check_without_map_shows_the_fit_and_the_map_to_use(tmp_path, hubspot_csv):
    proc = cli("check", str(hubspot_csv), "--prompt", "icebreaker", sim_url=None, key=None, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    result = summary(proc)
    assert [(f["placeholder"], f["column"], f["status"]) for f in result["fit"]] == [
        ("First Name", "First Name", "matches"),
        ("Title", "Job Title", "suggested"),
        ("Company", "Company Name", "suggested"),
        ("Industry", "Sector", "suggested"),
        ("City", None, "optional, sent empty"),
        ("# Employees", None, "optional, sent empty"),
    ]
    assert [m["placeholder"] for m in result["missing_placeholders"]] == [
        "Title",
        "Company",
    ]  # not the optional
    assert 'Try: --map "Title=Job Title" --map "Company=Company Name"' in proc.stderr
    assert "{{ Company }} -> Company Name: suggested." in proc.stderr  # the human lines
    assert "Traceback" not in proc.stderr


def test_check_with_map_quotes_the_mapped_prompt(tmp_path, hubspot_csv):
    proc = cli("check", str(hubspot_csv), "--prompt", "icebreaker", *MAP, "--map", "Industry=Sector",
               sim_url=None, key=None, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert result["missing_placeholders"] == [] and result["rows_to_send"] == 3
    statuses = {f["placeholder"]: f["status"] for f in result["fit"]}
    assert statuses == {
        "First Name": "matches",
        "Title": "mapped",
        "Company": "mapped",
        "Industry": "mapped",
        "City": "optional, sent empty",
        "# Employees": "optional, sent empty",
    }
    assert result["example_notes"] == [
        "Examples 1, 2 and 3 mention City and Employees, which this file does not have: the model may expect them."
    ]
    assert result["prompt"] == {
        "prompt_name": "Icebreaker",
        "prompt_version": ICEBREAKER_VERSION,
        "prompt_edited": False,
        "prompt_hash": prompt_hash(PromptLibrary().load("icebreaker")),
        "prompt_mapping": {"Title": "Job Title", "Company": "Company Name", "Industry": "Sector"},
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--map", "Company"], "error: --map needs PLACEHOLDER=COLUMN, got 'Company'"),
        (
            ["--map", "Company=Company Name", "--map", "Company=Email"],
            "--map names the placeholder 'Company' twice",
        ),
        (
            ["--map", "Compny=Company Name"],
            "The prompt has no placeholder 'Compny' (it has: First Name, Title,",
        ),
        (
            ["--map", "Company=Account"],
            "There is no column named 'Account' to map 'Company' to (the file has: First Name,",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_bad_map_is_bad_input(tmp_path, hubspot_csv, command, extra, message):
    output = ["--output", str(tmp_path / "o.csv")] if command == "run" else []
    proc = cli(command, str(hubspot_csv), *output, "--prompt", "icebreaker", *extra,
               sim_url="http://127.0.0.1:9/v1", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.csv").exists()


def test_run_with_map_sends_the_mapped_columns_and_records_them(sim, tmp_path, hubspot_csv):
    out, data = tmp_path / "out.csv", tmp_path / "results"
    proc = cli("run", str(hubspot_csv), "--output", str(out), "--prompt", "icebreaker", *MAP,
               "--data-dir", str(data), "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert summary(proc)["succeeded"] == 3
    spec = PromptLibrary().load("icebreaker")
    mapped = apply(spec, {"Title": "Job Title", "Company": "Company Name"})
    leads = read_leads(hubspot_csv.read_bytes(), hubspot_csv.name)
    options = RunOptions(model=spec.model, max_tokens=spec.max_tokens, temperature=spec.temperature)
    plan = plan_run(leads.df, mapped, options, base_url=sim.url)
    for item, row in zip(plan.items, read_output(out), strict=True):
        user = item.body["messages"][-1]["content"]
        assert f"Company: <data>{row['Company Name']}</data>" in user and "City: <data></data>" in user
        assert row["icebreaker"] == expected_reply(item.body["messages"], item.body["model"])
    assert len(sim.ledger()) == 3  # one request per row, nothing more
    (record,) = Store(data).runs()
    meta = record.meta
    assert meta["prompt_mapping"] == {"Title": "Job Title", "Company": "Company Name"}
    assert (meta["prompt_name"], meta["prompt_version"], meta["prompt_edited"]) == (
        "Icebreaker",
        ICEBREAKER_VERSION,
        False,
    )
    assert meta["prompt_hash"] == prompt_hash(mapped)  # the exact prompt sent
    assert prompt_label(meta) == f"Icebreaker v{ICEBREAKER_VERSION}"


def test_a_command_line_template_is_recorded_as_unsaved(sim, tmp_path, hubspot_csv):
    out, data = tmp_path / "out.csv", tmp_path / "results"
    proc = cli("run", str(hubspot_csv), "--output", str(out), "--template", "Hi {{ First Name }} at {{ Company }}",
               "--map", "Company=Company Name", "--data-dir", str(data), "--quiet",
               sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = Store(data).runs()
    assert record.meta["prompt_edited"] is True and record.meta["prompt_mapping"] == {
        "Company": "Company Name"
    }
    assert prompt_label(record.meta) == f"command-line v1, edited (#{record.meta['prompt_hash']})"


def test_a_prompt_file_is_compared_with_itself(sim, tmp_path, hubspot_csv):
    """A prompt given as a file path is as saved: not edited."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        (Path(PromptLibrary().directory) / "company-name-normalisation.yaml").read_text("utf-8"), "utf-8"
    )
    out, data = tmp_path / "out.csv", tmp_path / "results"
    proc = cli("run", str(hubspot_csv), "--output", str(out), "--prompt", str(path), "--map", "Company=Company Name",
               "--data-dir", str(data), "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = Store(data).runs()
    assert record.meta["prompt_edited"] is False
    version = PromptLibrary().load("Company name normalisation").version
    assert prompt_label(record.meta) == f"Company name normalisation v{version}"
