"""Chat Completions: POST /chat/completions through the openai SDK, parsed into an Outcome."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import httpx2
import openai

from lib.cost.pricing import Usage
from lib.engine import errors
from lib.engine.outcome import Outcome, OutcomeKind

PATH = "/chat/completions"


def refusal_of(message: Mapping) -> str | None:
    """A chat message's refusal, where OpenAI puts it or where LiteLLM moves it (provider_specific_fields)."""
    refusal = message.get("refusal")
    extra = message.get("provider_specific_fields")
    if not refusal and isinstance(extra, Mapping):
        refusal = extra.get("refusal")
    return str(refusal) if refusal else None


def reached_server(exc: BaseException) -> bool:
    """Whether the body may have reached the server: not when the connection never opened."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.UnsupportedProtocol)):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


class ChatCompletions:
    def __init__(self, client: openai.OpenAI, *, secrets: tuple[str, ...] = ()) -> None:
        self.client = client
        self.secrets = secrets

    def send(self, body: Mapping, *, row_id: int, timeout: float) -> Outcome:
        sent_at = time.monotonic()
        try:
            # The SDK's documented raw call for a body we built ourselves: its auth, base URL, HTTP stack and
            # error classes, without re-walking the body through its TypedDict transforms (~30% of client CPU).
            raw = self.client.post(
                PATH,
                cast_to=httpx2.Response,
                body=body,
                options={"headers": {"X-Row-Id": str(row_id)}, "timeout": timeout},
            )
        except openai.APIStatusError as exc:
            headers = exc.response.headers if exc.response is not None else None
            fields = errors.error_fields(exc.body, getattr(exc, "message", "") or "")
            kind, message = errors.classify_status(
                exc, model=str(body.get("model", "")), secrets=self.secrets
            )
            return Outcome(kind, message=message, headers=headers, status=exc.status_code, error=fields)
        except openai.APITimeoutError as exc:
            return Outcome(
                OutcomeKind.TRANSIENT,
                message=f"No answer within {seconds(timeout)} (timed out).",
                maybe_billed=reached_server(exc),
                timed_out=True,
            )
        except openai.APIConnectionError as exc:
            why = errors.connection_kind(exc)
            there = why not in ("refused", "dns", "tls", "url")
            return Outcome(
                OutcomeKind.TRANSIENT,
                message=errors.connection_message(exc),
                unreachable=None if there else why,
                maybe_billed=there and reached_server(exc),  # it broke after the body may have gone
            )
        try:
            data = json.loads(raw.content)
            choice = data["choices"][0]
            message = choice.get("message") or {}
            usage = Usage.from_api(data.get("usage"))
            asked = body.get("service_tier") or "default"
            served = data.get("service_tier") or ("default" if asked == "auto" else asked)
        except (ValueError, KeyError, IndexError, TypeError):
            return Outcome(
                OutcomeKind.TRANSIENT,
                message="The API sent an unreadable answer (broken JSON).",
                headers=raw.headers,
                maybe_billed=True,  # an answer was made, and billed; its usage is unreadable
            )
        return Outcome(
            OutcomeKind.OK,
            text=message.get("content"),
            refusal=refusal_of(message),
            finish=choice.get("finish_reason"),
            usage=usage,
            headers=raw.headers,
            response_id=data.get("id"),
            tier=str(served),
            latency_s=time.monotonic() - sent_at,  # sent (the governor's wait is over) to parsed
        )


def make(client: openai.OpenAI, *, secrets: tuple[str, ...] = ()) -> ChatCompletions:
    return ChatCompletions(client, secrets=secrets)
