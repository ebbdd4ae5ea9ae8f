"""The governor's pacing arithmetic, on a fake clock (the real-HTTP behaviour is in test_engine)."""

from __future__ import annotations

import threading

import pytest

from lib.engine import governor as gov
from lib.engine.governor import Governor, parse_reset, retry_after_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paced(clock: FakeClock, g: Governor, n: int, tokens: int = 1) -> list[float]:
    """Admission times of n back-to-back requests, advancing the fake clock instead of sleeping."""
    times = []
    original_sleep = gov.time.sleep
    try:
        gov.time.sleep = lambda s: setattr(clock, "now", clock.now + s)
        stop = None
        for _ in range(n):
            assert g.acquire(tokens, stop)
            times.append(clock.now)
    finally:
        gov.time.sleep = original_sleep
    return times


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1.5s", 1.5),
        ("1m30.5s", 90.5),
        ("2h", 7200.0),
        ("0.25", 0.25),
    ],
)
def test_parse_reset(text, seconds):
    assert parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", None, "soon", "-"])
def test_parse_reset_unreadable(text):
    assert parse_reset(text) is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "40", "retry-after": "1"}, 0.04),  # the precise one wins
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # an HTTP date already past: go now
        ({"retry-after": "soon"}, None),
        # A gateway's renamed headers (LiteLLM 1.106.4 passes the upstream's under llm_provider-).
        ({"llm_provider-retry-after-ms": "20", "llm_provider-retry-after": "1"}, 0.02),
        ({"llm_provider-retry-after": "60"}, 60.0),
        ({"retry-after": "2", "llm_provider-retry-after": "60"}, 2.0),  # the hop we talk to wins
        ({}, None),
    ],
)
def test_retry_after(headers, seconds):
    assert retry_after_seconds(headers) == (pytest.approx(seconds) if seconds is not None else None)


def test_paces_evenly_to_header_limit():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "10000000"})
    times = paced(clock, g, 200)
    steady = times[50:]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert 600 / 60 * 0.95 <= rate <= 600 / 60  # under the limit, but close to it
    early = sum(1 for t in times if t - times[0] < 1.0)
    assert early <= 10 * (1 + gov.BURST_SECONDS) + 1  # a start burst of at most BURST_SECONDS of requests


def test_tokens_can_be_the_binding_limit():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "10000", "x-ratelimit-limit-tokens": "60000"})  # 1000 tokens/s
    times = paced(clock, g, 100, tokens=500)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate == pytest.approx(2 * gov.SAFETY, rel=0.05)  # 1000 tokens/s / 500 per request


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ratelimit-limit-requests": "0"},
        {"x-ratelimit-limit-requests": "-1", "x-ratelimit-limit-tokens": "-1"},
    ],
)
def test_missing_or_zero_headers_do_not_pace(headers):
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe(headers)
    times = paced(clock, g, 50)
    assert times[-1] == times[0]  # nothing known: only cool-downs slow it


def test_user_ceiling_is_tighter_than_header():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "6000"})
    g.set_ceilings(rpm=60, tpm=None)
    assert g.state().rpm_limit == 60


def test_429_cools_down_everyone_and_lowers_the_rate():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "600"})
    for _ in range(gov.SIGNAL_MIN_429):  # a burst of 429s: the limit is biting
        wait = g.rate_limited({"retry-after-ms": "1500"})
    assert wait == pytest.approx(1.5)
    state = g.state()
    assert state.cooling_down_s == pytest.approx(1.5)
    assert state.factor == pytest.approx(gov.DECREASE)
    start = clock.now
    times = paced(clock, g, 3)
    assert times[0] >= start + 1.5


def test_429_without_any_hint_backs_off_exponentially():
    clock = FakeClock()
    g = Governor(clock=clock)
    waits = [g.rate_limited({}) for _ in range(5)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_rate_recovers_when_quiet():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "600"})
    for _ in range(gov.SIGNAL_MIN_429):
        g.rate_limited({"retry-after-ms": "10"})
    low = g.state().factor
    assert low < 1.0
    paced(clock, g, 1)
    clock.now += 30
    paced(clock, g, 1)
    assert g.state().factor > low


def test_stop_event_aborts_a_wait():
    g = Governor()
    g.observe({"x-ratelimit-limit-requests": "60"})  # one a second
    stop = threading.Event()
    assert g.acquire(1, stop)
    stop.set()
    assert g.acquire(1, stop) is False


def test_one_governor_per_key_fingerprint():
    a = gov.governor_for(gov.key_fingerprint("http://x/v1", "sk-one"))
    b = gov.governor_for(gov.key_fingerprint("http://x/v1", "sk-one"))
    c = gov.governor_for(gov.key_fingerprint("http://x/v1", "sk-two"))
    assert a is b and a is not c
    assert "sk-one" not in gov.key_fingerprint("http://x/v1", "sk-one")


def test_a_stray_429_among_answers_holds_only_its_row():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "600000"})
    for i in range(400):  # 2% of answers are 429s at random, as some servers shed load
        clock.now += 0.0025
        if i % 50 == 0:
            assert g.rate_limited({"retry-after-ms": "300"}) == pytest.approx(0.3)
        else:
            g.succeeded()
    state = g.state()
    assert state.cooling_down_s == 0 and state.factor == 1.0
    assert state.rate_limited == 8


@pytest.mark.parametrize(
    ("errors_every", "backs_off"),
    [
        (20, False),  # 5% of answers fail: each failed row is simply retried by the next free worker
        (10, False),  # 10%: still glitches
        (2, True),  # 50%: the server is struggling, failed rows back off
        (1, True),  # every answer fails (an outage)
    ],
    ids=["5%", "10%", "50%", "outage"],
)
def test_server_errors_back_off_only_when_they_are_a_real_share(errors_every, backs_off):
    clock = FakeClock()
    g = Governor(clock=clock)
    waits = []
    for i in range(200):
        clock.now += 0.01
        if i % errors_every == 0:
            waits.append(g.server_error(attempt=2))
        else:
            g.succeeded()
    late = waits[len(waits) // 2 :]  # once the window holds enough answers to judge the share
    if backs_off:
        assert all(1.0 * 0.5 <= w <= 1.0 for w in late), late  # 0.5 s x 2 for a second attempt, jittered
    else:
        assert all(w <= gov.ERROR_JITTER_S for w in waits), waits


def test_server_error_backoff_grows_with_the_rows_attempts_and_is_capped():
    g = Governor(clock=FakeClock())
    for _ in range(5):
        g.server_error(attempt=1)  # back to back errors: an outage from the first answers
    assert 0.25 <= g.server_error(attempt=1) <= 0.5
    assert 2.0 <= g.server_error(attempt=4) <= 4.0
    assert 4.0 <= g.server_error(attempt=12) <= 8.0


def test_server_errors_do_not_count_as_rate_limiting():
    clock = FakeClock()
    g = Governor(clock=clock)
    g.observe({"x-ratelimit-limit-requests": "600"})
    for _ in range(50):
        clock.now += 0.01
        g.server_error(attempt=1)
    state = g.state()
    assert state.factor == 1.0 and state.cooling_down_s == 0 and state.rate_limited == 0
