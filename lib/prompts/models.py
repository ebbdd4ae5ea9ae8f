"""What each model family accepts: which max-tokens parameter, whether temperature and JSON schema work."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "gpt-4o-mini"
REASONING_EFFORT = "low"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    reasoning: bool  # gpt-5 and o-series: hidden reasoning tokens are billed as output
    uses_max_completion_tokens: bool
    supports_temperature: bool
    supports_json_schema: bool
    context_window: int


# Prefix -> (reasoning, max_completion_tokens, temperature, json_schema, context window). Longest prefix wins.
_FAMILIES: dict[str, tuple[bool, bool, bool, bool, int]] = {
    "gpt-5": (True, True, False, True, 400_000),
    "gpt-5-chat": (False, True, True, True, 128_000),
    "o1": (True, True, False, True, 200_000),
    "o3": (True, True, False, True, 200_000),
    "o4": (True, True, False, True, 200_000),
    "gpt-4.1": (False, False, True, True, 1_047_576),
    "gpt-4o": (False, False, True, True, 128_000),
    "chatgpt-4o": (False, False, True, False, 128_000),
    "gpt-4-turbo": (False, False, True, False, 128_000),
    "gpt-4": (False, False, True, False, 8_192),
    "gpt-3.5-turbo": (False, False, True, False, 16_385),
}
# Models we know nothing about (Ollama, vLLM, Azure deployment names): classic chat parameters.
_UNKNOWN = (False, False, True, False, 128_000)


def model_info(name: str) -> ModelInfo:
    family = max((p for p in _FAMILIES if name.startswith(p)), key=len, default=None)
    reasoning, mct, temp, schema, ctx = _FAMILIES[family] if family else _UNKNOWN
    return ModelInfo(name, reasoning, mct, temp, schema, ctx)


def request_params(model: str, *, max_tokens: int | None, temperature: float | None) -> dict:
    """The chat.completions parameters for these settings, spelt the way this model accepts them."""
    info = model_info(model)
    params: dict = {"model": model}
    if max_tokens is not None:
        params["max_completion_tokens" if info.uses_max_completion_tokens else "max_tokens"] = max_tokens
    if temperature is not None and info.supports_temperature:
        params["temperature"] = temperature
    if info.reasoning:
        # Hidden reasoning tokens come out of max_completion_tokens: at the default (medium) effort a short
        # answer can be spent entirely on thinking and come back empty. Enrichment needs little of it, and
        # every reasoning family accepts "low".
        params["reasoning_effort"] = REASONING_EFFORT
    return params
