"""The Batch API's JSONL files: request lines out (split into chunks under the limits), result lines in.

Pure functions, no I/O: `split` decides the chunks and their content hashes, `render` writes a chunk's
bytes (deterministically, so a restart re-renders the same bytes instead of storing them), and
`row_outcome` turns one output or error line into the row record the live engine would have journalled.
A run sent through the Responses API (its meta's `api`) writes its lines to /v1/responses (bodies spelt by
lib.engine.transports.responses) and its answers are read by that transport's `parse`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from lib.cost.pricing import Price, Usage
from lib.engine.judge import QualityCheck, cacheable, judge_answer
from lib.engine.outcome import unique_sources
from lib.engine.transports import responses as responses_api
from lib.engine.transports.chat import refusal_of
from lib.engine.unit import WorkItem
from lib.store import CachedResponse, RowRecord, Source

ENDPOINT = "/v1/chat/completions"
RESPONSES_ENDPOINT = responses_api.ENDPOINT  # a run sent through the Responses API: its lines go there
MAX_REQUESTS = 50_000  # OpenAI's limits per batch input file
MAX_BYTES = 200 * 1024 * 1024
_CUSTOM_ID = re.compile(r"^row-(\d+)$")
# Lines that did not run because the batch was cancelled: the row stays pending (a resume sends it again).
NOT_RUN_CODES = frozenset({"batch_cancelled"})


@dataclass(frozen=True)
class BatchLimits:
    """How big one batch may be; tests use tiny ones to force several batches."""

    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES


@dataclass(frozen=True)
class PreparedChunk:
    index: int
    row_ids: tuple[int, ...]
    sha256: str
    nbytes: int


def custom_id(row_id: int) -> str:
    return f"row-{row_id}"


def row_id_of(value: object) -> int | None:
    match = _CUSTOM_ID.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def endpoint_for(api: str | None) -> str:
    """The batch endpoint (and each line's url) of a run sent through `api` (its meta's `api`)."""
    return RESPONSES_ENDPOINT if api == "responses" else ENDPOINT


def request_line(item: WorkItem, url: str = ENDPOINT) -> bytes:
    """One line; the item's body as that endpoint takes it (lib.batch.job spells it for the Responses API)."""
    line = {"custom_id": custom_id(item.row_id), "method": "POST", "url": url, "body": item.body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def render(items: Sequence[WorkItem], url: str = ENDPOINT) -> bytes:
    """A chunk's input file: one request line per item, in the given order."""
    return b"".join(request_line(item, url) for item in items)


def split(
    items: Sequence[WorkItem], limits: BatchLimits, first_index: int = 0, url: str = ENDPOINT
) -> list[PreparedChunk]:
    """Cut items into chunks of at most max_requests lines and max_bytes bytes, hashing each as it goes."""
    chunks: list[PreparedChunk] = []
    ids: list[int] = []
    digest = hashlib.sha256()
    size = 0

    def close() -> None:
        nonlocal digest, size
        chunks.append(PreparedChunk(first_index + len(chunks), tuple(ids), digest.hexdigest(), size))
        ids.clear()
        digest, size = hashlib.sha256(), 0

    for item in items:
        line = request_line(item, url)
        if ids and (len(ids) >= limits.max_requests or size + len(line) > limits.max_bytes):
            close()
        ids.append(item.row_id)
        digest.update(line)
        size += len(line)
    if ids:
        close()
    return chunks


def result_lines(data: bytes) -> Iterator[dict]:
    """The JSON objects of an output or error file; unreadable lines are skipped (their rows stay unmatched)."""
    for raw in data.splitlines():
        if raw.strip():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def row_outcome(
    item: WorkItem,
    line: Mapping,
    price: Price | None,
    check_output: Callable[[str], str | None] | None,
    check_quality: QualityCheck | None = None,
) -> tuple[RowRecord | None, CachedResponse | None]:
    """One result line -> the row's record (None: it did not run, keep it pending) and the cacheable answer."""
    response = line.get("response") or None
    error = line.get("error") or None
    if response is None or response.get("status_code") != 200:
        if error is not None and error.get("code") in NOT_RUN_CODES:
            return None, None
        return _failed_line(item, response, error), None
    body = response.get("body") or {}
    if isinstance(body, Mapping) and body.get("object") == "response":  # a /v1/responses line
        try:
            parsed = responses_api.parse(body, "batch")
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            return failed(item, "The batch returned an unreadable answer for this row.", True), None
        row = answered(
            item,
            parsed.text,
            parsed.refusal,
            parsed.finish,
            parsed.usage,
            price,
            check_output,
            check_quality,
            unique_sources(c.source for c in parsed.citations),
        )
        cache = CachedResponse(
            item.request_hash, parsed.response_id, row.text, row.finish_reason, parsed.usage, row.sources
        )
        return row, cache if cacheable(row) else None
    try:
        choice = body["choices"][0]
        message = choice.get("message") or {}
        usage = Usage.from_api(body.get("usage"))
    except (KeyError, IndexError, TypeError, AttributeError):
        return failed(item, "The batch returned an unreadable answer for this row.", True), None
    row = answered(
        item,
        message.get("content"),
        refusal_of(message),
        choice.get("finish_reason"),
        usage,
        price,
        check_output,
        check_quality,
    )
    cache = CachedResponse(item.request_hash, body.get("id"), row.text, row.finish_reason, usage)
    return row, cache if cacheable(row) else None


def answered(
    item: WorkItem,
    text: str | None,
    refusal: str | None,
    finish: str | None,
    usage: Usage,
    price: Price | None,
    check_output: Callable[[str], str | None] | None,
    check_quality: QualityCheck | None = None,
    sources: Sequence[Source] = (),
) -> RowRecord:
    """An answer's record, judged as the live engine judges one, at the batch price."""
    return judge_answer(
        item,
        text=text,
        refusal=refusal,
        finish=finish,
        usage=usage,
        price=price,
        check_output=check_output,
        attempts=1,
        batch=True,
        tier="batch",
        check_quality=check_quality,
        sources=sources,
    )


def failed(item: WorkItem, message: str, retryable: bool) -> RowRecord:
    return RowRecord(
        item.row_id,
        status="failed",
        error=message,
        retryable=retryable,
        attempts=1,
        request_hash=item.request_hash,
    )


def _failed_line(item: WorkItem, response: Mapping | None, error: Mapping | None) -> RowRecord:
    """A line of the error file: the API's own reason, and whether sending it again may work."""
    if response is not None:
        status = int(response.get("status_code") or 0)
        detail = (
            ((response.get("body") or {}).get("error") or {})
            if isinstance(response.get("body"), dict)
            else {}
        )
        reason = detail.get("message") or f"HTTP {status}"
        code = detail.get("code")
        retryable = status >= 500 or status in (408, 409, 429)
        if code == "context_length_exceeded":
            reason = "The input is too long for the model's context window."
        return failed(item, f"Batch request failed ({status}): {reason}", retryable)
    code = (error or {}).get("code")
    if code == "batch_expired":
        return failed(item, "The batch expired (24-hour window) before this row ran; send it again.", True)
    message = (error or {}).get("message") or "no reason given"
    return failed(item, f"Batch request failed ({code or 'error'}): {message}", True)
