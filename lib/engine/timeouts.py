"""The per-request timeout: the setting until answers show how long they really take, then far less.

Adaptive timeout: the setting until an answer is seen; then 20x the slowest answer (at least 10 s); from
the 100th answer, see adaptive_timeout. Never more than the setting. A request that timed out gets double
the time on each further attempt (as TCP backs off its retransmit timer), so an answer that is merely slow
gets through on the retry instead of being cut off again. Flex requests get up to 15 minutes (OpenAI
advises it: flex queues requests), whatever answers took.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable, Iterable

ADAPTIVE_FIRST_MULTIPLE = 20.0
ADAPTIVE_FIRST_FLOOR_S = 10.0
ADAPTIVE_MIN_SAMPLES = 100  # fewer answers say too little about the tail: a p99 of 20 is their maximum
ADAPTIVE_Z = 4.75  # a lognormal fit's quantile that about one answer in a million exceeds
ADAPTIVE_MAX_MULTIPLE = 2.0
ADAPTIVE_FLOOR_S = 1.0
FLEX_TIMEOUT_S = 900.0


def adaptive_timeout(latencies: Iterable[float], setting: float) -> float:
    """A per-request timeout from recent answer times: past what a real answer would take, short of minutes.

    Answer times are skewed (most fast, a few several times slower), so they are fitted as a lognormal and
    the timeout put where about one answer in a million would be cut off: exp(mean + 4.75 sd) of their
    logs. A tight spread (every answer ~0.5 s) would put that barely past the typical answer, so it is
    never under twice the slowest recent answer, nor under a second.
    """
    values = [max(x, 1e-3) for x in latencies]
    logs = [math.log(x) for x in values]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs))
    fitted = math.exp(min(mean + ADAPTIVE_Z * sd, 20.0))  # exp() of a wild fit must not overflow
    return min(setting, max(ADAPTIVE_FLOOR_S, ADAPTIVE_MAX_MULTIPLE * max(values), fitted))


class Timeouts:
    """Answer times seen on a run, and the timeout each request gets. Thread-safe."""

    def __init__(self, setting_s: float) -> None:
        self.setting_s = setting_s
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=256)
        self._samples = 0
        self._cached: tuple[int, float] | None = None
        self._timed_out: dict[
            Hashable, int
        ] = {}  # per unit that timed out: how often (each doubles the next)

    def answered(self, latency_s: float) -> None:
        with self._lock:
            self._latencies.append(latency_s)
            self._samples += 1

    def timed_out(self, key: Hashable) -> None:
        with self._lock:
            self._timed_out[key] = self._timed_out.get(key, 0) + 1

    def forget(self, key: Hashable) -> None:
        """The unit is done: its doubling is no longer needed."""
        if self._timed_out:
            with self._lock:
                self._timed_out.pop(key, None)

    def for_request(self, key: Hashable, tier: str) -> float:
        """The timeout for one request of this unit at this service tier."""
        if tier == "flex":
            return max(self.setting_s, FLEX_TIMEOUT_S)  # flex queues requests for minutes
        with self._lock:
            base = self._base()
            times = self._timed_out.get(key, 0)
        return min(self.setting_s, base * 2**times) if times else base

    def _base(self) -> float:
        n = len(self._latencies)
        if n == 0:
            return self.setting_s
        if n < ADAPTIVE_MIN_SAMPLES:
            value = max(ADAPTIVE_FIRST_FLOOR_S, ADAPTIVE_FIRST_MULTIPLE * max(self._latencies))
            return min(self.setting_s, value)
        bucket = self._samples // 25  # recompute every 25 answers
        if self._cached is None or self._cached[0] != bucket:
            self._cached = (bucket, adaptive_timeout(self._latencies, self.setting_s))
        return self._cached[1]
