"""Per-model prices (per service tier) and the cost of a response's usage, in US dollars.

Prices come from genai-prices, a price database kept for this purpose and shipped inside the package (no
network at run time: its optional auto-update is never started here). It prices service tiers (flex,
priority), the Batch API, cache reads and, for the models that bill them, cache writes. Three overrides win
over it, in this order: a price given for this run (sidebar, `--price-*`), the team's LEAD_STUDIO_PRICES
file, then the database. A name none of them knows stays unpriced (shown as such, never as $0).
A deployment name (an Azure deployment, a gateway alias) is mapped to the model it runs by `aliases`,
one lookup before the price lookup.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

BATCH_DISCOUNT = 0.5  # the Batch API bills half of both input and output
FLEX_DISCOUNT = 0.5  # flex bills at batch rates (OpenAI's flex processing guide)
TIERS = ("default", "flex", "priority", "fast")  # what a response's `service_tier` can say served it
REQUEST_TIERS = ("default", "flex", "priority", "fast", "auto")  # what a run may ask for
PRICES_FILE_ENV = "LEAD_STUDIO_PRICES"
_PROVIDER = "openai"


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M uncached prompt tokens
    cached_input: float  # USD per 1M cached prompt tokens (cache reads)
    output: float  # USD per 1M completion tokens (reasoning tokens included)
    cache_write: float | None = None  # USD per 1M prompt tokens written to the cache; None: billed as input
    # Long prompts: a request whose prompt has more than `long_above` tokens is billed, whole, at the input
    # prices times `long_input` and the output price times `long_output` (gpt-6: over 272K, 2x and 1.5x).
    long_above: int | None = None
    long_input: float = 1.0
    long_output: float = 1.0
    # USD per web search call (the Responses API's web_search tool, hidden sub-searches included); the
    # same at every tier (OpenAI bills tool calls at their own price, never at the batch or flex discount).
    # None (a price given without one): the catalog's list price (lib/models/catalog.yaml, web_search).
    web_search_call: float | None = None

    @property
    def per_search_call(self) -> float:
        """USD per web search call: this price's own, else the catalog's."""
        if self.web_search_call is not None:
            return self.web_search_call
        from lib.models.catalog import web_search_defaults

        return web_search_defaults().call_usd

    def scaled(self, factor: float) -> Price:
        """This price's tokens times `factor` (flex and batch from a standard override); tool calls as they are."""
        write = self.cache_write * factor if self.cache_write is not None else None
        return Price(
            self.input * factor,
            self.cached_input * factor,
            self.output * factor,
            write,
            self.long_above,
            self.long_input,
            self.long_output,
            self.web_search_call,
        )

    def for_prompt(self, prompt_tokens: int) -> Price:
        """The price a request with this many prompt tokens is billed at (the long-prompt rates past the line)."""
        if self.long_above is None or prompt_tokens <= self.long_above:
            return self
        write = self.cache_write * self.long_input if self.cache_write is not None else None
        return Price(
            self.input * self.long_input,
            self.cached_input * self.long_input,
            self.output * self.long_output,
            write,
            web_search_call=self.web_search_call,
        )


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the cache
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0  # prompt tokens written to the cache (billed above input by newer models)
    # Billed web search calls (tool_usage.web_search.num_requests: hidden sub-searches included); the search
    # content they brought is in prompt_tokens, as the API bills it.
    web_search_calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.web_search_calls + other.web_search_calls,
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
            int(prompt_details.get("cache_write_tokens") or usage.get("cache_write_tokens") or 0),
        )

    @classmethod
    def from_responses(cls, usage: Mapping | None, tool_usage: Mapping | None = None) -> Usage:
        """From a Responses API answer's `usage` (input/output tokens) and `tool_usage` (billed calls).

        Web search calls are read from `tool_usage.web_search.num_requests`, what OpenAI bills, never by
        counting `web_search_call` output items: hidden sub-searches are billed and have no item."""
        usage = usage or {}
        input_details = usage.get("input_tokens_details") or {}
        output_details = usage.get("output_tokens_details") or {}
        search = ((tool_usage or {}).get("web_search") or {}) if isinstance(tool_usage, Mapping) else {}
        return cls(
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            int(input_details.get("cached_tokens") or 0),
            int(output_details.get("reasoning_tokens") or 0),
            int(input_details.get("cache_write_tokens") or 0),
            int(search.get("num_requests") or 0) if isinstance(search, Mapping) else 0,
        )


# --- the database ------------------------------------------------------------------------------------


@cache
def _provider() -> Any:
    """genai-prices' bundled OpenAI data (loaded once, ~0.3 s; never its network auto-update)."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    return snapshot, next(p for p in snapshot.providers if p.id == _PROVIDER)


def _number(value: Any) -> float | None:
    """A per-1M price as float; a context-length tiered price gives its base (lead rows are far below it)."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    base = getattr(value, "base", None)
    return float(base) if base is not None else None


@cache
def _model(model: str) -> Any:
    snapshot, _ = _provider()
    try:
        return snapshot.find_provider_model(model, None, _PROVIDER, None)[1]
    except LookupError:
        return None


