"""The engine tells the endpoint's problems from the rows' (against the simulator): row errors that differ
or that come among answers fail their rows as before; a server that only refuses is shown and given up on.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lib import engine
from lib.engine.settings import public_url
from lib.engine.transports.chat import refusal_of
from lib.views.run_status import stall_text
from tests.engine_helpers import leads, run, wait_until


def test_identical_row_errors_among_answers_fail_only_their_rows(sim, data_dir):
    """Three rows too long for the model (the same words each) and nine good ones: no endpoint stop."""
    df = leads(12, lambda i: "[[sim:context_length]] Same Co" if i <= 3 else f"Company {i}")
    job = run(sim, df, data_dir, settings=engine.RunSettings(workers=8, timeout_s=5))
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == ("finished", 9, 3, 0)
    assert all("too long" in r.error for r in job.rows() if r.status == "failed")


def test_a_list_shorter_than_the_probe_still_fails_its_rows(sim, data_dir):
    """One row, one row error: there is no telling the endpoint from the row, so the row fails as usual."""
    job = run(sim, leads(1, lambda i: "[[sim:context_length]]"), data_dir)
    snap = job.snapshot()
    assert (snap.status, snap.failed, snap.pending) == ("finished", 1, 0)


def test_every_request_answered_429_is_shown_then_given_up(sim, data_dir):
    sim.configure(p_429=1.0, seed=3)
    settings = engine.RunSettings(workers=4, timeout_s=5, give_up_after_s=6.0)
    job = run(sim, leads(30), data_dir, settings=settings, wait=False)
    assert wait_until(lambda: stall_text(job.snapshot()) is not None, timeout=10)
    assert stall_text(job.snapshot()).startswith(
        "the server has answered 429 (rate limited) for 5 s; next try"
    )
    assert job.wait(15)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.pending) == ("paused", 0, 30)
    assert snap.message.startswith("Paused: nothing has succeeded for 6") and sim.url in snap.message
    assert snap.stalled_s is None  # a paused run is not "stalled": it says why in its message


def test_without_patience_the_stall_is_shown_but_the_run_goes_on(sim, data_dir):
    sim.configure(p_429=1.0, seed=4)
    job = run(sim, leads(5), data_dir, settings=engine.RunSettings(workers=2, timeout_s=5), wait=False)
    assert wait_until(lambda: (job.snapshot().stalled_s or 0) > 6.5, timeout=12)
    assert job.snapshot().status == "running"
    sim.configure(p_429=0.0)  # the limit lifts: the rows go through, the stall is gone
    assert job.wait(60)
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.stalled_s) == ("finished", 5, None)


def _snap(**kw):
    base = dict(status="running", stalled_s=None, stall_kind=None, next_try_s=None)
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("snap", "text"),
    [
        (
            _snap(stalled_s=120.0, stall_kind="429", next_try_s=8.2),
            "the server has answered 429 (rate limited) for 2 min; next try in 8 s",
        ),
        (
            _snap(stalled_s=40.0, stall_kind="error", next_try_s=0.1),
            "the server has failed every request for 40 s; next try now",
        ),
        (
            _snap(stalled_s=3700.0, stall_kind="429", next_try_s=75.0),
            "the server has answered 429 (rate limited) for 1 h 01 min; next try in 1 min",
        ),
        (_snap(stalled_s=4.0, stall_kind="429", next_try_s=1.0), None),  # the ordinary rhythm of a paced run
        (_snap(stalled_s=None), None),
        (_snap(status="paused", stalled_s=60.0, stall_kind="429", next_try_s=1.0), None),
    ],
)
def test_stall_text(snap, text):
    assert stall_text(snap) == text


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ({"content": None, "refusal": "No."}, "No."),
        (
            {"content": None, "provider_specific_fields": {"refusal": "I can't help."}},
            "I can't help.",
        ),  # LiteLLM
        ({"content": "ok", "provider_specific_fields": {}}, None),
        ({"content": "ok", "provider_specific_fields": None}, None),
    ],
)
def test_refusal_wherever_it_is(message, refusal):
    assert refusal_of(message) == refusal


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, "https://api.openai.com/v1"),
        ("https://user:secret@gw.example.com:8443/v1?api-key=abc", "https://gw.example.com:8443/v1"),
        ("http://[::1]:4000/v1", "http://[::1]:4000/v1"),
    ],
)
def test_public_url_drops_credentials(url, shown):
    assert public_url(url) == shown


# The simulator answering errors as other servers shape them (SimConfig.error_style): a whole run each.
STYLES = ("openai", "azure", "litellm", "vllm", "ollama")
CASES = {
    # name: (sim config, key, model, company of row i, expected (status, succeeded, failed, pending), words)
    "quota": ({"quota_after": 0}, "sk-test-style", "gpt-4o-mini", None, ("paused", 0, 0, 6), "out of credit"),
    "key": ({}, "sk-invalid-style", "gpt-4o-mini", None, ("failed", 0, 0, 6), "key was rejected"),
    "model": ({}, "sk-test-style", "gpt-9-mini", None, ("failed", 0, 0, 6), "does not exist"),
    "context": (
        {},
        "sk-test-style",
        "gpt-4o-mini",
        lambda i: "[[sim:context_length]]" if i == 2 else f"Co {i}",
        ("finished", 5, 1, 0),
        "too long",
    ),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", list(CASES))
def test_each_servers_error_shape_ends_the_run_alike(sim, data_dir, style, case):
    config, key, model, company, expected, words = CASES[case]
    sim.configure(error_style=style, **config)
    df = leads(6, company) if company else leads(6)
    job = run(sim, df, data_dir, key=key, model=model, settings=engine.RunSettings(workers=2, timeout_s=5))
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == expected, snap.message
    said = snap.message if snap.status != "finished" else next(r.error for r in job.rows() if r.error)
    assert words in said and "The server said:" in said
