"""The engine's policy (lib/engine/policy.py) as a table: an outcome, the unit's tries, the run's state ->
what to do. Pure: no threads, no HTTP, no clock."""

from __future__ import annotations

import pytest

from lib.engine.outcome import Outcome, OutcomeKind
from lib.engine.policy import (
    CAPACITY_MAX_BACKOFF_S,
    MAX_RATE_LIMIT_RETRIES,
    Act,
    RunState,
    Tries,
    decide,
)

K = OutcomeKind
OK = Outcome(K.OK, text="hi")
LIMIT = Outcome(K.RATE_LIMIT, message="429")
CAPACITY = Outcome(K.CAPACITY, message="no flex")
QUOTA = Outcome(K.QUOTA, message="out of credit")
FATAL = Outcome(K.FATAL, message="bad key")
ROW = Outcome(K.ROW, message="too long")
FLAKY = Outcome(K.TRANSIENT, message="500")
DROPPED = Outcome(K.TRANSIENT, message="dropped", maybe_billed=True)
REFUSED = Outcome(K.TRANSIENT, message="connection refused", unreachable="refused")
RESHAPED = Outcome(K.RESHAPED, message="sent as max_completion_tokens")
RUN = RunState(max_attempts=4, workers=8, endpoint="http://x/v1", wait_s=1.5, jitter=0.5)
PACK = RunState(max_attempts=4, workers=8, packed=True, wait_s=1.5)


def state(**changes) -> RunState:
    return RunState(**{**RUN.__dict__, **changes})


CASES = [
    # (name, outcome, tries, state, act, delay, retryable, counts as an attempt)
    ("answer", OK, Tries(), RUN, Act.ACCEPT, 0.0, False, True),
    ("answer-after-retries", OK, Tries(3, 2), RUN, Act.ACCEPT, 0.0, False, True),
    ("reshaped-resent-not-an-attempt", RESHAPED, Tries(), RUN, Act.RESEND, 0.0, False, False),
    ("rate-limit-waits-the-governor", LIMIT, Tries(), RUN, Act.RETRY, 1.5, False, True),
    ("rate-limit-one-short", LIMIT, Tries(40, MAX_RATE_LIMIT_RETRIES - 2), RUN, Act.RETRY, 1.5, False, True),
    ("rate-limit-exhausted", LIMIT, Tries(40, MAX_RATE_LIMIT_RETRIES - 1), RUN, Act.FAIL, 0.0, True, True),
    ("rate-limit-exhausted-pack", LIMIT, Tries(40, MAX_RATE_LIMIT_RETRIES - 1), PACK, Act.SEND_ALONE, 0.0, False, True),
    ("server-error-retried", FLAKY, Tries(), RUN, Act.RETRY, 1.5, False, True),
    ("server-error-third", FLAKY, Tries(2), RUN, Act.RETRY, 1.5, False, True),
    ("server-error-last", FLAKY, Tries(3), RUN, Act.FAIL, 0.0, True, True),
    ("429s-are-not-server-attempts", FLAKY, Tries(5, 3), RUN, Act.RETRY, 1.5, False, True),
    ("dropped-is-transient", DROPPED, Tries(3), RUN, Act.FAIL, 0.0, True, True),
    ("server-error-pack-last", FLAKY, Tries(3), PACK, Act.SEND_ALONE, 0.0, False, True),
    ("quota-pauses", QUOTA, Tries(), RUN, Act.PAUSE, 0.0, False, True),
    ("fatal-stops", FATAL, Tries(), RUN, Act.STOP, 0.0, False, True),
    ("row-error-fails-at-once", ROW, Tries(), RUN, Act.FAIL, 0.0, False, True),
    ("row-error-held-while-probing", ROW, Tries(), state(probing=True), Act.HOLD, 0.0, False, True),
    ("row-error-of-a-pack", ROW, Tries(), PACK, Act.SEND_ALONE, 0.0, False, True),
    ("stopped-meanwhile-gives-back", FLAKY, Tries(), state(endpoint_down=True), Act.GIVE_BACK, 0.0, False, True),
    ("answer-after-stop-still-counts", OK, Tries(), state(endpoint_down=True), Act.ACCEPT, 0.0, False, True),
    ("refused-once-is-retried", REFUSED, Tries(), state(unreachable=1), Act.RETRY, 1.5, False, True),
    ("refused-enough-stops", REFUSED, Tries(), state(unreachable=8), Act.STOP_ENDPOINT, 0.0, False, True),
    ("refused-after-answers-briefly", REFUSED, Tries(), state(unreachable=8, ever_ok=True, quiet_s=1.0), Act.RETRY, 1.5, False, True),
    ("refused-after-answers-long", REFUSED, Tries(), state(unreachable=8, ever_ok=True, quiet_s=9.0), Act.STOP_ENDPOINT, 0.0, False, True),
    ("capacity-backs-off", CAPACITY, Tries(), RUN, Act.RETRY, 0.25, False, False),
    ("capacity-doubles", CAPACITY, Tries(0, 0, 3), RUN, Act.RETRY, 2.0, False, False),
    ("capacity-capped", CAPACITY, Tries(0, 0, 30), RUN, Act.RETRY, CAPACITY_MAX_BACKOFF_S, False, False),
    ("capacity-patience-left", CAPACITY, Tries(), state(tier="flex", flex_fallback=True, capacity_waited_s=5), Act.RETRY, 0.25, False, False),
    ("capacity-falls-back", CAPACITY, Tries(), state(tier="flex", flex_fallback=True, capacity_waited_s=601), Act.FALL_BACK, 0.0, False, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "tries", "run", "act", "delay", "retryable", "attempt"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)  # fmt: skip
def test_each_outcome_gets_its_decision(outcome, tries, run, act, delay, retryable, attempt):
    decision = decide(outcome, tries, run)
    assert decision.act is act
    assert decision.delay == pytest.approx(delay)
    assert decision.retryable is retryable
    assert decision.attempt is attempt


def test_a_dead_endpoint_says_where_and_fails_only_when_nothing_ever_answered():
    never = decide(REFUSED, Tries(), state(unreachable=8))
    assert never.failed and "http://x/v1" in never.message and "connection refused" in never.message
    after = decide(REFUSED, Tries(), state(unreachable=8, ever_ok=True, quiet_s=60.0))
    assert not after.failed  # answers came before: a pause, to resume once it is back


def test_the_jitter_spreads_rows_refused_together():
    low = decide(CAPACITY, Tries(0, 0, 2), state(jitter=0.0)).delay
    high = decide(CAPACITY, Tries(0, 0, 2), state(jitter=0.99)).delay
    assert low == pytest.approx(0.5) and high == pytest.approx(1.0 * 1.49)
