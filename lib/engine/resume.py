"""The one way a stopped run goes on, whatever stopped it: a pause, the budget, a cancel, a crash or a
restart, an endpoint or key fixed since, failed rows to send again, a batch run.

The app's Resume and Retry buttons (Run, Results, History) and the command line's --retry-failed all call
`continue_run`, so each goes on the same way: with the run's own settings (budget, ceilings, service tier;
a raised budget or the command line's flags on top) and through the connection shown now. A run whose job
is still in this process goes on in that job, so answers a failing disk held back are written, not bought
again, and requests still in flight land first; a run with no job here (the server restarted) is rebuilt
from the store. Either way answers from now on are cached under the endpoint they came from. A batch run
collects its batches; its failed rows go again live.
"""

from __future__ import annotations

import dataclasses

from lib.engine.client import Endpoint
from lib.engine.job import Job, start
from lib.engine.runs import move_run, resume_plan
from lib.engine.settings import RunSettings
from lib.jobs import Job as AnyJob
from lib.jobs import get_job
from lib.store import Store


def stored_settings(store: Store, run_id: str) -> RunSettings:
    """The settings a run was started with (kept in its meta as run_settings); defaults for older runs."""
    saved = store.run(run_id).meta.get("run_settings") or {}
    known = {f.name for f in dataclasses.fields(RunSettings)}
    return RunSettings(**{k: v for k, v in saved.items() if k in known})


def run_settings(
    store: Store, run_id: str, *, settings: RunSettings | None = None, budget_usd: float | None = None
) -> RunSettings:
    """The settings a run goes on with: the job's own while it is in this process, else the stored ones;
    `settings` instead when given (the command line's flags); a raised budget on top."""
    job = get_job(run_id)
    chosen = settings or (job.settings if isinstance(job, Job) else None) or stored_settings(store, run_id)
    if budget_usd is not None:
        chosen = dataclasses.replace(chosen, budget_usd=budget_usd)
    return with_run_api(store, run_id, chosen)


def with_run_api(store: Store, run_id: str, settings: RunSettings) -> RunSettings:
    """`settings` sending through the API the run was planned for (its meta's `api`): a run's requests
    (web research, say) may need it, whatever settings a page or flag hands over."""
    api = store.run(run_id).meta.get("api")
    if api and api != settings.transport:
        return dataclasses.replace(settings, transport=api)
    return settings


def continue_run(
    store: Store,
    run_id: str,
    endpoint: Endpoint,
    *,
    retry_failed: bool = False,
    only_retryable: bool = False,
    budget_usd: float | None = None,
    settings: RunSettings | None = None,
    batch_settings=None,
) -> AnyJob:
    """The run going on through `endpoint` (see the module docstring): its job, at once.

    `retry_failed` sends the failed rows again too (all, or `only_retryable`); `budget_usd` is a new budget;
    `settings` replace the run's own (the command line passes its flags).
    """
    from lib import batch  # batch mode builds on the engine: imported here, not at the top

    job = get_job(run_id)
    if settings is not None:
        settings = with_run_api(store, run_id, settings)
    if isinstance(job, Job):
        job.go_on(
            endpoint=endpoint,
            settings=settings,
            budget_usd=budget_usd,
            retry_failed=retry_failed,
            only_retryable=only_retryable,
        )
        return job
    if isinstance(job, batch.BatchJob) or batch.is_batch_run(store, run_id):
        return batch.continue_batch(
            store,
            run_id,
            endpoint,
            job=job,
            retry_failed=retry_failed,
            only_retryable=only_retryable,
            live_settings=run_settings(store, run_id, settings=settings, budget_usd=budget_usd),
            settings=batch_settings,
        )
    if job is not None and job.active:  # another kind of job holds this id: leave it be
        return job
    move_run(store, run_id, endpoint.base_url)  # the plan is keyed for the endpoint the answers come from
    chosen = run_settings(store, run_id, settings=settings, budget_usd=budget_usd)
    return start(
        resume_plan(store, run_id),
        endpoint=endpoint,
        settings=chosen,
        store=store,
        retry_failed=retry_failed,
        only_retryable=only_retryable,
    )
