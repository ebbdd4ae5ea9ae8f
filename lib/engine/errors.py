"""What an API error means for a run, in words a sales-ops person understands.

Kinds: `rate_limit` (slow the whole key and retry the row), `quota` (billing: pause the run at once,
never retry), `fatal` (the same for every row: key, permission, model, a bad setting: stop the run),
`row` (this row only: too long, refused by the API; no retry), `transient` (5xx, timeouts, dropped
connections, broken answers: retry with backoff, then fail the row as retryable), `capacity` (flex
processing has no capacity now: neither the key's rate limit nor a failure; back off, unbilled).
Branch on what the server says (code, type and words), then on the status: a 429 is either a rate limit
or an empty wallet, and a gateway may keep only the words (LiteLLM rewrites insufficient_quota to "429").
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable

import openai

from lib.engine.outcome import OutcomeKind

BILLING_CODES = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
        "account_deactivated",
        "quota_exceeded",
    }
)
# A 400 about one of these parameters is the same for every row: stop instead of failing them all.
SETTING_PARAMS = frozenset(
    {
        "model",
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "response_format",
        "top_p",
        "n",
        "stream",
        "service_tier",
        "prompt_cache_key",
    }
)
SETTING_CODES = frozenset(
    {"unsupported_parameter", "unsupported_value", "invalid_api_key", "model_not_found"}
)
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,})")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove anything key-like from a server's message before it is shown or stored.

    `secrets` are the keys actually in use: an OpenAI-compatible server may echo a key that does not look
    like "sk-..." (Azure's 32 hex digits, "gsk_..."), which the pattern alone would let through.
    """
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, f"{secret[:3]}…{secret[-4:]}" if len(secret) > 12 else "…")
    return _KEYLIKE.sub("sk-…", text)


def error_fields(body: object, fallback: str = "") -> tuple[str, str, str, str]:
    """(code, type, param, message) from an error body of any OpenAI-compatible shape, all as text.

    The SDK hands over the `error` object when there is one (OpenAI, Azure, LiteLLM, Ollama's /v1), the
    whole body otherwise (vLLM's `{"object": "error", "code": 404}`), or a string (Ollama's native
    `{"error": "..."}`, a plain-text page). Codes may be numbers (vLLM, Azure's "429"); Azure nests the
    real reason in `innererror.code`.
    """
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        text = body.get("error") if isinstance(body, dict) else body
        return "", "", "", str(text or fallback)
    inner = body.get("innererror") if isinstance(body.get("innererror"), dict) else {}
    code = body.get("code")
    if inner.get("code") and str(code or "").isdigit():
        code = inner.get("code")
    message = body.get("message") or body.get("detail") or body.get("error") or fallback
    text = lambda v: "" if v in (None, "None") else str(v)  # noqa: E731 - LiteLLM writes param "None"
    return text(code), text(body.get("type")), text(body.get("param")), text(message)


def _server_message(exc: openai.APIStatusError, secrets: Iterable[str]) -> str:
    text = error_fields(exc.body, getattr(exc, "message", "") or "")[3]
    return scrub(str(text), secrets)[:500]


# What a server's words say, whatever code a gateway put on them. Each is checked against the lower-cased
# code, type and message together; the sources of the phrases are in tests/fixtures/error_bodies.py.
_QUOTA = re.compile(
    # Not a bare "billing": OpenAI's free-tier rate limit links to .../account/billing and is a rate limit.
    r"insufficient_quota|exceeded your current quota|check your plan and billing|billing details|"
    r"billing_hard_limit|billing_not_active|account_deactivated|quota_exceeded|budget_exceeded|"
    r"budget has been exceeded|credit balance is too low|insufficient (?:balance|credits?)|out of credits?"
)
_AUTH = re.compile(
    r"invalid_api_key|incorrect api key|invalid api key|authentication_error|auth_error|"
    r"invalid subscription key|access token is missing|invalid proxy server token|no api key|unauthorized"
)
_MODEL = re.compile(
    r"model_not_found|deploymentnotfound|invalid model name|model .{0,120}(?:not found|does not exist)|"
    r"(?:no such|unknown) model|deployment for this resource does not exist|no deployments available|"
    r"model .{0,120}is not (?:supported|available|allowed)"
)
_CONTEXT = re.compile(
    r"context_length_exceeded|maximum context length|context length|context window|prompt is too long|"
    r"too many (?:input )?tokens|input is too long|reduce the length of the messages"
)
_FILTER = re.compile(
    r"content_filter|content management policy|responsibleaipolicyviolation|content_policy_violation|"
    r"content policy|flagged by (?:the )?(?:moderation|safety)"
)


def text_kind(code: str, etype: str, message: str) -> str | None:
    """What the server's words say the problem is: quota, auth, model, context, filter, or None."""
    words = f"{code} {etype} {message}".lower()
    for kind, pattern in (
        ("quota", _QUOTA),
        ("auth", _AUTH),
        ("context", _CONTEXT),
        ("filter", _FILTER),
        ("model", _MODEL),
    ):
        if pattern.search(words):
            return kind
    return None


