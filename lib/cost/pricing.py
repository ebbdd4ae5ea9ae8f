"""Per-model prices and the cost of a response's usage, in US dollars."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Standard (not priority/flex) prices per million tokens from OpenAI's pricing page, read on this date.
# Prices change: override them in the app or with a prices file rather than trusting this table blindly.
PRICES_READ_ON = "2025-08-15"
BATCH_DISCOUNT = 0.5  # the Batch API bills half of both input and output


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M uncached prompt tokens
    cached_input: float  # USD per 1M cached prompt tokens
    output: float  # USD per 1M completion tokens (reasoning tokens included)


PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 0.125, 10.00),
    "gpt-5-mini": Price(0.25, 0.025, 2.00),
    "gpt-5-nano": Price(0.05, 0.005, 0.40),
    "gpt-4.1": Price(2.00, 0.50, 8.00),
    "gpt-4.1-mini": Price(0.40, 0.10, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.025, 0.40),
    "gpt-4o": Price(2.50, 1.25, 10.00),
    "gpt-4o-mini": Price(0.15, 0.075, 0.60),
    "o3": Price(2.00, 0.50, 8.00),
    "o4-mini": Price(1.10, 0.275, 4.40),
    "o3-mini": Price(1.10, 0.55, 4.40),
    "gpt-3.5-turbo": Price(0.50, 0.50, 1.50),
}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @classmethod
    def from_api(cls, usage: Mapping | None) -> Usage:
        """From a response's `usage` object as JSON (chat completions shape)."""
        if not usage:
            return cls()
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(prompt_details.get("cached_tokens") or 0),
            int(completion_details.get("reasoning_tokens") or 0),
        )


PRICES_FILE_ENV = "LEAD_STUDIO_PRICES"


ALIASES_KEY = "aliases"


def load_prices(path: str | os.PathLike) -> dict[str, Price]:
    """A prices file: JSON {"model": {"input": 0.15, "cached_input": 0.075, "output": 0.6}} per 1M tokens.

    It may also map deployment or proxy names to a priced model: {"aliases": {"gpt-4o-mini-json": "gpt-4o-mini"}}.
    """
    return _read_prices_file(path)[0]


def _read_prices_file(path: str | os.PathLike) -> tuple[dict[str, Price], dict[str, str]]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        aliases = data.pop(ALIASES_KEY, None) or {}
        prices = {
            str(model): Price(float(p["input"]), float(p.get("cached_input", p["input"])), float(p["output"]))
            for model, p in data.items()
        }
        return prices, {str(k): str(v) for k, v in dict(aliases).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"Can't read the prices file {path}: {exc}") from exc


def _file_table() -> tuple[dict[str, Price], dict[str, str]]:
    """Team-wide prices and aliases from the file named by LEAD_STUDIO_PRICES (re-read when it changes)."""
    path = os.environ.get(PRICES_FILE_ENV)
    if not path:
        return {}, {}
    try:
        stamp = (path, os.stat(path).st_mtime_ns)
    except OSError:
        return {}, {}
    if _file_cache.get("stamp") != stamp:
        prices, aliases = _read_prices_file(path)
        _file_cache.update(stamp=stamp, prices=prices, aliases=aliases)
    return _file_cache["prices"], _file_cache["aliases"]


def _file_prices() -> dict[str, Price]:
    return _file_table()[0]


_file_cache: dict = {}


# OpenAI's own snapshot names: a date (gpt-4o-mini-2024-07-18) or a four-digit one (gpt-3.5-turbo-0125).
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


def price_for(
    model: str, overrides: Mapping[str, Price] | None = None, aliases: Mapping[str, str] | None = None
) -> Price | None:
    """The price of a model: an override, then the prices file, then the table; None when unpriced.

    Dated snapshots (gpt-4o-2024-08-06) take their base model's price. Any other name that only starts
    like a known model (a deployment or proxy name such as gpt-4o-mini-json, which may be routed to
    anything) is unpriced unless `aliases` (the user's, then the prices file's) map it to a priced model.
    """
    table = {**PRICES, **_file_prices(), **(overrides or {})}
    mapped = {**_file_table()[1], **(aliases or {})}
    for _ in range(4):  # an alias may name another alias; a loop ends here
        if model in table:
            return table[model]
        base = _SNAPSHOT.sub("", model)
        if base != model and base in table:
            return table[base]
        if model not in mapped:
            return None
        model = mapped[model]
    return None


def cost(usage: Usage, price: Price | None, *, batch: bool = False) -> float | None:
    """Dollars for one usage; None when the model is unpriced (shown as such, never as $0)."""
    if price is None:
        return None
    uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
    dollars = (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + usage.completion_tokens * price.output
    ) / 1_000_000
    return dollars * BATCH_DISCOUNT if batch else dollars


def format_usd(value: float | None) -> str:
    """Dollars with enough significant digits to mean something: '$12.30', '$0.2512', '$0.0000405'.

    None means unpriced (never shown as $0)."""
    if value is None:
        return "unpriced"
    if value == 0:
        return "$0"
    size = abs(value)
    if size >= 1:
        return f"${value:,.2f}"
    if size >= 0.01:
        return f"${value:.4f}"
    digits = -math.floor(math.log10(size)) + 2  # three significant digits
    text = f"{value:.{digits}f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(4, '0')}"