def _variant_keys(info: Any) -> set[str]:
    now = dt.datetime.now(dt.UTC)
    keys = set()
    for variant in info.price_variants or ():
        if variant.constraint is None or variant.constraint.active(now):
            keys.update(f"{k}={v}" for k, v in variant.when.items())
    return keys


def _db_price(model: str, tier: str) -> Price | None:
    """The database's price of `model` at `tier` ("default", "flex", "priority" or "batch"), or None."""
    info = _model(model)
    if info is None or _base_name(str(info.id)) != _base_name(model):
        return None  # matched by a looser rule (a prefix): not the model this name runs, maybe
    key, value = ("processing", "batch") if tier == "batch" else ("service_tier", tier)
    if tier != "default" and f"{key}={value}" not in _variant_keys(info):
        return None  # the database has no such price for this model (flex unsupported, say)
    prices = info.get_prices(dt.datetime.now(dt.UTC), {key: value} if tier != "default" else None)
    inp, out = _number(prices.input_mtok), _number(prices.output_mtok)
    if inp is None or out is None:
        return None
    cached = _number(getattr(prices, "cache_read_mtok", None))
    write = _number(getattr(prices, "cache_write_mtok", None))
    above, long_in, long_out = _long_prompt(prices.input_mtok, prices.output_mtok)
    searches = _number(getattr(prices, "web_searches_kcount", None))
    per_call = searches / 1000 if searches is not None else None
    return Price(inp, inp if cached is None else cached, out, write, above, long_in, long_out, per_call)


def _long_prompt(inp: Any, out: Any) -> tuple[int | None, float, float]:
    """(threshold, input factor, output factor) of a price tiered by prompt length, or (None, 1, 1)."""
    tiers_in, tiers_out = getattr(inp, "tiers", None), getattr(out, "tiers", None)
    if not tiers_in:
        return None, 1.0, 1.0
    first = tiers_in[0]
    base_in = float(inp.base) or 1.0
    factor_out = 1.0
    if tiers_out and float(out.base):
        factor_out = float(tiers_out[0].price) / float(out.base)
    return int(first.start), float(first.price) / base_in, factor_out


@cache
def data_date() -> str:
    """The newest date (not after today) a price in the database takes effect: how current the prices are."""
    _, provider = _provider()
    dates: list[dt.date] = []
    for info in provider.models:
        for variant in info.price_variants or ():
            start = getattr(variant.constraint, "start_date", None)
            if start is not None:
                dates.append(start)
        if isinstance(info.prices, list):
            dates += [
                p.constraint.start_date for p in info.prices if getattr(p.constraint, "start_date", None)
            ]
    today = dt.datetime.now(dt.UTC).date()
    dates = [d for d in dates if d <= today]
    return max(dates).isoformat() if dates else "unknown"


DATA_SOURCE = f"genai-prices {version('genai-prices')}"


def __getattr__(name: str) -> Any:
    # Module attributes built on first use, so importing this module does not load the database.
    if name == "PRICES_READ_ON":
        return data_date()
    if name == "PRICES":
        return known_models()
    raise AttributeError(name)


@cache
def _known_models() -> tuple[tuple[str, Price], ...]:
    _, provider = _provider()
    out = []
    for info in provider.models:
        name = info.id
        if (
            not name.startswith(("gpt-", "o1", "o3", "o4", "chatgpt"))
            or "ft:" in name
            or ":" in name
            or ".ft-" in name
        ):
            continue
        if any(
            w in name for w in ("image", "audio", "realtime", "tts", "transcribe", "search", "live", "embed")
        ):
            continue
        price = _db_price(name, "default")
        if price is not None and not info.deprecated:
            out.append((name, price))
    return tuple(out)


def known_models() -> dict[str, Price]:
    """Chat models the database prices (standard tier), for the model picker."""
    return {**dict(_known_models()), **{k: v for k, v in _file_prices().items() if "@" not in k}}


# --- overrides ---------------------------------------------------------------------------------------


ALIASES_KEY = "aliases"


def load_prices(path: str | os.PathLike) -> dict[str, Price]:
    """A prices file: JSON {"model": {"input": 0.15, "cached_input": 0.075, "output": 0.6}} per 1M tokens.

    A key "model@flex" (or @priority, @batch) prices one tier; without one, flex and batch are half the
    model's entry. "cache_write" is optional (absent: cache writes bill as input). The file may also map
    deployment or proxy names to a priced model: {"aliases": {"gpt-4o-mini-json": "gpt-4o-mini"}}.
    """
    return _read_prices_file(path)[0]


