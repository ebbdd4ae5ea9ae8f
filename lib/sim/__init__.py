"""The project's own OpenAI-compatible HTTP server: tests, benchmarks and the offline demo.

`server` starts it (in a thread or a subprocess), `app` is its behaviour, `models` its own model rules
(what each model accepts, OpenAI's refusals, shutdown dates), `replies` its deterministic answers, `limits`
its rate-limit buckets, `batch` its Batch API, `http11` the raw HTTP/1.1 under it.
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

__all__ = [
    "ROOT",
    "SimConfig",
    "SimProcess",
    "SimServer",
    "expected_json",
    "expected_reply",
    "main",
    "reply_tag",
]
