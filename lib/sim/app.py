"""The simulator's behaviour: configuration, routing, the chat endpoint with its faults and limits, ledger, stats.

`SimApp.handle` is synchronous and runs on the event loop thread; all state lives there. `_serve` (faults,
quota, flex capacity, rate limits, latency, the gate), `_content` (the row's answer) and `_deliver`
(billing) are shared by /v1/chat/completions and /v1/responses (lib.sim.responses).

One piece past 600 lines on purpose: every endpoint's behaviour reads and changes the same per-key state
(buckets, faults, ledger) on the event loop thread; the Batch API half lives in lib.sim.batch, the
Responses API's reading and answer shape in lib.sim.responses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lib.sim import replies
from lib.sim.http11 import HttpProtocol, Reply, Request
from lib.sim.limits import HEADER_MODES, KeyLimits, refusal_message
from lib.sim.models import (
    DEFAULT_MODELS,
    TIERS,
    ModelRules,
    base_name,
    check_request,
    effective_effort,
    is_shut_down,
    known_rules,
    model_not_found,
    model_object,
    parse_date,
    rules_from_spec,
)

FAULT_KINDS = ("401", "quota", "429", "500", "503", "drop", "hang", "malformed")
_SEEN_LIMIT = 500_000  # remembered request fingerprints / prompt prefixes before the memory is cleared
_FINGERPRINT = "fp_sim0001"
_CREATED = 1_715_000_000
_SNAPSHOT_RE = re.compile(r"^(.+)-\d{4}-\d{2}-\d{2}$")  # a dated snapshot is served when its base is


@dataclass
class SimConfig:
    latency_ms: float = 0.0
    latency_dist: str = "fixed"  # "fixed" or "lognormal" (latency_ms is then the median)
    latency_p99_ms: float | None = None  # lognormal only; default 3x the median
    rpm: int | None = None
    tpm: int | None = None
    burst_seconds: float = 1.0
    ratelimit_headers: str = "normal"  # "normal", "missing" or "zero"
    error_style: str = "openai"  # answer errors as "azure", "litellm", "vllm" or "ollama" would
    seed: int = 0
    p_500: float = 0.0
    p_503: float = 0.0
    p_429: float = 0.0
    p_quota: float = 0.0
    p_401: float = 0.0
    p_drop: float = 0.0
    p_hang: float = 0.0
    p_malformed: float = 0.0
    quota_after: int | None = None  # per key: after N answers, every request gets insufficient_quota
    fail_401_after: int | None = None  # per key: after N answers, every request gets 401
    hang_seconds: float = 3600.0
    # A dropped connection (p_drop) comes after the answer was made: the server bills it though the client
    # never reads it, as a real API bills an answer cut off on the way back (ledger kind "drop").
    drops_billed: bool = False
    context_window: int | None = None  # overrides every model's context window
    invalid_keys: tuple[str, ...] = ("sk-invalid",)  # prefixes of keys refused with 401
    # Models served (lib/sim/models.py has their rules; a name no rule knows is served as a plain chat model).
    # The shut-down ones stay listed so that they answer 404 model_not_found, as OpenAI's do.
    models: tuple[str, ...] = DEFAULT_MODELS
    # Rules for names no table knows (an Azure deployment, a gateway alias, a brand-new model), or changes to a
    # known model's: {name: {rule field: value}} with ModelRules' fields, e.g. {"acme-reasoner-2":
    # {"reasoning": true, "efforts": ["low", "medium", "high"]}}. Each name is served besides `models`.
    extra_models: dict[str, dict] = field(default_factory=dict)
    today: str | None = None  # "YYYY-MM-DD" for shutdown dates; None: the real UTC date
    list_models: bool = True  # False: GET /v1/models answers 404, as some OpenAI-compatible servers do
    # Batch API (lib.sim.batch): seconds in each phase, per-line error rate, expiry after N lines per batch.
    batch_validating_s: float = 0.2
    batch_in_progress_s: float = 2.0
    batch_finalizing_s: float = 0.2
    p_batch_line_error: float = 0.0
    batch_expire_after: int | None = None
    # Service tiers: which models take service_tier "flex" (None: each model's rules say; a list: exactly these
    # base names), and how often flex has no capacity (429, unbilled). "fast" follows the rules only.
    flex_models: tuple[str, ...] | None = None
    p_flex_unavailable: float = 0.0
    # Models that bill prompt-cache writes (a first-seen cacheable prefix is reported as cache_write_tokens):
    # None: each model's rules say (the gpt-6 family); a list: exactly these base names.
    cache_write_models: tuple[str, ...] | None = None
    # Packed requests (lib.prompts.packing): per item, how often the answer drops, repeats or mangles its id.
    p_pack_drop: float = 0.0
    p_pack_repeat: float = 0.0
    p_pack_mangle: float = 0.0
    # Answer defects (lib/sim/replies.py DEFECTS): this share of text answers breaks one quality rule.
    p_defect: float = 0.0
    defects: tuple[str, ...] = replies.DEFECTS
    # Answers that follow the prompt as well as the row (system message, examples, temperature), so a
    # changed rule changes the answers: the app's demo server, where a workbench compares prompt variants.
    prompt_sensitive: bool = False
    # A test's gate: answers are held, unsent and unbilled, until it is set back to "" / False (stats'
    # held_now counts them), so a run can be caught mid-way without a race with the clock. True holds every
    # chat answer; a text holds those whose last user message contains it.
    hold: str | bool = ""

    def __post_init__(self) -> None:
        self.invalid_keys = tuple(self.invalid_keys)
        self.models = tuple(self.models)
        if self.flex_models is not None:
            self.flex_models = tuple(self.flex_models)
        if self.cache_write_models is not None:
            self.cache_write_models = tuple(self.cache_write_models)
        if not isinstance(self.extra_models, dict):
            raise ValueError("extra_models must be an object of {model name: rule fields}")
        self.extra_models = {
            str(name): {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()}
            if isinstance(spec, dict)
            else spec
            for name, spec in self.extra_models.items()
        }
        self._extra_rules = {name: rules_from_spec(name, spec) for name, spec in self.extra_models.items()}
        self._served = frozenset(self.served())
        self._rules_memo: dict[str, ModelRules] = {}
        if self.today is not None:
            parse_date(self.today, "today")
        for name in ("p_flex_unavailable", "p_pack_drop", "p_pack_repeat", "p_pack_mangle"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        self.defects = tuple(self.defects)
        unknown = [d for d in self.defects if d not in replies.DEFECTS]
        if unknown or not 0.0 <= self.p_defect <= 1.0:
            raise ValueError(f"p_defect must be within [0, 1] and defects among {replies.DEFECTS}")
        if self.latency_dist not in ("fixed", "lognormal"):
            raise ValueError(f"latency_dist must be 'fixed' or 'lognormal', not {self.latency_dist!r}")
        if self.error_style not in ERROR_STYLES:
            raise ValueError(f"error_style must be one of {ERROR_STYLES}, not {self.error_style!r}")
        if self.ratelimit_headers not in HEADER_MODES:
            raise ValueError(
                f"ratelimit_headers must be one of {HEADER_MODES}, not {self.ratelimit_headers!r}"
            )
        for kind in FAULT_KINDS:
            p = getattr(self, f"p_{kind}")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"p_{kind} must be within [0, 1]")
        if self.burst_seconds <= 0:
            raise ValueError("burst_seconds must be positive")
        if not 0.0 <= self.p_batch_line_error <= 1.0:
            raise ValueError("p_batch_line_error must be within [0, 1]")

    def to_dict(self) -> dict:
        """Plain JSON values (lists, not tuples; copies, not the config's own dicts)."""
        return {
            f.name: json.loads(json.dumps(v)) if isinstance(v, dict | tuple) else v
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls, data: dict) -> SimConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**data)

    def updated(self, changes: dict) -> SimConfig:
        return SimConfig.from_dict({**self.to_dict(), **changes})

    def fault_probability(self) -> float:
        return sum(getattr(self, f"p_{kind}") for kind in FAULT_KINDS)

    def current_date(self) -> dt.date:
        """The day shutdown dates are judged against: `today`, else the real UTC date."""
        return parse_date(self.today, "today") if self.today else dt.datetime.now(dt.UTC).date()

    def served(self) -> tuple[str, ...]:
        """Every model name this server answers for (some of them with a 404, once shut down)."""
        return (*self.models, *(name for name in self.extra_models if name not in self.models))

    def rules(self, model: str) -> ModelRules:
        """The rules a request for `model` meets: extra_models, else lib/sim/models.py, else a plain chat model,
        with the flex_models / cache_write_models overrides applied."""
        rules = self._rules_memo.get(model)
        if rules is None:
            if len(self._rules_memo) > 10_000:
                self._rules_memo.clear()
            rules = self._rules_memo[model] = self._rules_of(model)
        return rules

    def _rules_of(self, model: str) -> ModelRules:
        rules = self._extra_rules.get(model) or self._extra_rules.get(base_name(model))
        if rules is None:
            rules = known_rules(model) or ModelRules()
        base = base_name(model)
        if self.flex_models is not None:
            rules = dataclasses.replace(rules, flex=base in self.flex_models or model in self.flex_models)
        if self.cache_write_models is not None:
            rules = dataclasses.replace(
                rules, cache_write=base in self.cache_write_models or model in self.cache_write_models
            )
        return rules


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