def _read_prices_file(path: str | os.PathLike) -> tuple[dict[str, Price], dict[str, str]]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        aliases = data.pop(ALIASES_KEY, None) or {}
        prices = {
            str(model): Price(
                float(p["input"]),
                float(p.get("cached_input", p["input"])),
                float(p["output"]),
                float(p["cache_write"]) if p.get("cache_write") is not None else None,
                web_search_call=(
                    float(p["web_search_per_1k"]) / 1000 if p.get("web_search_per_1k") is not None else None
                ),
            )
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


def _base_name(model: str) -> str:
    return _SNAPSHOT.sub("", model)


def _lookup(table: Mapping[str, Price], model: str) -> Price | None:
    """An exact entry, else the entry of the snapshot's base model (gpt-4o-2024-08-06 -> gpt-4o).

    Any other name that only starts like a known model (a deployment or proxy name such as
    gpt-4o-mini-json, which may be routed to anything) finds nothing: it is priced only when mapped."""
    if model in table:
        return table[model]
    return table.get(_base_name(model))


def _resolve(model: str, aliases: Mapping[str, str] | None) -> str | None:
    """Follow the user's aliases, then the prices file's, to the model a name runs; None for a loop."""
    mapped = {**_file_table()[1], **(aliases or {})}
    seen = set()
    while model in mapped:
        if model in seen or len(seen) > 8:
            return None
        seen.add(model)
        model = mapped[model]
    return model


def _from_table(table: Mapping[str, Price], model: str, tier: str) -> Price | None:
    """An override table's price for this tier: its "@tier" entry, else flex/batch as half the model's."""
    if tier != "default":
        exact = table.get(f"{model}@{tier}")
        if exact is not None:
            return exact
        base = _lookup(table, model)
        if base is not None:
            if tier in ("flex", "batch"):
                return base.scaled(FLEX_DISCOUNT if tier == "flex" else BATCH_DISCOUNT)
            return None  # a priority price cannot be derived from a standard override
        return None
    return _lookup(table, model)


def price_for(
    model: str,
    overrides: Mapping[str, Price] | None = None,
    *,
    tier: str = "default",
    aliases: Mapping[str, str] | None = None,
) -> Price | None:
    """The price of a model at a tier: an override, then the prices file, then the database; else None.

    `aliases` maps a deployment name to the model it runs (looked up first). "auto" is priced as default
    (the response says which tier really served it; price the answer by that).
    """
    resolved = _resolve(model, aliases)
    if resolved is None:
        return None
    model = resolved
    tier = "default" if tier in ("auto", None, "") else tier
    for table in (overrides or {}, _file_prices()):
        found = _from_table(table, model, tier)
        if found is not None or _lookup(table, model) is not None:
            return found  # an overridden model is never priced from the database underneath
    return _db_price(model, tier)


def web_search_call_price(model: str) -> float:
    """USD per web search call of `model`: the database's, else the catalog's (OpenAI's list price)."""
    found = _db_price(model, "default")
    if found is not None and found.web_search_call is not None:
        return found.web_search_call
    from lib.models.catalog import web_search_defaults

    return web_search_defaults().call_usd


def tier_prices(
    model: str,
    base: Price | None = None,
    *,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Price | None]:
    """Every tier's price for a run: `base` (the run's own price, if given) overrides the standard one."""
    overrides = {model: base} if base is not None else None
    return {tier: price_for(model, overrides, tier=tier, aliases=aliases) for tier in (*TIERS, "batch")}


def supports_flex(model: str, aliases: Mapping[str, str] | None = None) -> bool:
    """Whether the database prices flex for this model (OpenAI offers flex on some models only)."""
    model = _resolve(model, aliases) or model
    if f"{model}@flex" in _file_prices():
        return True
    return _db_price(model, "flex") is not None


def cost(usage: Usage, price: Price | None, *, batch: bool = False) -> float | None:
    """Dollars for one usage; None when the model is unpriced (shown as such, never as $0).

    `batch` halves a standard price (the Batch API); pass a tier's own price instead where one is known.
    """
    if price is None:
        return None
    price = price.for_prompt(usage.prompt_tokens)
    written = usage.cache_write_tokens
    uncached = max(usage.prompt_tokens - usage.cached_tokens - written, 0)
    write_price = price.cache_write if price.cache_write is not None else price.input
    dollars = (
        uncached * price.input
        + usage.cached_tokens * price.cached_input
        + written * write_price
        + usage.completion_tokens * price.output
    ) / 1_000_000
    if batch:
        dollars *= BATCH_DISCOUNT
    if usage.web_search_calls:  # tool calls at their own price, at every tier
        dollars += usage.web_search_calls * price.per_search_call
    return dollars


def search_cost(calls: int, price: Price | None) -> float | None:
    """Dollars for `calls` web search calls (the tool's part of a cost); None when unpriced."""
    if price is None:
        return None
    return calls * price.per_search_call


def caching_saved(usage: Usage, price: Price | None) -> float | None:
    """What prompt caching saved on this usage: cache reads at input price less what they cost, less the
    extra that cache writes cost over plain input (negative when writes outweigh reads)."""
    if price is None:
        return None
    write_price = price.cache_write if price.cache_write is not None else price.input
    saved = usage.cached_tokens * (price.input - price.cached_input)
    extra = usage.cache_write_tokens * (write_price - price.input)
    return (saved - extra) / 1_000_000


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
