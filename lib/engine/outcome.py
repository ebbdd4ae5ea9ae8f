"""What one request came back as, typed: the transport's answer to the rest of the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from lib.cost.pricing import Usage
from lib.store.records import Source


class OutcomeKind(StrEnum):
    """What happened to a request (lib.engine.errors says which server answers are which)."""

    OK = "ok"  # an answer (judged per row: it may still be a refusal or cut short)
    RATE_LIMIT = "rate_limit"  # 429 rate_limit_exceeded: slow the whole key, retry the row
    CAPACITY = "capacity"  # flex had no capacity (429 Resource Unavailable): unbilled, back off
    QUOTA = "quota"  # billing: pause the run at once, never retry
    FATAL = "fatal"  # the same for every row (key, permission, model, a setting): stop the run
    ROW = "row"  # this row only (too long, filtered): no retry
    TRANSIENT = "transient"  # 5xx, timeouts, dropped connections, broken answers: retry, then fail retryable
    RESHAPED = "reshaped"  # the server refused a parameter and taught the request's shape: send again


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    text: str | None = None
    refusal: str | None = None
    finish: str | None = None
    usage: Usage | None = None
    message: str | None = None
    headers: Mapping[str, str] | None = None
    response_id: str | None = None
    unreachable: str | None = None  # refused | dns | tls | url: the endpoint is not there as configured
    tier: str | None = None  # the service tier the response says served it
    latency_s: float | None = None  # sent to parsed response, for an answer
    # The request reached the server and what it billed is unknown (the connection dropped or timed out
    # after the body was sent, or the answer was unreadable): the budget keeps its worst case as spent.
    maybe_billed: bool = False
    timed_out: bool = False
    status: int | None = None  # the HTTP status of an error answer
    error: tuple[str, str, str, str] | None = None  # (code, type, param, message) of an error answer
    # The answer's url_citation annotations (Responses API): where in `text` each one sits, and its page.
    citations: tuple[Citation, ...] = ()
    served_effort: str | None = None  # the reasoning effort the answer says it ran at (Responses API)

    @property
    def sources(self) -> tuple[Source, ...]:
        """The pages the whole answer cites, each once, in order."""
        return unique_sources(c.source for c in self.citations)


@dataclass(frozen=True, slots=True)
class Citation:
    start: int  # character offsets into the answer's text (code points, as the API counts them)
    end: int
    source: Source


def unique_sources(sources: Iterable[Source]) -> tuple[Source, ...]:
    """Each address once (the first citation of it), in the order cited."""
    seen: dict[str, Source] = {}
    for source in sources:
        seen.setdefault(source.url, source)
    return tuple(seen.values())