# Other servers' error shapes (tests/fixtures/error_bodies.py has the real bodies these imitate): what each
# keeps of OpenAI's message, type and code.
ERROR_STYLES = ("openai", "azure", "litellm", "vllm", "ollama")
_VLLM_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 429: "RateLimitError"}
_OLLAMA_TYPES = {400: "invalid_request_error", 404: "not_found_error"}
# Azure passes a model's parameter refusals through in OpenAI's own shape (dify#9746, lobehub#5909 quote them).
_AZURE_PASSTHROUGH = ("unsupported_parameter", "unsupported_value")
# LiteLLM proxy 1.106.4 wrapping an upstream's error (captured on loopback in front of this simulator).
_LITELLM_PREFIX = {
    400: "litellm.BadRequestError: OpenAIException - ",
    404: "litellm.NotFoundError: OpenAIException - ",
    429: "litellm.RateLimitError: RateLimitError: OpenAIException - ",
}


def styled_error_body(
    style: str,
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    model: str | None = None,
) -> bytes:
    """An error body as `style`'s server would send it (`model`: the request's, which LiteLLM names)."""
    if style == "azure":  # Azure keeps the few codes it has of its own (content_filter, context_length...)
        if code in _AZURE_PASSTHROUGH:
            return error_body(message, type_, param, code)
        keep = code if code in ("content_filter", "context_length_exceeded", "DeploymentNotFound") else None
        return _dumps({"error": {"code": keep or str(status), "message": message}})
    if style == "litellm":  # every code becomes the status, 429s a throttling_error; the words and param stay
        etype = (
            "throttling_error" if status == 429 else "invalid_request_error" if status < 500 else "api_error"
        )
        text = _LITELLM_PREFIX.get(status, "") + message
        if model is not None and status in _LITELLM_PREFIX:
            text += (
                f"\n\nLiteLLM: model group '{model}' failed with the error above. No fallback was attempted."
            )
        return _dumps({"error": {"message": text, "type": etype, "param": param, "code": str(status)}})
    if style == "vllm":  # ErrorResponse at the top level, the code a number
        etype = _VLLM_TYPES.get(status, "InternalServerError")
        return _dumps({"object": "error", "message": message, "type": etype, "param": param, "code": status})
    if style == "ollama":  # /v1: a type from the status, never a code or a param
        etype = _OLLAMA_TYPES.get(status, "api_error")
        return _dumps({"error": {"message": message, "type": etype, "param": None, "code": None}})
    return error_body(message, type_, param, code)


