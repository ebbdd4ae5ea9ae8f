"""What a workspace has going on in this server, as the one line every page shows under its title.

"Running: Icebreaker on 1,500 rows · 42% · $0.21" with a link to the page that shows it. The line is built
from the job registry's snapshots only (lib.jobs), so every page says the same as the Run page's live
panel, and from the jobs the workspace names: the registry is shared by every user of the server, and
another person's run is none of this page's business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lib.engine import regenerate
from lib.jobs import Job
from lib.store import Store
from lib.views.labels import money
from lib.workspace import Workspace

GOING = ("pending", "running")
STATUS_WORDS = {
    "pending": "Starting",
    "running": "Running",
    "paused": "Paused",
    "cancelled": "Cancelled",
    "finished": "Finished",
    "failed": "Stopped",
}


@dataclass(frozen=True)
class Going:
    """One job of the workspace's: its id, what it is, and the page that shows it."""

    job_id: str
    what: str  # run | regenerate | websites | try
    page: str  # data | prompt | run | results


@dataclass(frozen=True)
class Line:
    text: str  # "Running: Icebreaker on 1,500 rows · 42% · $0.21"
    page: str  # the page to open for it
    going: bool  # still sending (the page keeps redrawing the line while it is)


def _percent(done: int, total: int) -> str:
    """Whole percent, rounded down: 99% until the last row is in, never 100% early."""
    if not total:
        return "0%"
    return f"{math.floor(done * 100 / total)}%"


def _spend(snap, meta: dict) -> str | None:
    if meta.get("demo"):
        return "simulated, no cost"
    if not getattr(snap, "cost_known", True):
        return "unpriced model"
    cost = getattr(snap, "cost_usd", None)
    return money(cost) if cost is not None else None


def going(w: Workspace, get_job: Callable[[str], Job | None], store: Store | None = None) -> list[Going]:
    """The workspace's jobs that are sending now, in the order their lines are shown."""
    found: list[Going] = []

    def add(job_id: str | None, what: str, page: str) -> None:
        job = get_job(job_id) if job_id else None
        if job is not None and job.status in GOING and all(g.job_id != job.id for g in found):
            found.append(Going(job.id, what, page))

    add(w.run_id, "run", "run")
    if store is not None:
        for run_id in dict.fromkeys(r for r in (w.run_id, w.results_run_id) if r):
            attempt = regenerate.running_attempt(store, run_id)
            add(attempt.id if attempt is not None else None, "regenerate", "results")
    add(w.websites.job_id, "websites", "data")
    for variant in w.workbench.variants:
        add(variant.run_id, "try", "prompt")
    return found


def line(item: Going, job: Job | None) -> Line | None:
    """The line for one job, from its snapshot now (it may have ended since `going` found it)."""
    if job is None:
        return None
    snap = job.snapshot()
    status = str(snap.status)
    word = STATUS_WORDS.get(status, status.capitalize())
    meta = getattr(getattr(job, "plan", None), "meta", None) or {}
    if item.what == "websites":
        text = f"{word}: reading websites of {snap.total:,} rows · {_percent(snap.done, snap.total)}"
        return Line(text, item.page, status in GOING)
    name = meta.get("prompt_name") or "a prompt"
    if item.what == "regenerate":
        what = f"asking {snap.total:,} flagged rows of {name} again"
    elif item.what == "try":
        what = f"trying {name} on {snap.total:,} sample rows"
    else:
        batch = " as a batch" if getattr(job, "kind", "") == "batch" else ""
        what = f"{name} on {snap.total:,} rows{batch}"
    parts = [f"{word}: {what}", _percent(snap.done, snap.total)]
    spend = _spend(snap, meta)
    if spend:
        parts.append(spend)
    return Line(" · ".join(parts), item.page, status in GOING)


def lines(items: Sequence[Going], get_job: Callable[[str], Job | None]) -> list[Line]:
    out = []
    for item in items:
        found = line(item, get_job(item.job_id))
        if found is not None:
            out.append(found)
    return out


def run_connection(w: Workspace, get_job: Callable[[str], Job | None]) -> str | None:
    """Where the workspace's going run sends, in words with the key masked; None when no run goes.

    A reload forgets a key typed in the browser, but the run started with it keeps sending: the sidebar
    must say so rather than "No API key" under a run that is visibly going."""
    job = get_job(w.run_id) if w.run_id else None
    if job is None or job.status not in GOING:
        return None
    meta = getattr(getattr(job, "plan", None), "meta", None) or {}
    if meta.get("demo"):
        return "the offline demo server (simulated answers, no cost)"
    endpoint = getattr(job, "endpoint", None)
    return endpoint.describe() if endpoint is not None else None
