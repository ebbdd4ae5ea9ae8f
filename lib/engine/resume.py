"""Continue a stopped run on the connection the user shows now: resume it, or re-send its failed rows.

The app's Resume and Retry buttons (Run, Results, History) all come here, so each acts the same way:
a live run whose job in this process used another endpoint or key is rebuilt on the new one (answers
already paid for are reused from the store), a run with no job here (the server restarted) resumes with
the settings it was started with, and a batch run collects its batches rather than being re-sent live.
"""

from __future__ import annotations

import dataclasses

from lib.engine import job as engine
from lib.engine.client import Endpoint
from lib.engine.runs import move_run, resume_plan
from lib.store import Store


def stored_settings(store: Store, run_id: str) -> engine.RunSettings:
    """The settings a run was started with (kept in its meta as run_settings); defaults for older runs."""
    saved = store.run(run_id).meta.get("run_settings") or {}
    known = {f.name for f in dataclasses.fields(engine.RunSettings)}
    return engine.RunSettings(**{k: v for k, v in saved.items() if k in known})


def continue_run(
    store: Store,
    run_id: str,
    endpoint: Endpoint,
    *,
    retry_failed: bool = False,
    budget_usd: float | None = None,
    batch_settings=None,
):
    """The run's job, resumed (or with its failed rows sent again) through `endpoint`. Returns at once."""
    from lib import batch  # batch mode builds on the engine: imported here, not at the top

    job = engine.get_job(run_id)
    if job is not None and job.active:
        return job
    if batch.is_batch_run(store, run_id) and not retry_failed:
        if job is not None:
            job.resume()
            return job
        return batch.resume(
            store, run_id, endpoint=endpoint, settings=batch_settings or batch.BatchSettings()
        )
    if job is not None and getattr(job, "mode", "live") == "batch":
        job.retry_failed()  # re-sends the batch's failed rows live
        return job
    if job is None or job.endpoint != endpoint:
        move_run(store, run_id, endpoint.base_url)
        settings = job.settings if job is not None else stored_settings(store, run_id)
        if budget_usd is not None:
            settings = dataclasses.replace(settings, budget_usd=budget_usd)
        job = engine.start(resume_plan(store, run_id), endpoint=endpoint, settings=settings, store=store)
        if retry_failed:
            job.retry_failed()
        return job
    if retry_failed:
        job.retry_failed()
    else:
        job.resume(budget_usd=budget_usd)
    return job
