"""Shared helpers for tests that run the engine against the local server."""

from __future__ import annotations

import time
from collections import Counter

import pandas as pd

from lib import engine
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.engine.runs import RunOptions, plan_run
from lib.prompts.templates import PromptSpec
from lib.store import Store

TEMPLATE = "Write one friendly line for {{ First Name }} at {{ Company }}."


def leads(n: int, company=lambda i: f"Company {i}") -> pd.DataFrame:
    """n lead rows with row ids 1..n; `company(i)` may carry [[sim:...]] directives for chosen rows."""
    df = pd.DataFrame(
        {
            "First Name": [f"Person{i}" for i in range(1, n + 1)],
            "Company": [company(i) for i in range(1, n + 1)],
        }
    )
    df.index = pd.RangeIndex(1, n + 1, name="row_id")
    return df


def plan(
    df: pd.DataFrame,
    base_url: str,
    *,
    model: str = "gpt-4o-mini",
    max_tokens: int | None = 60,
    run_id=None,
    template=TEMPLATE,
):
    spec = PromptSpec(name="test", template=template)
    return plan_run(
        df, spec, RunOptions(model=model, max_tokens=max_tokens), base_url=base_url, run_id=run_id
    )


def run(
    sim,
    df: pd.DataFrame,
    data_dir,
    *,
    key: str = "sk-test-engine",
    settings: engine.RunSettings | None = None,
    wait: bool = True,
    timeout: float = 60.0,
    **plan_kwargs,
) -> engine.Job:
    """Start a run on a fresh governor (tests must not share pacing state) and wait for it to stop."""
    p = plan(df, sim.url, **plan_kwargs)
    job = engine.Job(
        p,
        endpoint=Endpoint(api_key=key, base_url=sim.url),
        settings=settings or engine.RunSettings(workers=16, timeout_s=5, max_attempts=4),
        store=Store(data_dir),
        governor=Governor(),
    ).start()
    if wait:
        assert job.wait(timeout), f"run did not stop within {timeout}s: {job.snapshot()}"
    return job


def wait_until(predicate, timeout: float = 30.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def ledger_rows(sim) -> Counter:
    """How many billed requests the server saw per row id."""
    return Counter(int(e["row_id"]) for e in sim.ledger() if e.get("row_id") is not None)
