"""The run engine: one prompt over many rows, paced, durable and exact on cost.

A run's work goes through stages, each a module: `unit` (a row or a pack, and the queue of them) ->
`admission` (the budget, the request shape's turn; `governor` paces every run on one key) -> `transports`
(one module per API: `chat` is Chat Completions; `client` and `http_transport` are the SDK and the
sockets under it) -> `policy` (pure: retry, fail the row, hold, resend, pause, stop; `errors` says what an
API error is, `health` whether the endpoint is the problem, `timeouts` how long to wait) -> `judge` (each
row's record, packed or not) -> `journal` (the store, before it counts). `job` is the live Job that runs
them (its lifecycle is lib.jobs's), `settings` what a run is given and shows, `runs` plans a run and
builds its results, `resume` is the one way a stopped run goes on, `regenerate` asks flagged rows again.
"""

from lib.engine.client import Endpoint
from lib.engine.job import Job, start
from lib.engine.judge import judge_answer
from lib.engine.settings import RowError, RunPlan, RunSettings, Snapshot, public_url
from lib.engine.timeouts import adaptive_timeout
from lib.engine.unit import PackItem, WorkItem, request_hash
from lib.jobs import ACTIVE, Status, forget_finished, get_job, register

STATUSES = tuple(Status)

__all__ = [
    "ACTIVE",
    "STATUSES",
    "Endpoint",
    "Job",
    "PackItem",
    "RowError",
    "RunPlan",
    "RunSettings",
    "Snapshot",
    "Status",
    "WorkItem",
    "adaptive_timeout",
    "forget_finished",
    "get_job",
    "judge_answer",
    "public_url",
    "register",
    "request_hash",
    "start",
]
