"""Rate limits for the simulator, enforced as OpenAI does: per key, RPM and TPM, over short periods.

Each limit is a token bucket refilling continuously at limit/60 per second with a capacity of
`burst_seconds` worth, so a client that bursts a minute's quota in one second is refused even though it is
"under" the per-minute figure. The x-ratelimit-* headers report the bucket scaled to per-minute units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Reported when a limit is not configured: large enough that no client pacing to it is ever slowed.
NOMINAL_RPM = 1_000_000
NOMINAL_TPM = 1_000_000_000
HEADER_MODES = ("normal", "missing", "zero")


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: "0s", "20ms", "1s", "1.5s", "6m0s", "1h2m3s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{min(999, math.ceil(seconds * 1000))}ms"
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


class Bucket:
    """A continuously refilling bucket of `limit` per minute holding at most `burst_seconds` of it."""

    __slots__ = ("limit", "rate", "capacity", "level", "stamp")

    def __init__(self, limit: int, burst_seconds: float, now: float) -> None:
        self.limit = limit
        self.rate = limit / 60.0
        # Never below one unit, or a tiny limit (30 RPM, 1 s) could never admit anything.
        self.capacity = max(self.rate * burst_seconds, 1.0)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` can be admitted; a cost above capacity needs a full bucket (then runs into debt)."""
        return max(0.0, (min(cost, self.capacity) - self.level) / self.rate)

    def remaining(self) -> int:
        """Whole units admissible now, scaled to per-minute: 0 means the next request would be refused."""
        return max(0, int(math.floor(self.level) / self.capacity * self.limit))

    def reset_seconds(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(slots=True)
class Refusal:
    kind: str  # "requests" or "tokens"
    limit: int
    used: int
    requested: int
    wait: float  # seconds; math.inf when the request can never fit
    too_large: bool = False


class KeyLimits:
    """The RPM and TPM buckets of one API key (None where no limit is configured)."""

    __slots__ = ("requests", "tokens")

    def __init__(self, rpm: int | None, tpm: int | None, burst_seconds: float, now: float) -> None:
        self.requests = Bucket(rpm, burst_seconds, now) if rpm else None
        self.tokens = Bucket(tpm, burst_seconds, now) if tpm else None

    def admit(self, token_cost: int, now: float) -> Refusal | None:
        """Charge one request of `token_cost` tokens, or say why not (nothing is charged then)."""
        req, tok = self.requests, self.tokens
        if tok is not None and token_cost > tok.limit:
            return Refusal("tokens", tok.limit, 0, token_cost, math.inf, too_large=True)
        refusals = []
        if req is not None:
            req.refill(now)
            wait = req.wait_for(1)
            if wait > 0:
                refusals.append(Refusal("requests", req.limit, req.limit - req.remaining(), 1, wait))
        if tok is not None:
            tok.refill(now)
            wait = tok.wait_for(token_cost)
            if wait > 0:
                refusals.append(Refusal("tokens", tok.limit, tok.limit - tok.remaining(), token_cost, wait))
        if refusals:
            return max(refusals, key=lambda r: r.wait)
        if req is not None:
            req.level -= 1
        if tok is not None:
            tok.level -= token_cost
        return None

    def headers(self, mode: str, now: float) -> list[tuple[str, str]]:
        """The x-ratelimit-* headers in the configured mode ("normal", "missing", "zero")."""
        if mode == "missing":
            return []
        if mode == "zero":  # what some OpenAI-compatible servers send: nothing usable
            return [
                ("x-ratelimit-limit-requests", "-1"),
                ("x-ratelimit-limit-tokens", "-1"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-requests", "0s"),
                ("x-ratelimit-reset-tokens", "0s"),
            ]
        out = []
        for name, bucket, nominal in (
            ("requests", self.requests, NOMINAL_RPM),
            ("tokens", self.tokens, NOMINAL_TPM),
        ):
            if bucket is None:
                limit, remaining, reset = nominal, nominal, 0.0
            else:
                bucket.refill(now)
                limit, remaining, reset = bucket.limit, bucket.remaining(), bucket.reset_seconds()
            out.append((f"x-ratelimit-limit-{name}", str(limit)))
            out.append((f"x-ratelimit-remaining-{name}", str(remaining)))
            out.append((f"x-ratelimit-reset-{name}", format_duration(reset)))
        return out


def refusal_message(refusal: Refusal, model: str) -> str:
    """OpenAI's wording for a rate-limit 429."""
    unit = "requests per min (RPM)" if refusal.kind == "requests" else "tokens per min (TPM)"
    if refusal.too_large:
        return (
            f"Request too large for {model} in organization org-simulator on {unit}: Limit {refusal.limit}, "
            f"Requested {refusal.requested}. The input or output tokens must be reduced in order to run "
            "successfully. Visit https://platform.openai.com/account/rate-limits to learn more."
        )
    return (
        f"Rate limit reached for {model} in organization org-simulator on {unit}: Limit {refusal.limit}, "
        f"Used {refusal.used}, Requested {refusal.requested}. Please try again in {format_duration(refusal.wait)}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
