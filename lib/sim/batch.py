"""The simulator's Files and Batch APIs: upload JSONL, create a batch, watch it progress, download results.

A batch serves one endpoint, /v1/chat/completions or /v1/responses, and every line must name it. A batch moves validating -> in_progress -> finalizing -> completed on event-loop timers (durations from
SimConfig, fast in tests). Each line is answered by its endpoint's own logic (`SimApp._validated_chat` and
`_answer`, or lib.sim.responses' `validated` and `answer`), so a batch line gets exactly the reply and usage
the live endpoint would give, [[sim:...]] directives included, and is billed in the ledger with
`batch: true` (web search calls at their full price: the discount is on tokens). Batch-only knobs: `[[sim:batch_error]]`
or `p_batch_line_error` make a line fail, `batch_expire_after` makes every batch expire after that many
lines (the rest land in the error file as `batch_expired`). Output lines are shuffled with the seed, as the
real API promises no order. Files and batches belong to the key that made them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from lib.sim.app import SimApp, _Ctx, _dumps, _Reject, error_body
from lib.sim.http11 import Reply, Request

MAX_LINES = 50_000
TICK_S = 0.02  # how often an in-progress batch answers its next slice of lines
MAX_SLICE = 400  # lines per tick at most, so the event loop keeps serving other requests
WINDOW_S = 24 * 3600
ENDPOINT = "/v1/chat/completions"
RESPONSES_ENDPOINT = "/v1/responses"
ENDPOINTS = (ENDPOINT, RESPONSES_ENDPOINT)
_FILE_RE = re.compile(r"^/v1/files/([^/]+)(/content)?$")
_BATCH_RE = re.compile(r"^/v1/batches/([^/]+)(/cancel)?$")
_ROW_RE = re.compile(r"^row-(\d+)$")


@dataclass
class SimFile:
    id: str
    owner: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def public(self) -> dict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.created_at + 30 * 86400 if self.purpose.startswith("batch") else None,
            "status_details": None,
        }


@dataclass
class SimBatch:
    id: str
    owner: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: int
    seq: int  # creation order (created_at has one-second resolution)
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, finalizing_at, ...
    lines: list[dict] = field(default_factory=list)
    done: int = 0
    completed: int = 0
    failed: int = 0
    outputs: list[bytes] = field(default_factory=list)
    errors_out: list[bytes] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict] | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "output": 0, "cached": 0, "reasoning": 0}
    )
    seed_text: str = ""
    endpoint: str = ENDPOINT

    def public(self) -> dict:
        u = self.usage
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress_at"),
            "expires_at": self.created_at + WINDOW_S,
            "finalizing_at": self.times.get("finalizing_at"),
            "completed_at": self.times.get("completed_at"),
            "failed_at": self.times.get("failed_at"),
            "expired_at": self.times.get("expired_at"),
            "cancelling_at": self.times.get("cancelling_at"),
            "cancelled_at": self.times.get("cancelled_at"),
            "request_counts": {"total": len(self.lines), "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
            "usage": {
                "input_tokens": u["input"],
                "input_tokens_details": {"cached_tokens": u["cached"]},
                "output_tokens": u["output"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
                "total_tokens": u["input"] + u["output"],
            },
        }


class SimBatches:
    """Files and batches of one SimApp state generation (a reset makes a new one; old timers then stop)."""

    def __init__(self, app: SimApp) -> None:
        self.app = app
        self.files: dict[str, SimFile] = {}
        self.batches: dict[str, SimBatch] = {}
        self._seq = 0

    # ----- routing -----------------------------------------------------------------------------------------

    def route(self, request: Request) -> Callable[[_Ctx], Reply] | None:
        """The handler for a /v1/files or /v1/batches request, or None (not ours)."""
        method, path = request.method, request.path.rstrip("/")
        if path == "/v1/files":
            return {"POST": self._upload, "GET": self._list_files}.get(method)
        if path == "/v1/batches":
            return {"POST": self._create, "GET": self._list_batches}.get(method)
        match = _FILE_RE.match(path)
        if match:
            file_id, content = match.groups()
            if content:
                return (lambda ctx: self._content(ctx, file_id)) if method == "GET" else None
            if method == "GET":
                return lambda ctx: self._file(ctx, file_id)
            return (lambda ctx: self._delete(ctx, file_id)) if method == "DELETE" else None
        match = _BATCH_RE.match(path)
        if match:
            batch_id, cancel = match.groups()
            if cancel:
                return (lambda ctx: self._cancel(ctx, batch_id)) if method == "POST" else None
            return (lambda ctx: self._retrieve(ctx, batch_id)) if method == "GET" else None
        return None

    def _alive(self) -> bool:
        return self.app.batch_api is self

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{self.app._next_id()}"

    def _ok(self, ctx: _Ctx, obj: Any) -> Reply:
        self.app._by_kind["batch_api"] += 1
        return Reply(200, _dumps(obj), self.app._headers(ctx))

    def _bad(self, ctx: _Ctx, status: int, message: str, param: str | None = None) -> _Reject:
        return _Reject(self.app._error(ctx, status, message, "invalid_request_error", param))

    # ----- files -------------------------------------------------------------------------------------------

    def _upload(self, ctx: _Ctx) -> Reply:
        fields = parse_multipart(ctx.request.body, ctx.request.headers.get("content-type", ""))
        if fields is None:
            raise self._bad(ctx, 400, "Expected a multipart/form-data body with 'file' and 'purpose'.")
        upload = fields.get("file")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if upload is None or upload[0] is None:
            raise self._bad(ctx, 400, "Missing required parameter: 'file'.", "file")
        if purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data", "evals"):
            raise self._bad(ctx, 400, f"Invalid value for 'purpose': {purpose!r}.", "purpose")
        file = SimFile(
            self._next_id("file-"), ctx.key_hash or "", upload[0], purpose, upload[1], int(time.time())
        )
        self.files[file.id] = file
        return self._ok(ctx, file.public())

    def _own_file(self, ctx: _Ctx, file_id: str) -> SimFile:
        file = self.files.get(file_id)
        if file is None or file.owner != ctx.key_hash:
            raise _Reject(
                self.app._error(ctx, 404, f"No such File object: {file_id}", "invalid_request_error", "id")
            )
        return file

    def _file(self, ctx: _Ctx, file_id: str) -> Reply:
        return self._ok(ctx, self._own_file(ctx, file_id).public())

    def _content(self, ctx: _Ctx, file_id: str) -> Reply:
        file = self._own_file(ctx, file_id)
        self.app._by_kind["batch_api"] += 1
        return Reply(200, file.data, self.app._headers(ctx), "application/octet-stream")

    def _delete(self, ctx: _Ctx, file_id: str) -> Reply:
        self._own_file(ctx, file_id)
        del self.files[file_id]
        return self._ok(ctx, {"id": file_id, "object": "file", "deleted": True})

    def _list_files(self, ctx: _Ctx) -> Reply:
        query = _query(ctx.request)
        purpose = query.get("purpose")
        files = [f for f in self.files.values() if f.owner == ctx.key_hash and purpose in (None, f.purpose)]
        if query.get("order", "desc") == "desc":
            files.reverse()
        return self._ok(
            ctx, _page(ctx, self, [f.public() for f in files], query, default=10_000, most=10_000)
        )

    # ----- batches -----------------------------------------------------------------------------------------

    def _create(self, ctx: _Ctx) -> Reply:
        try:
            body = json.loads(ctx.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._bad(ctx, 400, "We could not parse the JSON body of your request.")
        if body.get("endpoint") not in ENDPOINTS:
            raise self._bad(
                ctx, 400, f"The simulator batches only {ENDPOINT} and {RESPONSES_ENDPOINT}.", "endpoint"
            )
        if body.get("completion_window") != "24h":
            raise self._bad(
                ctx, 400, "Invalid 'completion_window': only '24h' is supported.", "completion_window"
            )
        metadata = body.get("metadata")
        if metadata is not None and not _valid_metadata(metadata):
            raise self._bad(
                ctx, 400, "Invalid 'metadata': at most 16 string pairs (keys 64, values 512).", "metadata"
            )
        file = self._own_file(ctx, str(body.get("input_file_id")))
        if file.purpose != "batch":
            raise self._bad(
                ctx, 400, "The input file must be uploaded with purpose 'batch'.", "input_file_id"
            )
        self._seq += 1
        batch = SimBatch(
            self._next_id("batch_"),
            ctx.key_hash or "",
            file.id,
            metadata,
            int(time.time()),
            self._seq,
            endpoint=body["endpoint"],
        )
        batch.seed_text = f"{self.app.config.seed}:{hashlib.sha256(file.data).hexdigest()}"
        self.batches[batch.id] = batch
        self._later(self.app.config.batch_validating_s, self._validate, batch, file.data)
        return self._ok(ctx, batch.public())

    def _own_batch(self, ctx: _Ctx, batch_id: str) -> SimBatch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.owner != ctx.key_hash:
            raise _Reject(
                self.app._error(ctx, 404, f"No batch found with id '{batch_id}'.", "invalid_request_error")
            )
        return batch

    def _retrieve(self, ctx: _Ctx, batch_id: str) -> Reply:
        return self._ok(ctx, self._own_batch(ctx, batch_id).public())

    def _list_batches(self, ctx: _Ctx) -> Reply:
        mine = sorted((b for b in self.batches.values() if b.owner == ctx.key_hash), key=lambda b: -b.seq)
        return self._ok(
            ctx, _page(ctx, self, [b.public() for b in mine], _query(ctx.request), default=20, most=100)
        )

    def _cancel(self, ctx: _Ctx, batch_id: str) -> Reply:
        batch = self._own_batch(ctx, batch_id)
        if batch.status in ("validating", "in_progress"):
            batch.status = "cancelling"
            batch.times["cancelling_at"] = int(time.time())
        elif batch.status != "cancelling":
            raise self._bad(ctx, 400, f"Cannot cancel a batch with status '{batch.status}'.")
        return self._ok(ctx, batch.public())

    # ----- the batch's life --------------------------------------------------------------------------------

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            if self._alive():  # a reset replaced this state: its batches stop
                fn(*args)

        asyncio.get_running_loop().call_later(max(0.0, delay), run)

    def _validate(self, batch: SimBatch, data: bytes) -> None:
        if batch.status == "cancelling":
            self._finish(batch, "cancelled")
            return
        lines, problems = parse_input(data, batch.endpoint)
        if problems:
            batch.status, batch.errors = "failed", problems
            batch.times["failed_at"] = int(time.time())
            return
        batch.lines = lines
        batch.status = "in_progress"
        batch.times["in_progress_at"] = int(time.time())
        self._later(0.0, self._work, batch)

    def _work(self, batch: SimBatch) -> None:
        cfg = self.app.config
        if batch.status == "cancelling":
            self._later(cfg.batch_finalizing_s, self._finish, batch, "cancelled")
            return
        n = len(batch.lines)
        ticks = max(1.0, cfg.batch_in_progress_s / TICK_S)
        per_tick = max(1, min(MAX_SLICE, math.ceil(n / ticks)))
        stop = min(n, batch.done + per_tick)
        if cfg.batch_expire_after is not None:
            stop = min(stop, cfg.batch_expire_after)
        for line in batch.lines[batch.done : stop]:
            self._answer_line(batch, line)
        batch.done = stop
        if cfg.batch_expire_after is not None and batch.done >= cfg.batch_expire_after and batch.done < n:
            self._finish(batch, "expired")
        elif batch.done >= n:
            batch.status = "finalizing"
            batch.times["finalizing_at"] = int(time.time())
            self._later(cfg.batch_finalizing_s, self._finish, batch, "completed")
        else:
            self._later(TICK_S if cfg.batch_in_progress_s > 0 else 0.0, self._work, batch)

    def _answer_line(self, batch: SimBatch, line: dict) -> None:
        """One request of the batch, answered by its endpoint's logic; billed when it succeeds."""
        from lib.sim import responses  # here, not at the top: it builds on lib.sim.app too

        app = self.app
        custom_id = line["custom_id"]
        request_id = f"req_{app._next_id()}"
        row = _ROW_RE.match(custom_id)
        headers = {"x-row-id": row.group(1) if row else custom_id}
        request = Request("POST", batch.endpoint, "", headers, _dumps(line["body"]), "127.0.0.1")
        ctx = _Ctx(request, request_id, time.monotonic(), app._keys.get(batch.owner), batch.owner)
        if ctx.state is None:  # the key's state was forgotten: make it anew
            ctx.state = app._keys.setdefault(batch.owner, _new_state(app))
        rng = random.Random(f"{batch.seed_text}:{custom_id}")
        try:
            if batch.endpoint == RESPONSES_ENDPOINT:
                req = responses.validated(app, ctx)
                marks = req.marks

                def run() -> Reply:
                    return responses.answer(app, ctx, req, 0.0, malformed=False, batch=True)
            else:
                body, prompt, max_out, marks = app._validated_chat(ctx)

                def run() -> Reply:
                    return app._answer(ctx, body, prompt, max_out, marks, 0.0, malformed=False, batch=True)

            if "batch_error" in marks or rng.random() < app.config.p_batch_line_error:
                status, payload = (
                    500,
                    json.loads(
                        error_body("The server had an error processing this request.", "server_error")
                    ),
                )
            else:
                reply = run()
                if reply.on_due is not None:
                    reply.on_due()  # billed now: the ledger entry carries batch=true and the row id
                status, payload = 200, json.loads(reply.body)
                _add_usage(batch.usage, payload["usage"])
        except _Reject as rejected:
            status, payload = rejected.reply.status, json.loads(rejected.reply.body)
        out = {
            "id": f"batch_req_{app._next_id()}",
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": payload},
            "error": None,
        }
        if status == 200:
            batch.completed += 1
            batch.outputs.append(_dumps(out))
        else:
            batch.failed += 1
            batch.errors_out.append(_dumps(out))

    def _finish(self, batch: SimBatch, status: str) -> None:
        """Terminal state: lines never run go to the error file; output and error files are written."""
        code, message = {
            "expired": (
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            ),
            "cancelled": (
                "batch_cancelled",
                "This request was not executed because the batch was cancelled.",
            ),
        }.get(status, (None, None))
        if code is not None:
            for line in batch.lines[batch.done :]:
                out = {
                    "id": f"batch_req_{self.app._next_id()}",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {"code": code, "message": message},
                }
                batch.errors_out.append(_dumps(out))
        rng = random.Random(batch.seed_text)
        for name, lines in (("output_file_id", batch.outputs), ("error_file_id", batch.errors_out)):
            if lines:
                rng.shuffle(lines)  # the real API returns lines in any order
                file = SimFile(
                    self._next_id("file-"),
                    batch.owner,
                    f"{batch.id}_{name.split('_')[0]}.jsonl",
                    "batch_output",
                    b"\n".join(lines) + b"\n",
                    int(time.time()),
                )
                self.files[file.id] = file
                setattr(batch, name, file.id)
        batch.outputs, batch.errors_out = [], []
        batch.status = status
        batch.times[f"{status}_at"] = int(time.time())


