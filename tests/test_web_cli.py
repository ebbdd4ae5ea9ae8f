"""`python -m lib fetch` as a pipeline would use it, and the whole chain: fetch, then the website-analysis
prompt on the fetched text against the local OpenAI-compatible server, exported.

Real subprocesses, real sockets, local sites on 127.0.0.1 only (127.0.0.2 stands for an address that is
not allowed and must never be contacted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from lib.cli.exits import EXIT_SOME_FAILED
from lib.engine.runs import RunOptions, plan_run
from lib.leads import read_leads
from lib.prompts.library import PromptLibrary
from lib.prompts.templates import LIST_SEPARATOR, fence
from lib.sim import expected_json
from lib.web import NOT_READ
from tests import leadfiles as L
from tests import web_sites as W
from tests.test_cli import ROOT, cli, read_output, summary

SUMMARY_KEYS = {"rows", "succeeded", "failed", "skipped", "pending", "sites", "cache_hits", "requests_sent",
                "bytes_read", "elapsed_s", "status", "output"}  # fmt: skip


@pytest.fixture
def sites():
    s = W.Sites()
    yield s
    s.stop()


def lead_file(tmp_path, sites: W.Sites, name: str = "leads.csv"):
    rows = [
        ["First Name", "Company", "Website"],
        ["Dana", "Fernhill Analytics", sites.home.url],
        ["Jürgen", "Brauerei Huber", sites.soup.address],  # no scheme, as CRMs write it
        ["Zoë", "Müller & Söhne", sites.cp1252.url],
        ["Sam", "Gone Ltd", sites.missing.url],
        ["Li", "Private Co", sites.outside.url],
        ["Ann", "Paper Inc", sites.pdf.url],
        ["Bob", "Nobody", "not a url"],
        ["Cy", "=HYPERLINK(1)", sites.redirect.url],
    ]
    path = tmp_path / name
    path.write_bytes(L.csv_bytes(rows))
    return path


EXPECTED = {  # row id -> (text contains, error contains)
    1: ("Fernhill turns messy CRM data", ""),
    2: ("Willkommen bei der Brauerei Huber", ""),
    3: (W.CP1252_TEXT, ""),
    4: ("", "answered 404"),
    5: ("", "127.0.0.2 is this machine (loopback)"),
    6: ("", "PDF document"),
    7: ("", "is not a website address"),
    8: ("Fernhill turns messy CRM data", ""),
}


@pytest.mark.parametrize("ext", ["csv", "xlsx", "json"])
def test_fetch_writes_the_input_plus_website_text_and_website_error(tmp_path, sites, ext):
    source = lead_file(tmp_path, sites)
    out = tmp_path / f"out.{ext}"
    proc = cli("fetch", str(source), "--url-column", "Website", "--output", str(out), "--allow-host", "127.0.0.1",
               "--workers", "4", "--timeout", "3", "--data-dir", str(tmp_path / "data"), sim_url=None, key=None,
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr  # four sites could not be read
    result = summary(proc)
    assert set(result) >= SUMMARY_KEYS and "Traceback" not in proc.stderr
    assert result["reason"] == "4 of 8 websites could not be read: website_error says why."
    assert (result["rows"], result["succeeded"], result["failed"], result["status"]) == (8, 4, 4, "finished")
    assert "rows" in proc.stderr  # the progress line
    rows = read_output(out)
    assert list(rows[0]) == ["First Name", "Company", "Website", "website_text", "website_error"]
    for row_id, row in enumerate(rows, start=1):
        text, error = EXPECTED[row_id]
        assert text in row["website_text"] and (text or row["website_text"] == "")
        assert error in row["website_error"] and (error or row["website_error"] == "")
    assert rows[1]["First Name"] == "Jürgen" and rows[2]["Company"] == "Müller & Söhne"
    # CSV guards a cell a spreadsheet would run; XLSX cells are text (never evaluated), JSON is raw: exact.
    guarded = "'=HYPERLINK(1)" if ext == "csv" else "=HYPERLINK(1)"
    assert rows[7]["Company"] == guarded
    assert sites.outside.connections == 0


def test_a_second_fetch_reads_nothing_again(tmp_path, sites):
    source = lead_file(tmp_path, sites)
    args = ("fetch", str(source), "--url-column", "Website", "--output", str(tmp_path / "o.csv"),
            "--allow-host", "127.0.0.1", "--data-dir", str(tmp_path / "data"), "--quiet")  # fmt: skip
    first = cli(*args, sim_url=None, key=None, cwd=tmp_path)
    assert first.returncode == EXIT_SOME_FAILED, first.stderr
    seen = {name: len(site.requests) for name, site in sites.sites.items()}
    second = cli(*args, sim_url=None, key=None, cwd=tmp_path)
    assert second.returncode == EXIT_SOME_FAILED, second.stderr
    assert {name: len(site.requests) for name, site in sites.sites.items()} == seen
    assert summary(second)["requests_sent"] == 0 and summary(second)["cache_hits"] == summary(second)["sites"]
    assert (tmp_path / "o.csv").read_bytes().count(b"Fernhill") >= 2


def test_without_allow_host_nothing_local_is_read_and_the_run_does_not_exit_0(tmp_path, sites):
    source = lead_file(tmp_path, sites)
    proc = cli("fetch", str(source), "--url-column", "Website", "--output", str(tmp_path / "o.csv"),
               "--data-dir", str(tmp_path / "data"), sim_url=None, key=None, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    result = summary(proc)
    assert result["succeeded"] == 0 and result["failed"] == 8
    assert "No website could be read" in result["reason"] and "No website could be read" in proc.stderr
    assert all(site.connections == 0 for site in sites.sites.values())
    rows = read_output(tmp_path / "o.csv")
    assert all(r["website_error"] for r in rows) and not any(r["website_text"] for r in rows)


def test_ctrl_c_stops_at_once_writes_what_was_read_and_exits_3(tmp_path, sites):
    slow = [sites.slow] + [
        sites.add(f"slow{i}", {"/": W.slow(40.0), "/robots.txt": W.Reply(404)}) for i in (2, 3)
    ]
    rows = [["Company", "Website"], ["Fernhill", sites.home.url]] + [
        [f"Slow {i}", s.url] for i, s in enumerate(slow)
    ]
    source = tmp_path / "slow.csv"
    source.write_bytes(L.csv_bytes(rows))
    out = tmp_path / "o.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib", "fetch", str(source), "--url-column", "Website", "--output", str(out),
         "--allow-host", "127.0.0.1", "--timeout", "60", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert W.wait_for(lambda: all("/" in site.paths() for site in slow), timeout=20)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 3, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert (result["succeeded"], result["pending"], result["status"]) == (1, 3, "cancelled")
    written = read_output(out)
    assert "Fernhill" in written[0]["website_text"]
    assert [r["website_error"] for r in written[1:]] == [NOT_READ] * 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fetch", "missing.csv", "--url-column", "Website", "--output", "o.csv"], "not found"),
        (["fetch", "LEADS", "--url-column", "Webiste", "--output", "o.csv"], "Did you mean 'Website'?"),
        (["fetch", "LEADS", "--url-column", "Website", "--output", "o.txt"], ".csv, .xlsx or .json"),
        (["fetch", "LEADS", "--url-column", "Website", "--output", "o.csv", "--workers", "0"], "--workers"),
        (["fetch", "LEADS", "--url-column", "Website", "--output", "o.csv", "--timeout", "-1"], "--timeout"),
        (["fetch", "EMPTY", "--url-column", "Website", "--output", "o.csv"], "no website addresses"),
    ],
    ids=["missing-file", "typo-column", "bad-extension", "workers", "timeout", "empty-column"],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, sites, args, needle):
    leads = lead_file(tmp_path, sites)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(L.csv_bytes([["Company", "Website"], ["Acme", ""], ["Globex", " "]]))
    args = [str(leads) if a == "LEADS" else str(empty) if a == "EMPTY" else a for a in args]
    proc = cli(*args, sim_url=None, key=None, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_fetch_then_website_analysis_on_a_list_with_only_a_website_column(sim, tmp_path, sites):
    """The whole chain: a list with Company and Website, no text; fetch it, run the shipped
    website-analysis prompt over the result against the local server, and export."""
    source = lead_file(tmp_path, sites)
    fetched = tmp_path / "fetched.csv"
    data = str(tmp_path / "data")
    proc = cli("fetch", str(source), "--url-column", "Website", "--output", str(fetched), "--allow-host",
               "127.0.0.1", "--data-dir", data, "--quiet", sim_url=None, key=None, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr
    out = tmp_path / "analysed.xlsx"
    run = cli("run", str(fetched), "--output", str(out), "--prompt", "website-analysis", "--workers", "4",
              "--data-dir", data, "--quiet", sim_url=sim.url, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert summary(run)["succeeded"] == 8 and len(sim.ledger()) == 8

    spec = PromptLibrary().load("website-analysis")
    leads = read_leads(fetched.read_bytes(), fetched.name)
    plan = plan_run(leads.df, spec, RunOptions(model=spec.model, max_tokens=spec.max_tokens,
                    temperature=spec.temperature), base_url=sim.url)  # fmt: skip
    bodies = {item.row_id: item.body for item in plan.items}
    rows = read_output(out)
    assert list(rows[0])[:5] == ["First Name", "Company", "Website", "website_text", "website_error"]
    for row_id, row in enumerate(rows, start=1):
        body = bodies[row_id]
        user = body["messages"][-1]["content"]
        text = leads.df.loc[row_id, "website_text"]
        assert fence(text, spec.field_cap) in user  # the page text reached the model fenced as data
        assert EXPECTED[row_id][0] in user
        schema = body["response_format"]["json_schema"]["schema"]
        answer = expected_json(body["messages"], body["model"], schema)
        assert row["business_type"] == answer["business_type"]
        assert row["services"] == LIST_SEPARATOR.join(answer["services"])
        assert row["enrich_status"] == "succeeded"
