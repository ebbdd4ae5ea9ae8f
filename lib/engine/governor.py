"""Shared pacing for every run on one API key: to the limits the server reports, and to its 429s.

OpenAI enforces RPM and TPM over short windows (a 3,000 RPM limit is about 50 requests each second),
and charges a request against TPM at admission as its prompt tokens plus max_tokens. So we space
requests evenly (GCRA: a theoretical arrival time per limit) at a little under the limit, with a small
burst tolerance, instead of sending as fast as workers free up. A 429 puts the whole key into a
cool-down for its `retry-after`, and repeated 429s while pacing lower the rate (the key is shared with
someone else, or the limit is lower than reported); the rate creeps back while no 429s come.
With no usable headers (missing, 0 or -1, as some compatible servers send), pacing falls back to
cool-downs with exponential backoff, and to a rate learned from what got through before the 429s.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

SAFETY = 0.99  # pace this far under the reported limit
BURST_SECONDS = 0.5  # tolerance: how far ahead of the even schedule a request may go
MIN_FACTOR = 0.3
DECREASE = 0.85  # rate factor after a 429 while pacing
DECREASE_EVERY_S = 2.0  # at most one decrease per this many seconds (one 429 episode)
RECOVER_PER_S = 0.03  # the factor climbs back this much per quiet second
MAX_BACKOFF_S = 30.0
MAX_COOLDOWN_S = 60.0
# A 429 is a signal about the key only when it is a real share of recent answers: a server that sheds the
# odd request (2% at random) must not stall every worker. Below this share only the refused row waits.
SIGNAL_WINDOW_S = 3.0
SIGNAL_SHARE = 0.05
SIGNAL_MIN_429 = 3
SIGNAL_MIN_ANSWERS = 20  # a share of fewer answers means little, unless the 429s come back to back
# The same for server errors (5xx, dropped connections, timeouts): the odd one is retried at once by the
# next free worker; only when they are a real share of answers (an outage) do failed rows back off.
ERROR_SHARE = 0.2
ERROR_JITTER_S = 0.05
# Slow start: until a key's first answer shows its limits, only a few probe requests go out, so 200
# workers do not open with a burst that a per-second limit turns into a wall of 429s.
PROBE_REQUESTS = 4
PROBE_MAX_WAIT_S = 15.0

_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$"
)


def parse_reset(value: str | None) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "20ms", "1m30.5s") in seconds; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        return None
    h, mins, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s + ms / 1000


# Gateways pass the upstream's headers on under a prefix (LiteLLM: `llm_provider-retry-after`,
# `llm_provider-x-ratelimit-*`) and may add their own unprefixed ones: the unprefixed name wins (it is the
# hop we talk to), the prefixed one fills in what it lacks (LiteLLM drops `reset` and `retry-after`).
HEADER_PREFIXES = ("", "llm_provider-")


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A response header by its OpenAI name, or as a known gateway renamed it; None when absent or empty."""
    if not headers:
        return None
    for prefix in HEADER_PREFIXES:
        value = headers.get(prefix + name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _http_date_wait(value: str) -> float | None:
    """`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (RFC 9110 allows a date) as seconds from now."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait from retry-after-ms / retry-after (seconds or a date), if it sent one."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = header(headers, name)
        if raw:
            try:
                value = float(raw) * scale
            except ValueError:
                value = _http_date_wait(raw) if scale == 1.0 else None
                if value is None:
                    continue
            if value >= 0:
                return value
    return None


def _positive_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        value = int(float(header(headers, name) or ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _exhausted(headers: Mapping[str, str], name: str) -> bool:
    """A remaining-* header at zero or below (LiteLLM's own limiter counts on into negative numbers)."""
    try:
        return float(header(headers, name) or "nan") <= 0
    except ValueError:
        return False


@dataclass(frozen=True)
class GovernorState:
    rpm_limit: int | None  # the tighter of the server's header and the user's ceiling
    tpm_limit: int | None
    factor: float
    requests_per_s: float | None  # the pace now in force (None: unpaced)
    cooling_down_s: float
    rate_limited: int  # 429s seen on this key
    next_admission_s: float = 0.0  # until the next request may go (cool-down or the paced schedule)


class Governor:
    """Admission control shared by every worker of every run on one key."""

    def __init__(self, *, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._header_rpm: int | None = None
        self._header_tpm: int | None = None
        self._ceiling_rpm: int | None = None
        self._ceiling_tpm: int | None = None
        self._learned_rps: float | None = None
        self._factor = 1.0
        self._tat_req = 0.0  # theoretical arrival time of the next request
        self._tat_tok = 0.0
        self._cooldown_until = 0.0
        self._last_decrease = -1e9
        self._last_429 = -1e9
        self._last_recover = 0.0
        self._consecutive_429 = 0
        self._rate_limited = 0
        self._admitted: deque[float] = deque(maxlen=2048)
        self._outcomes: deque[tuple[float, str]] = deque(maxlen=8192)  # (time, "ok" | "429" | "error")
        self._consecutive_errors = 0
        self._calibrated = False
        self._probes = 0
        self._first_probe: float | None = None

    # --- configuration ----------------------------------------------------------------------------

    def set_ceilings(self, rpm: int | None, tpm: int | None) -> None:
        """The user's optional RPM/TPM caps for this key (the tighter of these and the server's apply)."""
        with self._lock:
            self._ceiling_rpm = rpm if rpm and rpm > 0 else None
            self._ceiling_tpm = tpm if tpm and tpm > 0 else None

    def _limits(self) -> tuple[int | None, int | None]:
        def tighter(a: int | None, b: int | None) -> int | None:
            return min(x for x in (a, b) if x) if (a or b) else None

        return tighter(self._header_rpm, self._ceiling_rpm), tighter(self._header_tpm, self._ceiling_tpm)

    def _recover(self, now: float) -> None:
        """Climb back towards the full rate while no 429 comes (called at every admission)."""
        step = now - self._last_recover
        self._last_recover = now
        quiet = now - self._last_429
        if quiet <= 1.0:
            return
        if self._factor < 1.0:
            self._factor = min(1.0, self._factor + RECOVER_PER_S * step)
        if self._learned_rps is not None:
            # A learned rate is only a guess: grow it, and forget it after a long quiet spell.
            self._learned_rps *= 1 + RECOVER_PER_S * step
            if quiet > 30.0:
                self._learned_rps = None

    # --- admission --------------------------------------------------------------------------------

    def _probe_slot(self, stop: threading.Event | None) -> bool | None:
        """Before the key's first answer: True for a probe slot, None once calibrated, False if stopped."""
        while True:
            with self._lock:
                now = self._clock()
                if self._first_probe is not None and now - self._first_probe > PROBE_MAX_WAIT_S:
                    self._calibrated = True  # no answer for long (hangs): stop waiting on the probes
                if self._calibrated:
                    return None
                if self._probes < PROBE_REQUESTS:
                    self._probes += 1
                    self._first_probe = self._first_probe or now
                    self._admitted.append(now)
                    return True
            if stop is not None:
                if stop.wait(0.01):
                    return False
            else:
                time.sleep(0.01)

    def acquire(self, tokens: int, stop: threading.Event | None = None) -> bool:
        """Block until one request of `tokens` (prompt + max output) may be sent; False if `stop` was set."""
        if not self._calibrated:
            probe = self._probe_slot(stop)
            if probe is not None:
                return probe
        while True:
            with self._lock:
                now = self._clock()
                self._recover(now)
                rpm, tpm = self._limits()
                rps = rpm / 60 * SAFETY * self._factor if rpm else self._learned_rps
                tps = tpm / 60 * SAFETY * self._factor if tpm else None
                slot = max(now, self._cooldown_until)
                if rps:
                    slot = max(slot, self._tat_req - BURST_SECONDS)
                if tps:
                    slot = max(slot, self._tat_tok - BURST_SECONDS)
                if rps:
                    self._tat_req = max(self._tat_req, slot) + 1.0 / rps
                if tps:
                    self._tat_tok = max(self._tat_tok, slot) + max(tokens, 1) / tps
                wait = slot - now
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        return False
                else:
                    time.sleep(wait)
            elif stop is not None and stop.is_set():
                return False
            with self._lock:
                now = self._clock()
                if self._cooldown_until <= now + 1e-3:
                    self._admitted.append(now)
                    return True
            # A 429 arrived while we slept: queue again behind the cool-down.

    # --- feedback ---------------------------------------------------------------------------------

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Learn limits from a response's x-ratelimit-* headers (any answer, even one without headers)."""
        self._calibrated = True
        if not headers:
            return
        rpm = _positive_int(headers, "x-ratelimit-limit-requests")
        tpm = _positive_int(headers, "x-ratelimit-limit-tokens")
        with self._lock:
            if rpm:
                self._header_rpm = rpm
            if tpm:
                self._header_tpm = tpm
            for kind in ("requests", "tokens"):
                if _exhausted(headers, f"x-ratelimit-remaining-{kind}"):
                    reset = parse_reset(header(headers, f"x-ratelimit-reset-{kind}"))
                    if reset:
                        self._cooldown_until = max(
                            self._cooldown_until, self._clock() + min(reset, MAX_COOLDOWN_S)
                        )

    def succeeded(self) -> None:
        """A request got through (any answer but a 429 or a server error)."""
        with self._lock:
            self._consecutive_429 = 0
            self._consecutive_errors = 0
            self._outcomes.append((self._clock(), "ok"))

    def _is_biting(self, now: float, kind: str, share: float, consecutive: int) -> bool:
        """Whether recent outcomes of `kind` are a real share of answers (a limit, an outage), not noise."""
        while self._outcomes and now - self._outcomes[0][0] > SIGNAL_WINDOW_S:
            self._outcomes.popleft()
        count = sum(1 for _, k in self._outcomes if k == kind)
        enough = len(self._outcomes) >= SIGNAL_MIN_ANSWERS or consecutive >= SIGNAL_MIN_429
        return enough and count >= SIGNAL_MIN_429 and count >= share * len(self._outcomes)

    def _limit_is_biting(self, now: float) -> bool:
        return self._is_biting(now, "429", SIGNAL_SHARE, self._consecutive_429)

    def server_error(self, attempt: int) -> float:
        """Register a 5xx, dropped connection or timeout; returns how long the failed row should wait.

        A lone error among answers is a glitch of that one request: retried at once (a little jitter).
        When errors are a real share of recent answers the server is struggling, and the row backs off
        exponentially (0.5 s doubling to 8 s, jittered) so the run does not hammer it.
        """
        with self._lock:
            now = self._clock()
            self._consecutive_errors += 1
            self._consecutive_429 = 0  # an answer, if a bad one: the key is not being refused
            self._outcomes.append((now, "error"))
            if not self._is_biting(now, "error", ERROR_SHARE, self._consecutive_errors):
                return random.uniform(0.0, ERROR_JITTER_S)
        return min(8.0, 0.5 * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)

    def rate_limited(self, headers: Mapping[str, str] | None) -> float:
        """Register a 429 rate_limit_exceeded; returns how long the refused row must wait.

        When 429s are a real share of recent answers the whole key cools down and the pace drops;
        a lone 429 in a stream of answers only holds back the row it refused.
        """
        self.observe(headers)
        wait = retry_after_seconds(headers)
        with self._lock:
            now = self._clock()
            self._rate_limited += 1
            self._consecutive_429 += 1
            self._outcomes.append((now, "429"))
            if not self._limit_is_biting(now):
                return min(
                    wait if wait is not None else 0.5 * 2 ** min(self._consecutive_429 - 1, 6), MAX_COOLDOWN_S
                )
            self._last_429 = now
            rpm, tpm = self._limits()
            if wait is None:
                reset = [
                    parse_reset(header(headers, f"x-ratelimit-reset-{k}")) for k in ("requests", "tokens")
                ]
                reset = [r for r in reset if r]
                wait = min(reset) if reset else min(MAX_BACKOFF_S, 0.5 * 2 ** (self._consecutive_429 - 1))
            wait = min(wait, MAX_COOLDOWN_S)
            if now - self._last_decrease >= DECREASE_EVERY_S:
                if rpm or tpm:
                    self._factor = max(MIN_FACTOR, self._factor * DECREASE)
                else:
                    self._learned_rps = self._learn_rate(now)
                self._last_decrease = now
            self._cooldown_until = max(self._cooldown_until, now + wait)
            # Requests already scheduled queue up behind the cool-down, evenly again.
            self._tat_req = max(self._tat_req, self._cooldown_until)
            self._tat_tok = max(self._tat_tok, self._cooldown_until)
            return wait

    def _learn_rate(self, now: float) -> float | None:
        """Without limits from headers: pace at a little under what got through in the last few seconds."""
        window = [t for t in self._admitted if now - t <= 5.0]
        if len(window) < 10:
            return self._learned_rps * DECREASE if self._learned_rps else None
        observed = len(window) / max(now - window[0], 0.5)
        if self._learned_rps:
            observed = min(observed, self._learned_rps)
        return max(observed * DECREASE, 0.5)

    def state(self) -> GovernorState:
        with self._lock:
            now = self._clock()
            rpm, tpm = self._limits()
            rps = rpm / 60 * SAFETY * self._factor if rpm else self._learned_rps
            slot = max(self._cooldown_until, self._tat_req - BURST_SECONDS if rps else 0.0)
            return GovernorState(
                rpm,
                tpm,
                self._factor,
                rps,
                max(0.0, self._cooldown_until - now),
                self._rate_limited,
                max(0.0, slot - now),
            )


_registry: dict[str, Governor] = {}
_registry_lock = threading.Lock()


def key_fingerprint(base_url: str | None, api_key: str) -> str:
    """A non-reversible name for (endpoint, key): runs on the same key share one governor."""
    return hashlib.sha256(f"{base_url or ''}\0{api_key}".encode()).hexdigest()[:16]


def governor_for(fingerprint: str) -> Governor:
    """The process-wide governor of one key, shared by every run and browser session on it."""
    with _registry_lock:
        gov = _registry.get(fingerprint)
        if gov is None:
            gov = _registry[fingerprint] = Governor()
        return gov
