"""What an API error means for a run, in words a sales-ops person understands.

Kinds: `rate_limit` (slow the whole key and retry the row), `quota` (billing: pause the run at once,
never retry), `fatal` (the same for every row: key, permission, model, a bad setting: stop the run),
`row` (this row only: too long, refused by the API; no retry), `transient` (5xx, timeouts, dropped
connections, broken answers: retry with backoff, then fail the row as retryable), `capacity` (flex
processing has no capacity now: neither the key's rate limit nor a failure; back off, unbilled).
Branch on the error code, not the status: a 429 is either a rate limit or an empty wallet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import openai

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


def _server_message(exc: openai.APIStatusError, secrets: Iterable[str]) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    text = body.get("message") or getattr(exc, "message", "") or ""
    return scrub(str(text), secrets)[:500]


def classify_status(
    exc: openai.APIStatusError, *, model: str, secrets: Iterable[str] = ()
) -> tuple[str, str]:
    """(kind, message) for an HTTP error response; `secrets` (the key in use) never appear in the message."""
    status = exc.status_code
    code = (
        (getattr(exc, "code", None) or "") if not isinstance(exc.body, dict) else (exc.body.get("code") or "")
    )
    etype = exc.body.get("type") if isinstance(exc.body, dict) else getattr(exc, "type", None)
    param = exc.body.get("param") if isinstance(exc.body, dict) else getattr(exc, "param", None)
    detail = _server_message(exc, tuple(secrets))
    if status == 429 and is_capacity(code, etype, detail):
        return "capacity", "Flex processing had no capacity (429 Resource Unavailable, not billed): retrying."
    if status == 429:
        if code in BILLING_CODES or etype in BILLING_CODES:
            return "quota", (
                "Your OpenAI account is out of credit or over its spend limit (insufficient_quota). "
                "Add credit or raise the limit in the OpenAI dashboard's Billing page, then resume: "
                "nothing has been lost."
            )
        return "rate_limit", "Rate limited by the API (429): the run slows down and retries."
    if status == 401:
        return "fatal", (
            "The API key was rejected (401). Check the key (sidebar, .env or OPENAI_API_KEY); "
            "the run stopped so nothing more is sent with it."
        )
    if status == 403:
        return "fatal", f"This key is not allowed to do this (403): {detail}"
    if status == 404:
        if code == "model_not_found" or "model" in detail.lower():
            return (
                "fatal",
                f"The model '{model}' does not exist or this key cannot use it. Pick another model.",
            )
        return "fatal", f"The API address answered 'not found' (404). Check the base URL. {detail}"
    if status == 400 and code == "context_length_exceeded":
        return "row", (
            f"This row's prompt is too long for {model}. Shorten its long fields or lower the field cap."
        )
    if status in (400, 422) and (code in SETTING_CODES or param in SETTING_PARAMS):
        return "fatal", f"The model rejected a setting{f' ({param})' if param else ''}: {detail}"
    if status in (408, 409) or status >= 500:
        return "transient", f"The API had a temporary problem ({status}). {detail}".strip()
    return "row", f"The API refused this row ({status}): {detail}"


def is_capacity(code: str | None, etype: str | None, message: str) -> bool:
    """OpenAI's flex "429 Resource Unavailable": capacity is short for the tier, the key is not limited."""
    return "resource_unavailable" in (code or "", etype or "") or "resource unavailable" in message.lower()


def connection_message(exc: openai.APIConnectionError) -> str:
    cause = exc.__cause__ or exc.__context__
    why = type(cause).__name__ if cause else "connection error"
    return f"Could not reach the API ({why}): the connection dropped or was refused."
