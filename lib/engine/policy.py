"""The policy: what to do with a request's outcome. A pure function of the outcome, the unit's tries so
far and the run's state, so it is tested as a table, without threads or HTTP.

Retries live here and nowhere else (the SDK's own are off): a rate limit retries the row after the
governor's wait (up to MAX_RATE_LIMIT_RETRIES, then the row fails as retryable); a server error, a dropped
connection, a timeout or a broken answer retries up to max_attempts, then fails the row as retryable; an
error about the row alone fails it at once (held back while the first answers of a phase come in: if they
are all the same error the endpoint, not the rows, is the problem); a billing error pauses the run; a key,
model or setting error stops it; an endpoint that is not there (refused, DNS, TLS) stops it with the rows
pending. A pack never fails its rows: it sends them alone. A flex capacity refusal is not an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lib.engine.outcome import Outcome, OutcomeKind

MAX_RATE_LIMIT_RETRIES = 30  # per row: a key that keeps answering 429 turns the row into a retryable failure
UNREACHABLE_MIN = 3  # connection failures in a row that say nothing is there before the run stops
UNREACHABLE_MAX = 20
UNREACHABLE_AFTER_OK_S = 5.0  # once answers have come, a blip shorter than this is a restart, not a stop
CAPACITY_FIRST_BACKOFF_S = 0.25  # a flex capacity refusal backs the row off, doubling, jittered
CAPACITY_MAX_BACKOFF_S = 30.0


class Act(StrEnum):
    ACCEPT = "accept"  # an answer: judge it
    RESEND = "resend"  # the server taught the request's shape: send it again now (not an attempt)
    RETRY = "retry"  # after `delay` seconds, without holding a worker
    FAIL = "fail"  # the row fails, `retryable` or not
    SEND_ALONE = "send_alone"  # a pack's rows go again one request each
    HOLD = "hold"  # a row error held back while the phase's first answers show whose problem it is
    GIVE_BACK = "give_back"  # the run stopped meanwhile: the row goes back to pending
    PAUSE = "pause"  # pause the run (billing); the row stays pending
    STOP = "stop"  # stop the run as failed (key, model, setting); the row stays pending
    STOP_ENDPOINT = "stop_endpoint"  # nothing is there: stop with every row pending
    FALL_BACK = "fall_back"  # no flex capacity for too long: go on at the default tier, now


@dataclass(frozen=True, slots=True)
class Tries:
    """What one unit went through before this outcome."""

    attempts: int = 0  # answers that counted (429s included; capacity refusals and reshapes not)
    rate_limited: int = 0  # 429s among them
    capacity: int = 0  # flex capacity refusals


@dataclass(frozen=True)
class RunState:
    """What the policy needs to know about the run when an outcome comes in."""

    max_attempts: int = 4
    workers: int = 16
    packed: bool = False  # the unit is a pack of rows
    endpoint: str = ""  # as the user may see it (lib.engine.job.public_url)
    endpoint_down: bool = False  # the run already stopped for the endpoint
    probing: bool = False  # the phase's first answers are still coming in
    unreachable: int = 0  # connection failures in a row that say nothing is there, this one included
    ever_ok: bool = False
    quiet_s: float | None = None  # seconds since the last answer (None: none yet)
    wait_s: float = 0.0  # how long the governor says this unit waits (after a 429 or a server error)
    tier: str = "default"  # the tier requests go at now
    flex_fallback: bool = False
    flex_patience_s: float = 600.0
    capacity_waited_s: float = 0.0  # since flex last had capacity
    jitter: float = 0.5  # a draw in [0, 1): rows refused together must not come back together


@dataclass(frozen=True, slots=True)
class Decision:
    act: Act
    delay: float = 0.0
    retryable: bool = False
    message: str | None = None
    failed: bool = False  # STOP_ENDPOINT: the run fails (nothing ever answered) instead of pausing
    attempt: bool = True  # the outcome counts as an attempt of the unit


def seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def unreachable_threshold(workers: int) -> int:
    return max(UNREACHABLE_MIN, min(workers, UNREACHABLE_MAX))


def decide(outcome: Outcome, tries: Tries, state: RunState) -> Decision:
    """What to do with `outcome` (see the module docstring)."""
    kind = outcome.kind
    if kind is OutcomeKind.OK:
        return Decision(Act.ACCEPT)
    if kind is OutcomeKind.RESHAPED:
        return Decision(Act.RESEND, message=outcome.message, attempt=False)
    if kind is OutcomeKind.CAPACITY:
        if state.flex_fallback and state.tier == "flex" and state.capacity_waited_s >= state.flex_patience_s:
            return Decision(
                Act.FALL_BACK,
                message=f"No flex capacity for {seconds(state.capacity_waited_s)}: the rest of the run goes "
                "at the standard price.",
                attempt=False,
            )
        backoff = CAPACITY_FIRST_BACKOFF_S * 2 ** min(tries.capacity, 10)
        return Decision(
            Act.RETRY, delay=min(CAPACITY_MAX_BACKOFF_S, backoff) * (0.5 + state.jitter), attempt=False
        )
    if state.endpoint_down:  # an answer still in flight when the run stopped: its row stays pending
        return Decision(Act.GIVE_BACK)
    if outcome.unreachable and _nothing_there(state):
        return Decision(
            Act.STOP_ENDPOINT,
            failed=not state.ever_ok,
            message=f"Stopped: the API at {state.endpoint} cannot be reached. {outcome.message} Check the base "
            "URL (OPENAI_BASE_URL or the sidebar) and that the server is running, then resume: the rows not "
            "sent stay pending.",
        )
    if kind is OutcomeKind.RATE_LIMIT:
        if tries.rate_limited + 1 >= MAX_RATE_LIMIT_RETRIES:
            return _give_up(state, outcome, retryable=True)
        return Decision(Act.RETRY, delay=state.wait_s)
    if kind is OutcomeKind.QUOTA:
        return Decision(Act.PAUSE, message=outcome.message)
    if kind is OutcomeKind.FATAL:
        return Decision(Act.STOP, message=outcome.message)
    if kind is OutcomeKind.ROW:
        if not state.packed and state.probing:
            return Decision(Act.HOLD, message=outcome.message)
        return _give_up(state, outcome, retryable=False)
    if transient_attempts(tries) >= state.max_attempts:
        return _give_up(state, outcome, retryable=True)
    return Decision(Act.RETRY, delay=state.wait_s)


def transient_attempts(tries: Tries) -> int:
    """This attempt's number among the unit's attempts that were not rate limits."""
    return tries.attempts + 1 - tries.rate_limited


def _give_up(state: RunState, outcome: Outcome, *, retryable: bool) -> Decision:
    if state.packed:  # a pack's trouble is not its rows': each goes again alone
        return Decision(Act.SEND_ALONE, message=outcome.message)
    return Decision(Act.FAIL, retryable=retryable, message=outcome.message)


def _nothing_there(state: RunState) -> bool:
    """Enough refused / DNS / TLS failures in a row, and (once answers came) for long enough."""
    if state.unreachable < unreachable_threshold(state.workers):
        return False
    return not state.ever_ok or (state.quiet_s is not None and state.quiet_s >= UNREACHABLE_AFTER_OK_S)