def key_hash(key: str) -> str:
    """A short, non-reversible handle for a key: the only form in which a key is ever stored."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class KeyState:
    limits: KeyLimits
    answered: int = 0  # successful answers admitted (quota_after / fail_401_after count these)
    prefixes: set[bytes] = field(default_factory=set)  # leading-message fingerprints seen (prompt caching)


@dataclass
class _Ctx:
    """What one /v1 request carries through the handler."""

    request: Request
    request_id: str
    started: float
    state: KeyState | None = None
    key_hash: str | None = None
    model: str | None = None  # the request's model, once read (LiteLLM's error wording names it)


class _Reject(Exception):
    """A finished error reply, raised from deep in validation."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply


class SimApp:
    def __init__(self, config: SimConfig | None = None, ledger_path: str | os.PathLike | None = None) -> None:
        self.config = config or SimConfig()
        self.registry: set[HttpProtocol] = set()
        self._ledger_file: TextIO | None = None
        if ledger_path is not None:
            Path(ledger_path).parent.mkdir(parents=True, exist_ok=True)
            self._ledger_file = open(ledger_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept for life
        self._id_prefix = os.urandom(4).hex()
        self._counter = 0
        self._clear_state()
        replies.prompt_tokens(
            [{"role": "user", "content": "warm up"}], "gpt-4o-mini"
        )  # loads the encoding now
        self._routes: dict[tuple[str, str], Callable[[_Ctx], Reply]] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/responses"): self._responses,
            ("GET", "/v1/models"): self._models,
        }
        self._admin: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("GET", "/_sim/health"): lambda r: {"status": "ok"},
            ("GET", "/_sim/ledger"): lambda r: self.ledger(),
            ("GET", "/_sim/stats"): lambda r: self.stats(),
            ("GET", "/_sim/config"): lambda r: self.config.to_dict(),
            ("POST", "/_sim/config"): lambda r: self.configure(**_json_object(r.body)),
            ("POST", "/_sim/reset"): self._admin_reset,
        }

    # ----- state -------------------------------------------------------------------------------------------

    def _clear_state(self) -> None:
        from lib.sim.batch import SimBatches  # here, not at the top: sim_batch builds on this module

        self._generation = getattr(self, "_generation", 0) + 1
        self.batch_api = SimBatches(self)  # files and batches; a reset forgets them and stops their timers
        self._ledger: list[dict] = []
        self._keys: dict[str, KeyState] = {}
        self._hashes: dict[str, str] = {}
        self._seen: dict[bytes, int] = {}
        self._by_status: Counter[str] = Counter()
        self._by_kind: Counter[str] = Counter()
        self._in_flight = 0
        self._responses_seen = 0  # /v1/responses requests received, whatever their outcome
        self._web_search_calls = 0  # billed web search calls (batch lines included)
        self._gate = asyncio.Event()

    def ledger(self) -> list[dict]:
        return list(self._ledger)

    def stats(self) -> dict:
        return {
            "total": sum(self._by_status.values()),
            "by_status": dict(self._by_status),
            "by_kind": dict(self._by_kind),
            "status_429": self._by_status.get("429", 0),
            "drops": self._by_kind.get("drop", 0),
            "hangs": self._by_kind.get("hang", 0),
            "billed": len(self._ledger),
            "in_flight": self._in_flight,
            "hanging_now": sum(1 for p in self.registry if p.hanging),
            "held_now": sum(1 for p in self.registry if p.held),
            "open_connections": len(self.registry),
            "responses": self._responses_seen,
            "web_search_calls": self._web_search_calls,
        }

    def configure(self, **changes: Any) -> dict:
        """Apply a partial config update; limit changes start every key's buckets afresh."""
        old = self.config
        self.config = old.updated(changes)
        if old.hold and not self.config.hold:  # the gate opens: every held answer goes on its way
            self._gate.set()
            self._gate = asyncio.Event()
        if (old.rpm, old.tpm, old.burst_seconds) != (
            self.config.rpm,
            self.config.tpm,
            self.config.burst_seconds,
        ):
            now = time.monotonic()
            for state in self._keys.values():
                state.limits = self._new_limits(now)
        return self.config.to_dict()

    def reset(self, config: SimConfig | None = None) -> None:
        """Forget ledger, stats, buckets and seen requests; drop hung connections; optionally replace the config."""
        if config is not None:
            self.config = config
        for proto in list(self.registry):
            if proto.hanging or proto.held:
                proto.abort()
        self._clear_state()

    def _admin_reset(self, request: Request) -> dict:
        body = _json_object(request.body) if request.body.strip() else None
        self.reset(SimConfig.from_dict(body) if body is not None else None)
        return self.config.to_dict()

    def close(self) -> None:
        for proto in list(self.registry):
            proto.abort()
        if self._ledger_file is not None:
            self._ledger_file.close()
            self._ledger_file = None

    def _new_limits(self, now: float) -> KeyLimits:
        return KeyLimits(self.config.rpm, self.config.tpm, self.config.burst_seconds, now)

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._id_prefix}{self._counter:012x}"

    # ----- routing -----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/_sim/"):
            return self._handle_admin(request)
        ctx = _Ctx(request, f"req_{self._next_id()}", time.monotonic())
        try:
            route = self._routes.get((request.method, request.path))
            if route is None and request.method == "GET" and request.path.startswith("/v1/models/"):
                route = self._model
            if route is None:
                route = self.batch_api.route(request)  # /v1/files..., /v1/batches...
            if route is None:
                raise _Reject(self._no_route(ctx))
            self._authenticate(ctx)
            reply = route(ctx)
        except _Reject as rejected:
            reply = rejected.reply
        self._by_status[str(reply.status) if reply.action == "send" else reply.action] += 1
        return reply

    def _handle_admin(self, request: Request) -> Reply:
        if not (request.peer.startswith("127.") or request.peer in ("::1", "localhost")):
            return Reply(
                403, error_body("admin endpoints answer loopback clients only", "invalid_request_error")
            )
        handler = self._admin.get((request.method, request.path))
        if handler is None:
            return Reply(
                404, error_body(f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
            )
        try:
            return Reply(200, _dumps(handler(request)))
        except (ValueError, TypeError) as err:
            return Reply(400, error_body(str(err), "invalid_request_error"))

    def _headers(self, ctx: _Ctx) -> list[tuple[str, str]]:
        limits = ctx.state.limits if ctx.state is not None else self._new_limits(time.monotonic())
        processing = max(0, int((time.monotonic() - ctx.started) * 1000))
        return [
            ("x-request-id", ctx.request_id),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", str(processing)),
            *limits.headers(self.config.ratelimit_headers, time.monotonic()),
        ]

    def _error(
        self,
        ctx: _Ctx,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
        *,
        kind: str | None = None,
        delay: float = 0.0,
        extra: list[tuple[str, str]] | None = None,
    ) -> Reply:
        self._by_kind[kind or code or type_] += 1
        headers = self._headers(ctx) + (extra or [])
        body = styled_error_body(self.config.error_style, status, message, type_, param, code, ctx.model)
        return Reply(status, body, headers, delay=delay)

    def _authenticate(self, ctx: _Ctx) -> None:
        auth = ctx.request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _Reject(
                self._error(
                    ctx,
                    401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                    code="invalid_api_key",
                    kind="auth",
                )
            )
        digest = self._hashes.get(key)
        if digest is None:
            if len(self._hashes) > 10_000:
                self._hashes.clear()
            digest = self._hashes[key] = key_hash(key)
        ctx.key_hash = digest
        ctx.state = self._keys.get(digest)
        if ctx.state is None:
            ctx.state = self._keys[digest] = KeyState(self._new_limits(time.monotonic()))
        revoked = self.config.fail_401_after is not None and ctx.state.answered >= self.config.fail_401_after
        if revoked or key.startswith(self.config.invalid_keys):
            raise _Reject(self._invalid_key(ctx))

    def _invalid_key(self, ctx: _Ctx) -> Reply:
        # The real API echoes a masked key; the simulator echoes nothing of it.
        return self._error(
            ctx,
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
            kind="auth",
        )

    def _available(self, model: str) -> bool:
        """A served model (or a dated snapshot of one, gpt-4o-mini-2024-07-18) that is not shut down yet."""
        served = self.config._served
        snapshot = _SNAPSHOT_RE.match(model)
        if model not in served and (snapshot is None or snapshot.group(1) not in served):
            return False
        return not is_shut_down(self.config.rules(model), self.config.current_date())

    def _models(self, ctx: _Ctx) -> Reply:
        if not self.config.list_models:
            raise _Reject(self._no_route(ctx))
        data = [
            model_object(m, self.config.rules(m), _CREATED)
            for m in self.config.served()
            if self._available(m)
        ]
        self._by_kind["models"] += 1
        return Reply(200, _dumps({"object": "list", "data": data}), self._headers(ctx))

    def _model(self, ctx: _Ctx) -> Reply:
        if not self.config.list_models:
            raise _Reject(self._no_route(ctx))
        name = ctx.request.path.removeprefix("/v1/models/")
        if not self._available(name):
            raise _Reject(self._model_not_found(ctx, name))
        self._by_kind["models"] += 1
        body = model_object(name, self.config.rules(name), _CREATED)
        return Reply(200, _dumps(body), self._headers(ctx))

    def _model_not_found(self, ctx: _Ctx, name: str) -> Reply:
        refusal = model_not_found(name)
        return self._error(ctx, refusal.status, refusal.message, refusal.type, refusal.param, refusal.code)

    def _no_route(self, ctx: _Ctx) -> Reply:
        request = ctx.request
        return self._error(
            ctx, 404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
        )

    # ----- chat completions --------------------------------------------------------------------------------

    def _validated_chat(self, ctx: _Ctx) -> tuple[dict, int, int | None, dict[str, int | None]]:
        """Parse and check a chat request as the API does: (body, prompt tokens, max output, directives)."""
        body = self._parse_chat(ctx)
        model, messages = body["model"], body["messages"]
        rules = self.config.rules(model)
        self._check_params(ctx, body, rules)
        max_out = body.get("max_completion_tokens", body.get("max_tokens"))
        marks = replies.directives(messages)
        prompt = replies.prompt_tokens(messages, model)
        window = self.config.context_window or rules.context_window
        if "context_length" in marks or prompt > window:
            raise _Reject(
                self._error(
                    ctx,
                    400,
                    f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                    f"{prompt} tokens. Please reduce the length of the messages.",
                    "invalid_request_error",
                    "messages",
                    "context_length_exceeded",
                )
            )
        return body, prompt, max_out, marks

    def _chat(self, ctx: _Ctx) -> Reply:
        body, prompt, max_out, marks = self._validated_chat(ctx)
        return self._serve(
            ctx,
            body,
            body["messages"],
            prompt,
            max_out,
            marks,
            lambda delay, malformed, dropped=False: self._answer(
                ctx, body, prompt, max_out, marks, delay, malformed=malformed, dropped=dropped
            ),
        )

    def _responses(self, ctx: _Ctx) -> Reply:
        from lib.sim import responses  # here, not at the top: it builds on this module

        self._responses_seen += 1
        return responses.handle(self, ctx)

    def _serve(
        self,
        ctx: _Ctx,
        body: dict,
        messages: list[dict],
        prompt: int,
        max_out: int | None,
        marks: dict[str, int | None],
        answer: Callable[..., Reply],
    ) -> Reply:
        """What every answering endpoint shares once a request is valid: faults, quota, flex capacity, rate
        limits, latency and the test's gate; `answer(delay, malformed, dropped=False)` makes the reply itself."""
        model = body["model"]
        fingerprint = hashlib.sha256(ctx.request.body).digest()[:16]
        attempt = self._seen.get(fingerprint, 0)
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.clear()
        self._seen[fingerprint] = attempt + 1
        rng = self._request_rng(fingerprint, attempt)
        fault = self._draw_fault(rng, marks)

        state = ctx.state
        quota_gone = self.config.quota_after is not None and state.answered >= self.config.quota_after
        if fault == "401":
            return self._invalid_key(ctx)
        if fault == "quota" or quota_gone:
            return self._quota(ctx)
        if fault == "429":
            wait_ms = 20 + (rng.randrange(480) if rng else 0)
            return self._rate_limited(ctx, model, "requests", wait_ms, "spurious_429")
        if body.get("service_tier") == "flex" and self._flex_unavailable(fingerprint, attempt):
            return self._error(
                ctx,
                429,
                "Resource Unavailable: there is not enough flex processing capacity right now. "
                "Retry later, or send the request with the default service tier.",
                "resource_unavailable",
                code="resource_unavailable",
                kind="flex_unavailable",
            )
        refusal = state.limits.admit(prompt + (max_out or 16), time.monotonic())
        if refusal is not None:
            wait_ms = None if math.isinf(refusal.wait) else max(1, math.ceil(refusal.wait * 1000))
            return self._rate_limited(
                ctx, model, refusal.kind, wait_ms, "rate_limited", refusal_message(refusal, model)
            )

        delay = self._latency(rng, marks)
        fail_first = marks.get("fail_first")
        if fault in ("500", "503") or (fail_first is not None and attempt < fail_first):
            return self._server_error(ctx, 503 if fault == "503" else 500, delay)
        if fault == "drop":
            self._by_kind["drop"] += 1
            if not self.config.drops_billed:
                return Reply(action="drop", delay=delay)
            state.answered += 1
            reply = answer(delay, False, dropped=True)
            reply.action = "drop"  # billed when due, then the connection closes unanswered
            return reply
        if fault == "hang":
            self._by_kind["hang"] += 1
            return Reply(action="hang", hang_seconds=self.config.hang_seconds)
        state.answered += 1
        reply = answer(delay, fault == "malformed")
        hold = self.config.hold
        if hold is True or (isinstance(hold, str) and hold and hold in replies.last_user_text(messages)):
            reply.gate = self._gate
        return reply

    def _parse_chat(self, ctx: _Ctx) -> dict:
        try:
            body = json.loads(ctx.request.body)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise _Reject(
                self._error(
                    ctx,
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                    "valid JSON.)",
                    "invalid_request_error",
                )
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Reject(
                self._error(ctx, 400, "you must provide a model parameter", "invalid_request_error")
            )
        ctx.model = model
        if not self._available(model):  # unknown or shut down: 404 before any other parameter is looked at
            raise _Reject(self._model_not_found(ctx, model))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            problem = (
                "Missing required parameter: 'messages'."
                if messages is None
                else "Invalid 'messages': expected a non-empty array."
            )
            raise _Reject(
                self._error(ctx, 400, problem, "invalid_request_error", "messages", "invalid_value")
            )
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise _Reject(
                    self._error(
                        ctx,
                        400,
                        f"Missing required parameter: 'messages[{i}].role'.",
                        "invalid_request_error",
                        f"messages[{i}].role",
                        "missing_required_parameter",
                    )
                )
        return body

    def _check_params(self, ctx: _Ctx, body: dict, rules: ModelRules) -> None:
        """Parameter rules the real API enforces: the general ones here, the model's own in check_request."""
        tier = body.get("service_tier")
        if tier is not None and tier not in TIERS:
            raise _Reject(
                self._error(
                    ctx,
                    400,
                    f"Invalid value for 'service_tier': {tier!r}.",
                    "invalid_request_error",
                    "service_tier",
                    "invalid_value",
                )
            )
        key = body.get("prompt_cache_key")
        if key is not None and not isinstance(key, str):
            raise _Reject(
                self._error(
                    ctx,
                    400,
                    "Invalid type for 'prompt_cache_key': expected a string.",
                    "invalid_request_error",
                    "prompt_cache_key",
                    "invalid_type",
                )
            )
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise _Reject(
                    self._error(
                        ctx,
                        400,
                        f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value!r} instead.",
                        "invalid_request_error",
                        name,
                        "integer_below_min_value",
                    )
                )
        refusal = check_request(body, rules)
        if refusal is not None:
            raise _Reject(
                self._error(ctx, refusal.status, refusal.message, refusal.type, refusal.param, refusal.code)
            )

    def _flex_unavailable(self, fingerprint: bytes, attempt: int) -> bool:
        """A capacity refusal for this flex attempt, drawn from (seed, request, attempt) like the faults."""
        p = self.config.p_flex_unavailable
        if p <= 0:
            return False
        seed = hashlib.sha256(
            b"flex:%d:%s:%d" % (self.config.seed, fingerprint.hex().encode(), attempt)
        ).digest()
        return random.Random(int.from_bytes(seed[:16], "big")).random() < p

    def _request_rng(self, fingerprint: bytes, attempt: int) -> random.Random | None:
        """A generator seeded by (seed, request, attempt): the same run gets the same faults in any order."""
        cfg = self.config
        if cfg.fault_probability() <= 0 and cfg.latency_dist == "fixed":
            return None
        seed = hashlib.sha256(b"%d:%s:%d" % (cfg.seed, fingerprint.hex().encode(), attempt)).digest()
        return random.Random(int.from_bytes(seed[:16], "big"))

    def _draw_fault(self, rng: random.Random | None, marks: dict[str, int | None]) -> str | None:
        for kind in FAULT_KINDS:
            if kind in marks:
                return kind
        if rng is None:
            return None
        u = rng.random()
        for kind in FAULT_KINDS:
            u -= getattr(self.config, f"p_{kind}")
            if u < 0:
                return kind
        return None

    def _latency(self, rng: random.Random | None, marks: dict[str, int | None]) -> float:
        if marks.get("latency") is not None:
            return marks["latency"] / 1000.0
        cfg = self.config
        if cfg.latency_ms <= 0:
            return 0.0
        if cfg.latency_dist == "fixed" or rng is None:
            return cfg.latency_ms / 1000.0
        return lognormal_seconds(rng, cfg.latency_ms, cfg.latency_p99_ms)

    def _quota(self, ctx: _Ctx) -> Reply:
        return self._error(
            ctx,
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            code="insufficient_quota",
            kind="quota",
        )

    def _rate_limited(
        self, ctx: _Ctx, model: str, kind: str, wait_ms: int | None, stat: str, message: str | None = None
    ) -> Reply:
        """A rate_limit_exceeded 429; wait_ms None (a request larger than the limit) sends no retry hint."""
        message = message or (
            f"Rate limit reached for {model} in organization org-simulator on requests per min (RPM): "
            f"Please try again in {wait_ms}ms. Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        extra = []
        if wait_ms is not None:
            extra = [
                ("retry-after-ms", str(wait_ms)),
                ("retry-after", str(max(1, math.ceil(wait_ms / 1000)))),
            ]
        return self._error(ctx, 429, message, kind, code="rate_limit_exceeded", kind=stat, extra=extra)

    def _server_error(self, ctx: _Ctx, status: int, delay: float) -> Reply:
        if status == 503:
            message, kind = "The server is overloaded or not ready yet.", "fault_503"
        else:
            message, kind = (
                "The server had an error while processing your request. Sorry about that!",
                "fault_500",
            )
        return self._error(ctx, status, message, "server_error", kind=kind, delay=delay)

    def _answer(
        self,
        ctx: _Ctx,
        body: dict,
        prompt: int,
        max_out: int | None,
        marks: dict[str, int | None],
        delay: float,
        *,
        malformed: bool,
        batch: bool = False,
        dropped: bool = False,
    ) -> Reply:
        model, messages = body["model"], body["messages"]
        rules = self.config.rules(model)
        effort = effective_effort(body, rules)
        reasoning = replies.reasoning_tokens(messages, model, effort) if effort is not None else 0
        refusal = replies.REFUSAL_TEXT if "refusal" in marks else None
        if refusal is not None:
            content, finish, visible = None, "stop", replies.completion_tokens(refusal, model)
        elif "content_filter" in marks:
            content, finish, visible = None, "content_filter", 0
        else:
            content, finish, visible, reasoning = _truncate(
                self._content(ctx, body), model, max_out, reasoning, "length" in marks
            )
        cached, written = self._cached_tokens(ctx.state, messages, model, prompt)
        tier = body.get("service_tier")
        served = tier if tier in ("flex", "priority", "fast") else "default"
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": visible + reasoning,
            "total_tokens": prompt + visible + reasoning,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if rules.cache_write:
            usage["prompt_tokens_details"]["cache_write_tokens"] = written
        chat_id = f"chatcmpl-{self._next_id()}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            payload = _sse_body(
                chat_id, created, model, served, content, refusal, finish, usage, include_usage
            )
            content_type = "text/event-stream; charset=utf-8"
        else:
            message = {"role": "assistant", "content": content, "refusal": refusal, "annotations": []}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            payload = _dumps(
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                    "service_tier": served,
                    "system_fingerprint": _FINGERPRINT,
                }
            )
            content_type = "application/json"
        record = {
            "ts": None,
            "request_id": ctx.request_id,
            "key_hash": ctx.key_hash,
            "model": model,
            "row_id": ctx.request.headers.get("x-row-id"),
            "prompt_tokens": prompt,
            "completion_tokens": usage["completion_tokens"],
            "cached_tokens": cached,
            "cache_write_tokens": usage["prompt_tokens_details"].get("cache_write_tokens", 0),
            "reasoning_tokens": reasoning,
            "reasoning_effort": effort,  # what the request was served at (its own, else the model's default)
            "service_tier": "batch" if batch else served,
            "finish_reason": finish,
            "api": "chat",
            "web_search_calls": 0,
        }
        return self._deliver(
            ctx, payload, content_type, record, delay, malformed=malformed, batch=batch, dropped=dropped
        )

    def _content(self, ctx: _Ctx, body: dict) -> str:
        """The whole answer before any output cap: the row's deterministic reply (replies.response_content),
        packed answers mangled at the configured rates. `body` is in Chat Completions' terms."""
        model, messages = body["model"], body["messages"]
        seed_model = (
            f"{model}\0{replies.prompt_salt(messages, body.get('temperature'))}"
            if self.config.prompt_sensitive
            else model
        )
        content = replies.response_content(
            messages, seed_model, body.get("response_format"), self.config.p_defect, self.config.defects
        )
        if replies.is_packed(body.get("response_format")):
            content = replies.mangle_packed(content, self._pack_rng(ctx, body), self.config)
        return content

    def _deliver(
        self,
        ctx: _Ctx,
        payload: bytes,
        content_type: str,
        record: dict,
        delay: float,
        *,
        malformed: bool,
        batch: bool,
        dropped: bool = False,
    ) -> Reply:
        """A 200 answer, billed into the ledger (`record`) when it is due; `dropped`: billed, never read."""
        if malformed:
            payload = payload[: len(payload) // 2]  # cut mid-JSON: the client gets a complete, invalid body
        kind = "drop" if dropped else "malformed" if malformed else "ok"
        if not dropped:  # counted as a drop already
            self._by_kind[kind] += 1
        record.update(status=200, kind=kind)
        if batch:
            record["batch"] = True  # billed at the Batch API's discount
        self._in_flight += 1
        generation = self._generation
        return Reply(
            200,
            payload,
            self._headers(ctx),
            content_type,
            delay=delay,
            on_due=lambda: self._bill(record, generation),
        )

    def _bill(self, record: dict, generation: int) -> None:
        """Record an answer as billed when it is due, whether or not the client is still there to read it."""
        if generation != self._generation:  # answered after a reset: belongs to a previous test
            return
        self._in_flight -= 1
        record["ts"] = time.time()
        self._web_search_calls += record.get("web_search_calls", 0)
        self._ledger.append(record)
        if self._ledger_file is not None:
            self._ledger_file.write(json.dumps(record) + "\n")

    def _pack_rng(self, ctx: _Ctx, body: dict) -> random.Random:
        seed = hashlib.sha256(b"pack:%d:%s" % (self.config.seed, ctx.request.body)).digest()
        return random.Random(int.from_bytes(seed[:16], "big"))

    def _cached_tokens(
        self, state: KeyState, messages: list[dict], model: str, prompt: int
    ) -> tuple[int, int]:
        """OpenAI-style prompt caching: (read, written) tokens of a prefix (all but the last message) of 1024+
        tokens, in 128s. A prefix's first use writes it to the cache; later uses read it."""
        if prompt < 1024 or len(messages) < 2:
            return 0, 0
        prefix_tokens = replies.prompt_tokens(messages[:-1], model) - replies.tokens.REPLY_PRIMING
        cacheable = min(prefix_tokens // 128 * 128, prompt)
        if cacheable < 1024:
            return 0, 0
        prefix = hashlib.sha256(_dumps([model, messages[:-1]])).digest()[:16]
        if prefix not in state.prefixes:
            if len(state.prefixes) > _SEEN_LIMIT:
                state.prefixes.clear()
            state.prefixes.add(prefix)
            return 0, cacheable
        return cacheable, 0


def _truncate(
    content: str, model: str, max_out: int | None, reasoning: int, forced: bool
) -> tuple[str, str, int, int]:
    """Apply the output budget (reasoning spends it first): (content, finish_reason, visible tokens, reasoning)."""
    visible = replies.completion_tokens(content, model)
    budget = max_out if max_out is not None else math.inf
    if forced:  # [[sim:length]]: cut the visible reply in half
        budget = min(budget, reasoning + max(1, visible // 2))
    if reasoning + visible <= budget:
        return content, "stop", visible, reasoning
    budget = int(budget)
    if reasoning >= budget:
        return "", "length", 0, budget
    keep = budget - reasoning
    return replies.truncate_to_tokens(content, keep, model), "length", keep, reasoning


def lognormal_seconds(rng: random.Random, median_ms: float, p99_ms: float | None) -> float:
    """A lognormal latency with the given median and 99th percentile (default 3x the median)."""
    p99 = p99_ms if p99_ms and p99_ms > median_ms else 3.0 * median_ms
    sigma = (math.log(p99) - math.log(median_ms)) / 2.3263478740408408
    return rng.lognormvariate(math.log(median_ms), sigma) / 1000.0


def _sse_body(
    chat_id: str,
    created: int,
    model: str,
    served: str,
    content: str | None,
    refusal: str | None,
    finish: str,
    usage: dict,
    include_usage: bool,
) -> bytes:
    """The whole server-sent-event stream of chat.completion.chunk objects, ending with [DONE]."""
    base = {
        "id": chat_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": served,
        "system_fingerprint": _FINGERPRINT,
    }
    chunks: list[dict] = []

    def add(delta: dict, finish_reason: str | None = None) -> None:
        chunk = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            chunk["usage"] = None
        chunks.append(chunk)

    add({"role": "assistant", "content": "", "refusal": None})
    if refusal is not None:
        add({"refusal": refusal})
    for piece in _pieces(content or ""):
        add({"content": piece})
    add({}, finish)
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage})
    return b"".join(b"data: " + _dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def _pieces(text: str, words_per_piece: int = 3) -> list[str]:
    words = text.split(" ")
    pieces = [" ".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
    return [p + " " for p in pieces[:-1]] + pieces[-1:] if text else []


def _json_object(raw: bytes) -> dict:
    data = json.loads(raw or b"{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data