def classify_status(
    exc: openai.APIStatusError, *, model: str, secrets: Iterable[str] = ()
) -> tuple[OutcomeKind, str]:
    """(kind, message) for an HTTP error response; `secrets` (the key in use) never appear in the message.

    By what the server says first, then by its status: a gateway (LiteLLM) turns OpenAI's
    insufficient_quota into a "429" throttling_error and keeps only the words. The message always ends
    with the server's own words, scrubbed of the key.
    """
    status = exc.status_code
    code, etype, param, _ = error_fields(exc.body, getattr(exc, "message", "") or "")
    detail = _server_message(exc, tuple(secrets))
    said = f" The server said: {detail}" if detail else ""
    if status == 429 and is_capacity(code, etype, detail):
        return (
            OutcomeKind.CAPACITY,
            "Flex processing had no capacity (429 Resource Unavailable, not billed): retrying.",
        )
    said_kind = text_kind(code, etype, detail) if code != "rate_limit_exceeded" else None
    if code in BILLING_CODES or etype in BILLING_CODES or said_kind == "quota" or status == 402:
        return OutcomeKind.QUOTA, (
            "Your account is out of credit or over its spend limit (insufficient_quota). "
            "Add credit or raise the limit (OpenAI: the dashboard's Billing page), then resume: "
            f"nothing has been lost.{said}"
        )
    if status == 401 or (said_kind == "auth" and status in (400, 403)):
        return OutcomeKind.FATAL, (
            f"The API key was rejected ({status}). Check the key (sidebar, .env or OPENAI_API_KEY); "
            f"the run stopped so nothing more is sent with it.{said}"
        )
    if said_kind == "context" and status in (400, 413, 422):
        return OutcomeKind.ROW, (
            f"This row's prompt is too long for {model}. Shorten its long fields or lower the field cap.{said}"
        )
    if said_kind == "filter" and status in (400, 403, 422):
        return OutcomeKind.ROW, f"The server's content filter refused this row ({status}).{said}"
    if status == 429:
        return OutcomeKind.RATE_LIMIT, f"Rate limited by the API (429): the run slows down and retries.{said}"
    if said_kind == "model" and status in (400, 404, 422):
        return OutcomeKind.FATAL, _no_model(model, said)
    if status == 403:
        return OutcomeKind.FATAL, f"This key is not allowed to do this (403).{said}"
    if status == 404:
        if "model" in detail.lower():
            return OutcomeKind.FATAL, _no_model(model, said)
        return OutcomeKind.FATAL, f"The API address answered 'not found' (404). Check the base URL.{said}"
    if status in (400, 422) and (code in SETTING_CODES or param in SETTING_PARAMS):
        return OutcomeKind.FATAL, f"The model rejected a setting{f' ({param})' if param else ''}.{said}"
    if status in (408, 409) or status >= 500:
        return OutcomeKind.TRANSIENT, f"The API had a temporary problem ({status}).{said}"
    return OutcomeKind.ROW, f"The API refused this row ({status}).{said}"


def _no_model(model: str, said: str) -> str:
    """A model the endpoint does not serve: shut down (with OpenAI's suggested replacement) or unknown."""
    from lib.models import retirement

    status = retirement(model)
    if status.date is not None and status.retired:
        why = f"The model '{model}' was shut down on {status.date.day} {status.date.strftime('%b %Y')}."
        pick = (
            f" OpenAI suggests {status.replacement}: pick it"
            if status.replacement
            else " Pick a current model"
        )
        return f"{why}{pick} and start again; the rows not done stay pending.{said}"
    if status.date is not None:
        return (
            f"The model '{model}' does not answer any more (OpenAI lists its shutdown on {status.date.isoformat()})."
            f" {'OpenAI suggests ' + status.replacement + '. ' if status.replacement else ''}"
            f"Pick a current model and start again; the rows not done stay pending.{said}"
        )
    return (
        f"The model '{model}' does not exist or this key cannot use it. Pick another model; the rows not done "
        f"stay pending.{said}"
    )


def connection_kind(exc: BaseException) -> str:
    """Why a connection failed: "refused", "dns", "tls", "url" (the endpoint is not there as configured) or "other"."""
    seen: set[int] = set()
    texts = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return "tls"
        if isinstance(exc, socket.gaierror):
            return "dns"
        if isinstance(exc, ConnectionRefusedError):
            return "refused"
        texts.append(str(exc).lower())
        exc = exc.__cause__ or exc.__context__
    text = " ".join(texts)
    if "unsupported protocol" in text or "invalid url" in text or "no scheme" in text:
        return "url"
    if "ssl" in text or "tls" in text or "certificate" in text or "wrong version number" in text:
        return "tls"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "dns"
    if "name resolution" in text or "no address associated" in text:
        return "dns"
    if "connection refused" in text or "errno 111" in text:
        return "refused"
    return "other"


_CONNECTION_WORDS = {
    "refused": "nothing is listening at that address (connection refused)",
    "dns": "its host name does not resolve (DNS)",
    "tls": "the secure connection (TLS) failed: a wrong https/http scheme, port or certificate",
    "url": "the base URL is not an http(s) address",
}


def is_capacity(code: str | None, etype: str | None, message: str) -> bool:
    """OpenAI's flex "429 Resource Unavailable": capacity is short for the tier, the key is not limited."""
    return "resource_unavailable" in (code or "", etype or "") or "resource unavailable" in message.lower()


def connection_message(exc: openai.APIConnectionError) -> str:
    kind = connection_kind(exc)
    if kind in _CONNECTION_WORDS:
        return f"Could not reach the API: {_CONNECTION_WORDS[kind]}."
    cause = exc.__cause__ or exc.__context__
    why = type(cause).__name__ if cause else "connection error"
    return f"Could not reach the API ({why}): the connection dropped or was refused."