def _add_usage(total: dict[str, int], usage: dict) -> None:
    """A line's usage into the batch's totals, from either endpoint's shape."""
    if "input_tokens" in usage:  # a Response
        total["input"] += usage["input_tokens"]
        total["output"] += usage["output_tokens"]
        total["cached"] += usage["input_tokens_details"]["cached_tokens"]
        total["reasoning"] += usage["output_tokens_details"]["reasoning_tokens"]
    else:
        total["input"] += usage["prompt_tokens"]
        total["output"] += usage["completion_tokens"]
        total["cached"] += usage["prompt_tokens_details"]["cached_tokens"]
        total["reasoning"] += usage["completion_tokens_details"]["reasoning_tokens"]


def _new_state(app: SimApp):
    from lib.sim.app import KeyState

    return KeyState(app._new_limits(time.monotonic()))


def parse_input(data: bytes, endpoint: str = ENDPOINT) -> tuple[list[dict], list[dict] | None]:
    """The batch input file's request lines, or the validation errors that fail the batch."""
    lines: list[dict] = []
    problems: list[dict] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            problems.append(_problem("invalid_json_line", "This line is not a JSON request object.", number))
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            problems.append(
                _problem("invalid_url", f"Lines must be POST {endpoint}, the batch's endpoint.", number)
            )
        elif not isinstance(line.get("custom_id"), str) or line["custom_id"] in seen:
            problems.append(_problem("duplicate_custom_id", "custom_id must be a unique string.", number))
        else:
            seen.add(line["custom_id"])
            lines.append(line)
        if len(problems) >= 10:
            break
    if not problems and not lines:
        problems.append(_problem("empty_file", "The input file has no requests.", None))
    if len(lines) > MAX_LINES:
        problems.append(_problem("too_many_requests", f"A batch holds at most {MAX_LINES:,} requests.", None))
    return lines, problems or None


def _problem(code: str, message: str, line: int | None) -> dict:
    return {"code": code, "message": message, "param": None, "line": line}


def _valid_metadata(metadata: Any) -> bool:
    return (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        )
    )


def _query(request: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.query).items()}


def _page(
    ctx: _Ctx, api: SimBatches, items: list[dict], query: dict[str, str], *, default: int, most: int
) -> dict:
    """A cursor page as OpenAI lists do: `after` an id, `limit` items, `has_more`."""
    try:
        limit = min(most, max(1, int(query.get("limit", default))))
    except ValueError:
        raise api._bad(ctx, 400, "Invalid 'limit'.", "limit") from None
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]] | None:
    """multipart/form-data fields as {name: (filename or None, bytes)}; None if it is not such a body."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    boundary = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return None
    fields: dict[str, tuple[str | None, bytes]] = {}
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = ""
        for header in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        name_match = re.search(r'\bname="([^"]*)"', disposition)
        file_match = re.search(r'\bfilename="([^"]*)"', disposition)
        if name_match:
            fields[name_match.group(1)] = (file_match.group(1) if file_match else None, content)
    return fields
