"""The one job core: every kind of job (a live run, a batch run, a website reading) shares its lifecycle.

`status` is the Status type and the table of allowed changes, `tally` the counters over rows, `core` the
Job base (phases, the supervisor, pause / resume / cancel / wait), `registry` the process's jobs by id.
The kinds live with their work: lib.engine.job (live), lib.batch.job, lib.web.job.
"""

from lib.jobs.core import Job
from lib.jobs.registry import Registry, forget_finished, get_job, register
from lib.jobs.status import ACTIVE, RESUMABLE, TRANSITIONS, IllegalTransition, Status, allowed, check
from lib.jobs.tally import Tally

__all__ = [
    "ACTIVE",
    "RESUMABLE",
    "TRANSITIONS",
    "IllegalTransition",
    "Job",
    "Registry",
    "Status",
    "Tally",
    "allowed",
    "check",
    "forget_finished",
    "get_job",
    "register",
]
