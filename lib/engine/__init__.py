"""The run engine: one prompt over many rows, paced, durable and exact on cost.

`job` is the Job (statuses, counters, workers, snapshot) and the process's registry of jobs; `governor`
paces every run on one key; `client` and `http_transport` are the openai SDK and the sockets under it;
`errors` says what an API error means for the run; `runs` plans a run from a table and a prompt, resumes
one from the store and builds its results table. The Job's public names are re-exported here.
"""

from lib.engine.client import Endpoint
from lib.engine.job import (
    ACTIVE,
    STATUSES,
    Job,
    RowError,
    RunPlan,
    RunSettings,
    Snapshot,
    WorkItem,
    adaptive_timeout,
    forget_finished,
    get_job,
    judge_answer,
    register,
    request_hash,
    start,
)

__all__ = [
    "ACTIVE",
    "STATUSES",
    "Endpoint",
    "Job",
    "RowError",
    "RunPlan",
    "RunSettings",
    "Snapshot",
    "WorkItem",
    "adaptive_timeout",
    "forget_finished",
    "get_job",
    "judge_answer",
    "register",
    "request_hash",
    "start",
]
