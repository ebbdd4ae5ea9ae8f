"""A job's status and the changes it may make: one table, checked on every change.

Every kind of job (a live run, a batch run, a website reading) moves through the same statuses. A change
the table does not allow is refused, whoever asks: a cancelled job never becomes paused because a worker
that was already past the cancel found the budget spent, and a job is finished only from running (or
pending, when there was nothing to do).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Compares equal to its value ("running"), so pages, the CLI and the store read it as text."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"
    FAILED = "failed"


P, R, Z, C, F, X = (
    Status.PENDING,
    Status.RUNNING,
    Status.PAUSED,
    Status.CANCELLED,
    Status.FINISHED,
    Status.FAILED,
)
# Status -> the statuses it may change to. A status to itself is a new message (a paused job's new reason,
# a cancelled batch run's "collecting what ran" becoming "cancelled after ..."): allowed except when finished.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    P: frozenset({R, C, F, X}),  # F: nothing to do; X: stopped before sending (a retired model)
    R: frozenset({R, Z, C, F, X}),
    Z: frozenset({Z, R, C, X}),  # X: a paused run whose last answers showed a dead endpoint
    C: frozenset({C, R}),  # only a resume (or retry) moves a cancelled job on
    F: frozenset({R}),  # retry failed rows, or a continue with more to do
    X: frozenset({X, R, C}),
}
ACTIVE = frozenset({P, R})  # statuses in which a job sends or may send
RESUMABLE = frozenset({Z, C, X})  # statuses resume() moves on from


class IllegalTransition(ValueError):
    """A change of status the table does not allow."""


def allowed(old: Status | str, new: Status | str) -> bool:
    """Whether a job in `old` may change to `new`."""
    return Status(new) in TRANSITIONS[Status(old)]


def check(old: Status | str, new: Status | str) -> Status:
    """`new` as a Status when the change is allowed; IllegalTransition otherwise."""
    if not allowed(old, new):
        raise IllegalTransition(f"A {old} job cannot become {new}.")
    return Status(new)
