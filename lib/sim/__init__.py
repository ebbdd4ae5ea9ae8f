"""The project's own OpenAI-compatible HTTP server: tests, benchmarks and the offline demo.

`server` starts it (in a thread or a subprocess), `app` is its behaviour, `models` its own model rules
(what each model accepts, OpenAI's refusals, shutdown dates, web search support and price), `replies` its
deterministic answers, `limits` its rate-limit buckets, `batch` its Batch API, `responses` its Responses
API (POST /v1/responses, the same answers as chat), `websearch` its web_search tool (searches, sources
and citations derived from the row), `http11` the raw HTTP/1.1 under it.
"""

from lib.sim.server import (
    ROOT,
    SimConfig,
    SimProcess,
    SimServer,
    expected_json,
    expected_reply,
    main,
    reply_tag,
)
from lib.sim.websearch import billed_calls, cited_reply, web_search_cost

__all__ = [
    "ROOT",
    "SimConfig",
    "SimProcess",
    "SimServer",
    "billed_calls",
    "cited_reply",
    "expected_json",
    "expected_reply",
    "main",
    "reply_tag",
    "web_search_cost",
]
