"""Each finding of issue 13 against a real LiteLLM proxy (tests/gateway_helpers.py), and the dead-endpoint
cases against nothing at all: the run knows the problem, keeps the rows pending and says why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import openai
import pytest

from lib import engine
from lib.engine import errors
from lib.engine.client import Endpoint, make_client
from lib.engine.governor import Governor, retry_after_seconds
from lib.engine.resume import continue_run
from lib.sim import SimConfig, SimServer
from lib.store import Store
from lib.views.run_status import stall_text
from tests.conftest import SIM_TODAY
from tests.engine_helpers import leads, plan, wait_until
from tests.gateway_helpers import MASTER_KEY, MOCK_REPLY, ROOT, start_gateway, stop_gateway

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("gateway")]  # one proxy, one worker


@pytest.fixture(scope="module")
def upstream():
    server = SimServer(SimConfig(today=SIM_TODAY, rpm=600)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    gw, proc = start_gateway(tmp_path_factory.mktemp("gateway"), upstream.url)
    yield gw
    stop_gateway(proc)


def run_job(
    base_url, df, data_dir, *, key=MASTER_KEY, model="gpt-4o-mini", timeout=60.0, wait=True, **settings
):
    p = plan(df, base_url, model=model)
    job = engine.start(  # registered, so the one way to continue (lib.engine.resume) finds it
        p,
        endpoint=Endpoint(api_key=key, base_url=base_url),
        settings=engine.RunSettings(**{"workers": 4, "timeout_s": 10, **settings}),
        store=Store(data_dir),
        governor=Governor(),
    )
    if wait:
        assert job.wait(timeout), f"run did not stop within {timeout}s: {job.snapshot()}"
    return job


def post(gw, body, key=MASTER_KEY):
    client = make_client(Endpoint(api_key=key, base_url=gw.url), timeout_s=20, connections=2)
    return client.post("/chat/completions", cast_to=httpx2.Response, body=body)


# --- through the proxy ------------------------------------------------------------------------------------


def test_a_normal_run_through_the_proxy(gateway, data_dir):
    job = run_job(gateway.url, leads(6), data_dir, model="mock-ok")
    snap = job.snapshot()
    assert (snap.status, snap.succeeded) == ("finished", 6)
    assert {r.text for r in job.rows()} == {MOCK_REPLY}


def test_quota_rewritten_by_the_proxy_pauses_the_run(gateway, data_dir):
    """LiteLLM sends insufficient_quota on as a "429" throttling_error: known by its words, not retried."""
    job = run_job(gateway.url, leads(8, lambda i: f"Co {i} [[sim:quota]]"), data_dir)
    snap = job.snapshot()
    assert snap.status == "paused"
    assert "out of credit" in snap.message and "exceeded your current quota" in snap.message
    assert snap.pending == 8 and snap.requests_sent <= 4  # paused at the first answer: nothing lost
    assert snap.rate_limited == 0


def test_a_refusal_moved_by_the_proxy_is_a_refusal(gateway, data_dir):
    job = run_job(gateway.url, leads(2, lambda i: f"Co {i} [[sim:refusal]]"), data_dir)
    rows = job.rows()
    assert [r.flags for r in rows] == [("refusal",), ("refusal",)]
    assert all("The model refused: I'm sorry" in r.error for r in rows)


def test_no_connected_db_for_every_row_stops_the_run_with_rows_pending(gateway, data_dir):
    """Any key but its master key makes a proxy with no database answer every request 400 'No connected db.'."""
    job = run_job(gateway.url, leads(40), data_dir, key="sk-a-virtual-key-0000", workers=4)
    snap = job.snapshot()
    assert snap.status == "failed"
    assert "No connected db." in snap.message and gateway.url in snap.message
    assert (snap.pending, snap.failed) == (40, 0)
    assert snap.requests_sent <= 8  # about one per worker, never twice that


def test_resumed_with_the_right_key_the_same_run_finishes(gateway, data_dir):
    """The fix is the connection, not the rows: resume through the connection shown now, nothing is lost."""
    job = run_job(gateway.url, leads(12), data_dir, key="sk-a-virtual-key-0000", model="mock-ok")
    assert (job.snapshot().status, job.snapshot().pending) == ("failed", 12)
    assert continue_run(job.store, job.id, Endpoint(api_key=MASTER_KEY, base_url=gateway.url)) is job
    assert job.wait(30)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed) == ("finished", 12, 0)


def test_a_model_name_the_proxy_does_not_know_stops_at_once(gateway, data_dir):
    job = run_job(gateway.url, leads(20), data_dir, model="gpt-nope")
    snap = job.snapshot()
    assert snap.status == "failed" and snap.pending == 20
    assert "Invalid model name passed in model=gpt-nope" in snap.message
    assert snap.requests_sent <= 8


def test_the_upstreams_wait_is_read_under_the_proxys_prefix(gateway):
    """LiteLLM passes the upstream's retry-after-ms on as llm_provider-retry-after-ms (20-500 ms here)."""
    with pytest.raises(openai.RateLimitError) as info:
        post(gateway, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi [[sim:429]]"}]})
    headers = info.value.response.headers
    assert "retry-after-ms" not in headers and "llm_provider-retry-after-ms" in headers
    assert 0.02 <= retry_after_seconds(headers) <= 0.5
    assert errors.classify_status(info.value, model="gpt-4o-mini")[0] == "rate_limit"
    gov = Governor()
    gov.observe(
        post(gateway, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).headers
    )
    assert gov.state().rpm_limit == 600  # the upstream's limit, read through the proxy


def test_the_proxys_own_rpm_limit_is_shown_and_the_patience_pauses(gateway, data_dir):
    """Its own 429 says only llm_provider-retry-after: 60: the run waits that, says why nothing moves, gives up."""
    job = run_job(
        gateway.url, leads(5), data_dir, model="mock-limited", give_up_after_s=7, workers=2, wait=False
    )
    assert wait_until(lambda: stall_text(job.snapshot()) is not None, timeout=15)
    line = stall_text(job.snapshot())
    # The proxy's 60 s (and the 1 rpm it reports), not our own backoff of a second or two.
    assert re.fullmatch(
        r"the server has answered 429 \(rate limited\) for \d s; next try in (\d\d s|\d min)", line
    )
    assert not re.search(r"in [1-3]\d s", line), line
    assert job.wait(15)
    snap = job.snapshot()
    assert snap.status == "paused" and snap.succeeded <= 1 and snap.pending >= 4
    assert "nothing has succeeded for" in snap.message and "429" in snap.message
    assert 7 <= snap.elapsed_s < 12


def test_the_cli_exits_3_with_the_proxys_words(gateway, tmp_path):
    (tmp_path / "leads.csv").write_text("First Name,Company\nAda,Acme\nBob,Beta\nCy,Corp\n")
    proc = cli(tmp_path, gateway.url, "sk-a-virtual-key-0000")
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["pending"] == 3 and "No connected db." in summary["reason"]


# --- nothing there at all ---------------------------------------------------------------------------------


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _PlainHTTP(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def plain_http_url():
    """A plain-HTTP server: it answers a TLS hello with an HTTP 400 and closes, as nginx or uvicorn do."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHTTP)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.mark.parametrize(
    ("make_url", "words"),
    [
        (lambda plain: _closed_port_url(), "connection refused"),
        (lambda plain: "http://no-such-gateway.invalid/v1", "does not resolve"),
        (lambda plain: plain.replace("http://", "https://"), "TLS"),  # https to a plain-HTTP port
        (lambda plain: plain.replace("http://", "ftp://"), "not an http(s) address"),
    ],
    ids=["closed-port", "dns", "tls", "not-http"],
)
def test_a_dead_endpoint_stops_the_run_with_rows_pending(make_url, words, plain_http_url, data_dir):
    url = make_url(plain_http_url)
    job = run_job(url, leads(400), data_dir, key="sk-test-dead", workers=16, timeout=30)
    snap = job.snapshot()
    assert snap.status == "failed", snap
    assert (snap.pending, snap.failed) == (400, 0)
    assert words in snap.message and url in snap.message
    assert snap.requests_sent <= 32


def test_a_dead_endpoint_run_resumes_on_the_fixed_url(sim_server, data_dir):
    from lib.sim import SimConfig

    sim_server.reset(SimConfig(today=SIM_TODAY))
    job = run_job(_closed_port_url(), leads(20), data_dir, key="sk-test-dead", workers=4)
    assert (job.snapshot().status, job.snapshot().pending) == ("failed", 20)
    fixed = Endpoint(api_key="sk-test-dead", base_url=sim_server.url)
    assert continue_run(job.store, job.id, fixed) is job
    assert job.wait(30)
    assert (job.snapshot().status, job.snapshot().succeeded) == ("finished", 20)
    assert continue_run(job.store, job.id, fixed, retry_failed=True) is job  # nothing failed: nothing sent
    assert job.wait(5) and job.snapshot().status == "finished"


def test_the_cli_exits_3_on_a_closed_port(tmp_path):
    (tmp_path / "leads.csv").write_text("First Name,Company\nAda,Acme\nBob,Beta\n")
    url = _closed_port_url()
    proc = cli(tmp_path, url, "sk-test-dead")
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["pending"] == 2 and url in summary["reason"] and "connection refused" in summary["reason"]


def test_a_run_in_which_every_sent_row_failed_never_exits_0(sim_server, tmp_path):
    (tmp_path / "leads.csv").write_text(
        "First Name,Company\nAda,Acme [[sim:refusal]]\nBob,Beta [[sim:refusal]]\n"
    )
    proc = cli(tmp_path, sim_server.url, "sk-test-refused")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["failed"]) == ("finished", 2)
    assert proc.returncode == 3 and "Every row sent failed" in summary["reason"]


def cli(cwd, base_url, key, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY=key, OPENAI_BASE_URL=base_url, PYTHONPATH=str(ROOT))
    args = ["run", "leads.csv", "--output", "out.csv", "--template", "Hi {{ First Name }} at {{ Company }}"]
    return subprocess.run(
        [sys.executable, "-m", "lib", *args, "--workers", "4", "--quiet", *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
