"""Endpoint health: whether the endpoint, not the rows, is the problem, and why nothing moves.

While a phase's first answers come in (about one per worker), row errors are held back: if they are all
the same error, the endpoint or its settings are wrong (a gateway refusing every request, a bad setting),
and the run stops with every row pending instead of failing the whole list. Connection failures that say
nothing is there (refused, DNS, TLS) are counted in a row; the policy stops on enough of them. And since
when every answer has been a refusal or a failure is kept, for the page's "nothing moves" line and the
give-up-after setting. Used under the job's lock.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from lib.engine.outcome import Outcome, OutcomeKind

ENDPOINT_PROBE_MAX = 50  # with many workers, this many identical errors are enough


class EndpointHealth:
    def __init__(self) -> None:
        self.probe_threshold = 2
        self.probing = True
        self.held: list[tuple[Hashable, object, str, int]] = []  # (key, unit, message, attempts)
        self.down = False  # the run stopped for the endpoint: answers still in flight go back
        self.unreachable = 0
        self.ever_ok = False
        self.last_ok_at: float | None = None
        self.trouble_since: float | None = None
        self.trouble_kind: str | None = None  # "429" or "error"

    def new_phase(self, workers: int, todo: int) -> None:
        self.probe_threshold = max(2, min(workers, ENDPOINT_PROBE_MAX, todo))
        self.probing = True
        self.down = False
        self.unreachable = 0
        self.trouble_since = self.trouble_kind = None

    def answered(self) -> bool:
        """An answer came: the endpoint works. True when this ends the probe (flush what was held)."""
        self.ever_ok = True
        self.last_ok_at = time.monotonic()
        self.trouble_since = self.trouble_kind = None
        self.unreachable = 0
        opened, self.probing = self.probing, False
        return opened

    def failed(self, outcome: Outcome) -> None:
        """A request that did not answer: count what it says about the endpoint."""
        if outcome.unreachable:
            self.unreachable += 1
        elif outcome.kind is not OutcomeKind.TRANSIENT or outcome.headers is not None:
            self.unreachable = 0  # an answer, even a bad one: something is there
        if outcome.kind in (OutcomeKind.RATE_LIMIT, OutcomeKind.TRANSIENT):
            if self.trouble_since is None:
                self.trouble_since = time.monotonic()
            if self.trouble_kind != "429":  # a 429 among failures is the more useful thing to say
                self.trouble_kind = "429" if outcome.kind is OutcomeKind.RATE_LIMIT else "error"

    def quiet_s(self) -> float | None:
        return None if self.last_ok_at is None else time.monotonic() - self.last_ok_at

    def hold(self, key: Hashable, unit: object, message: str, attempts: int) -> str:
        """Hold a row error back during the probe: "held", "stop" (all the same and enough of them: the
        endpoint is the problem), "release" (they differ: fail the held rows as usual) or "fail" (the probe
        ended meanwhile: fail this row as usual)."""
        if not self.probing:
            return "fail"
        self.held.append((key, unit, message, attempts))
        if any(m != message for _, _, m, _ in self.held):
            self.probing = False
            return "release"
        if len(self.held) >= self.probe_threshold:
            self.probing = False
            return "stop"
        return "held"

    def take_held(self) -> list[tuple[Hashable, object, str, int]]:
        held, self.held = self.held, []
        return held
