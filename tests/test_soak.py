"""Soak: 20,000 rows under a steady drizzle of faults complete with nothing lost and every token accounted.

Marked `long`: CI runs it; skip it locally with `-m "not long"`. The simulator runs as its own process
(SimProcess) so it does not share the engine's GIL.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lib import engine
from lib.cost.pricing import Usage, cost
from lib.engine.client import Endpoint
from lib.engine.governor import Governor
from lib.sim import SimConfig, SimProcess, expected_reply
from lib.store import Store
from tests.conftest import SIM_TODAY
from tests.engine_helpers import leads, plan

ROWS = 20_000
FAULTS = {"p_500": 0.01, "p_drop": 0.005, "p_429": 0.003}  # under 2% of requests in all


@pytest.mark.long
def test_20000_rows_under_faults_lose_nothing_and_bill_exactly_what_was_reported(data_dir):
    config = SimConfig(
        today=SIM_TODAY, latency_ms=8, latency_dist="lognormal", latency_p99_ms=20, seed=53, **FAULTS
    )
    with SimProcess(config) as server:
        df = leads(ROWS)
        p = plan(df, server.url, max_tokens=200)  # room for every reply: none is cut short
        job = engine.Job(p, endpoint=Endpoint(api_key="sk-test-soak", base_url=server.url), store=Store(data_dir),
                         settings=engine.RunSettings(workers=64, timeout_s=10, max_attempts=6),
                         governor=Governor()).start()  # fmt: skip
        assert job.wait(240), job.snapshot()
        entries = server.ledger()
        stats = server.stats()
    snap = job.snapshot()
    assert (snap.status, snap.succeeded, snap.failed, snap.pending) == ("finished", ROWS, 0, 0), (
        snap.recent_errors
    )
    assert (
        sum(stats["by_kind"].get(k, 0) for k in ("fault_500", "drop", "spurious_429")) > 0
    )  # faults did happen

    rows = {r.row_id: r for r in job.rows()}
    assert set(rows) == set(range(1, ROWS + 1))
    for item in p.items:  # every row holds the answer to its own request
        assert rows[item.row_id].text == expected_reply(item.body["messages"], item.body["model"])
    stored = Counter(r.status for r in Store(data_dir).rows(job.id))
    assert stored == {"succeeded": ROWS}

    paid = Counter(int(e["row_id"]) for e in entries)
    assert set(paid) == set(rows) and all(n == 1 for n in paid.values()), "a row was paid twice"
    reported = Usage(
        sum(e["prompt_tokens"] for e in entries),
        sum(e["completion_tokens"] for e in entries),
        sum(e["cached_tokens"] for e in entries),
        sum(e["reasoning_tokens"] for e in entries),
    )
    assert (snap.prompt_tokens, snap.completion_tokens, snap.cached_tokens) == (
        reported.prompt_tokens,
        reported.completion_tokens,
        reported.cached_tokens,
    )
    # Dropped connections were not billed here; each kept its worst case as a labelled estimate.
    assert snap.cost_usd - snap.estimated_usd == pytest.approx(cost(reported, p.price), rel=1e-9)
    assert snap.estimated_usd > 0
