"""The line every page shows for what the workspace has going (lib.views.running), and the sidebar's
connection line beside a going run (lib.views.connection_text), as tables of cases."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from lib.engine.client import Endpoint, choose_connection
from lib.views import connection_text, running
from lib.workspace import Workspace


@dataclass
class FakeJob:
    id: str
    status: str = "running"
    kind: str = "live"
    done: int = 0
    total: int = 1500
    cost: float = 0.21
    cost_known: bool = True
    meta: dict = field(default_factory=lambda: {"prompt_name": "Icebreaker"})
    endpoint: Endpoint | None = None

    @property
    def plan(self):
        return SimpleNamespace(meta=self.meta)

    def snapshot(self):
        return SimpleNamespace(
            status=self.status,
            done=self.done,
            total=self.total,
            cost_usd=self.cost,
            cost_known=self.cost_known,
        )


@pytest.mark.parametrize(
    ("what", "job", "text"),
    [
        ("run", FakeJob("r", done=630), "Running: Icebreaker on 1,500 rows · 42% · $0.2100"),
        ("run", FakeJob("r", done=1499), "Running: Icebreaker on 1,500 rows · 99% · $0.2100"),  # never 100% early
        ("run", FakeJob("r", done=0, total=0), "Running: Icebreaker on 0 rows · 0% · $0.2100"),
        ("run", FakeJob("r", kind="batch", done=750), "Running: Icebreaker on 1,500 rows as a batch · 50% · $0.2100"),
        ("run", FakeJob("r", meta={"prompt_name": "Icebreaker", "demo": True}),
         "Running: Icebreaker on 1,500 rows · 0% · simulated, no cost"),
        ("run", FakeJob("r", cost_known=False), "Running: Icebreaker on 1,500 rows · 0% · unpriced model"),
        ("run", FakeJob("r", status="finished", done=1500), "Finished: Icebreaker on 1,500 rows · 100% · $0.2100"),
        ("run", FakeJob("r", status="paused", done=3), "Paused: Icebreaker on 1,500 rows · 0% · $0.2100"),
        ("regenerate", FakeJob("a", total=111, done=40),
         "Running: asking 111 flagged rows of Icebreaker again · 36% · $0.2100"),
        ("try", FakeJob("t", total=5, done=2), "Running: trying Icebreaker on 5 sample rows · 40% · $0.2100"),
        ("websites", FakeJob("w", total=40, done=10, meta={}), "Running: reading websites of 40 rows · 25%"),
    ],
)  # fmt: skip
def test_the_line_says_what_goes_how_far_and_what_it_spent(what, job, text):
    line = running.line(running.Going(job.id, what, "run"), job)
    assert line is not None and line.text == text
    assert line.going is (job.status == "running")


def test_only_the_workspaces_own_jobs_that_are_sending_are_found():
    w = Workspace(id="ws1")
    w.run_id = "run-1"
    w.websites.job_id = "web-1"
    jobs = {
        "run-1": FakeJob("run-1"),
        "web-1": FakeJob("web-1", status="paused"),  # paused: not going
        "someone-elses": FakeJob("someone-elses"),  # in the registry, but not this workspace's
    }
    found = running.going(w, jobs.get)
    assert found == [running.Going("run-1", "run", "run")]
    assert [line.text for line in running.lines(found, jobs.get)] == [
        "Running: Icebreaker on 1,500 rows · 0% · $0.2100"
    ]
    assert running.lines(found, {}.get) == []  # forgotten by the registry since: nothing to say


KEY = "sk-run-secret-ABCDEF9999"
RUN_ENDPOINT = Endpoint(KEY, "http://gateway.example/v1")


@pytest.mark.parametrize(
    ("run", "typed_key", "expected"),
    [
        (None, None, r"^No API key\. Type one below"),
        (FakeJob("r", endpoint=RUN_ENDPOINT), None,
         r"^The run going now sends to gateway\.example with key sk-…9999\. This tab has no key of its own"),
        (FakeJob("r", status="finished", endpoint=RUN_ENDPOINT), None, r"^No API key\. Type one below"),
        (FakeJob("r", endpoint=RUN_ENDPOINT), KEY, r"^Sending to `http://gateway\.example/v1` with the key typed"),
        (FakeJob("r", endpoint=RUN_ENDPOINT), "sk-other-key-00001111",
         r"^The run going now sends to gateway\.example with key sk-…9999\.  \nNew requests from this tab: Sending"),
    ],
)  # fmt: skip
def test_the_sidebar_never_says_no_key_under_a_going_run(run, typed_key, expected):
    w = Workspace(id="ws1")
    w.run_id = "r"
    conn = choose_connection(
        demo=False, demo_url=None, typed_key=typed_key, typed_base_url="http://gateway.example/v1", env={}
    )
    said = running.run_connection(w, {"r": run}.get if run else {}.get)
    text = re.sub(r"\\(.)", r"\1", connection_text.key_status(conn, said))
    assert re.search(expected, text), text
    assert KEY not in text


def test_a_demo_run_says_it_is_the_demo():
    w = Workspace(id="ws1")
    w.run_id = "r"
    job = FakeJob("r", meta={"prompt_name": "Icebreaker", "demo": True})
    assert running.run_connection(w, {"r": job}.get) == "the offline demo server (simulated answers, no cost)"
