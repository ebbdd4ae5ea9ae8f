"""Transports (lib/engine/transports): adding an API is one new module there, and nothing else."""

from __future__ import annotations

import textwrap

import pytest

from lib import engine
from lib.engine import transports
from lib.engine.governor import Governor
from lib.store import Store
from tests.engine_helpers import leads, plan

ECHO = '''
"""A transport for the test: answers each request with its last message, over no network at all."""

from lib.cost.pricing import Usage
from lib.engine.outcome import Outcome, OutcomeKind


class Echo:
    def __init__(self, client, *, secrets=()):
        self.client = client

    def send(self, body, *, row_id, timeout):
        text = "echo: " + body["messages"][-1]["content"][:40]
        return Outcome(OutcomeKind.OK, text=text, finish="stop", usage=Usage(10, 3), tier="default", latency_s=0.001)


def make(client, *, secrets=()):
    return Echo(client, secrets=secrets)
'''


def test_the_release_has_chat_completions_and_responses_and_refuses_a_name_it_does_not_have():
    assert transports.names() == ["chat", "responses"]
    with pytest.raises(ValueError, match="Unknown transport 'completions': use one of chat, responses"):
        transports.make("completions", client=None)


def test_a_new_transport_module_is_all_a_new_api_takes(tmp_path, monkeypatch, data_dir):
    (tmp_path / "echo.py").write_text(textwrap.dedent(ECHO))
    monkeypatch.setattr(transports, "__path__", [*transports.__path__, str(tmp_path)])
    assert "echo" in transports.names()
    p = plan(leads(7), "http://127.0.0.1:9/v1")  # nothing listens there: the echo never connects
    job = engine.Job(
        p,
        endpoint=engine.Endpoint(api_key="sk-test-echo", base_url="http://127.0.0.1:9/v1"),
        settings=engine.RunSettings(workers=3, transport="echo"),
        store=Store(data_dir),
        governor=Governor(),
    ).start()
    assert job.wait(20)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.prompt_tokens) == ("finished", 7, 70)
    assert all(r.text.startswith("echo: ") for r in job.rows())
