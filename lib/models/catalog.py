"""What each model family accepts and when a model shuts down, read from catalog.yaml (data a release updates)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
# OpenAI's snapshot names: a date (gpt-4o-mini-2024-07-18) or a four-digit one (gpt-3.5-turbo-0125).
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str | None  # the catalog's prefix that matched; None for a name the catalog does not know
    reasoning: bool  # hidden reasoning tokens, billed as output; takes reasoning_effort
    token_param: str  # "max_completion_tokens" or "max_tokens"
    supports_temperature: bool
    efforts: tuple[str, ...]  # reasoning_effort values it takes (empty: not a reasoning model)
    default_effort: str | None  # what the model uses when no effort is sent
    supports_json_schema: bool
    context_window: int
    max_output: int
    tiers: tuple[str, ...]  # service tiers besides default
    chat_tools: str  # always | effort_none | never

    @property
    def known(self) -> bool:
        return self.family is not None

    @property
    def uses_max_completion_tokens(self) -> bool:
        return self.token_param == "max_completion_tokens"


@dataclass(frozen=True)
class WebSearchDefaults:
    """What the catalog says of the web_search tool where the price data is silent (see catalog.yaml)."""

    call_usd: float  # USD per billed call
    content_tokens: Mapping[str, int]  # search_context_size -> the most input tokens one call brings
    default_context_size: str
    default_max_tool_calls: int

    def tokens_per_call(self, size: str | None) -> int:
        """The search content one call may bring at `size` (None: the default size)."""
        return int(
            self.content_tokens.get(size or self.default_context_size, max(self.content_tokens.values()))
        )


@dataclass(frozen=True)
class Shutdown:
    date: dt.date
    replacement: str | None


@functools.cache
def _data() -> Mapping[str, Any]:
    return yaml.safe_load(CATALOG_FILE.read_text("utf-8"))


def as_of() -> str:
    """When the catalog's facts were read (shown beside shutdown warnings)."""
    return str(_data().get("as_of", "unknown"))


@functools.cache
def web_search_defaults() -> WebSearchDefaults:
    raw = _data().get("web_search") or {}
    sizes = {str(k): int(v) for k, v in (raw.get("content_tokens") or {"medium": 4000}).items()}
    return WebSearchDefaults(
        call_usd=float(raw.get("call_usd", 0.01)),
        content_tokens=sizes,
        default_context_size=str(raw.get("default_context_size", "medium")),
        default_max_tool_calls=int(raw.get("default_max_tool_calls", 3)),
    )


def default_model() -> str:
    return str(_data()["default_model"])


def default_effort() -> str:
    return str(_data().get("default_effort", "none"))


def effort_ladder() -> tuple[str, ...]:
    return tuple(_data()["effort_ladder"])


def base_name(model: str) -> str:
    """A dated snapshot's base model (gpt-4o-mini-2024-07-18 -> gpt-4o-mini); other names unchanged."""
    return _SNAPSHOT.sub("", model)


def _family(model: str) -> str | None:
    families = _data()["families"]
    return max((p for p in families if model.startswith(p)), key=len, default=None)


@functools.lru_cache(maxsize=512)
def model_info(name: str) -> ModelInfo:
    """The catalog's view of a model; a name it does not know gets the classic chat shape (see `unknown`)."""
    family = _family(name)
    raw = _data()["families"][family] if family else _data()["unknown"]
    reasoning = bool(raw.get("reasoning"))
    return ModelInfo(
        name=name,
        family=family,
        reasoning=reasoning,
        token_param=str(raw.get("token_param", "max_tokens")),
        supports_temperature=bool(raw.get("temperature", True)),
        efforts=tuple(raw.get("efforts") or ()) if reasoning else (),
        default_effort=raw.get("default_effort") if reasoning else None,
        supports_json_schema=bool(raw.get("json_schema")),
        context_window=int(raw.get("context_window", 128_000)),
        max_output=int(raw.get("max_output", 16_384)),
        tiers=tuple(raw.get("tiers") or ()),
        chat_tools=str(raw.get("chat_tools", "always")),
    )


def shutdown(model: str) -> Shutdown | None:
    """The catalog's shutdown date and suggested replacement for a model (or its snapshot's base)."""
    table = _data().get("shutdowns") or {}
    entry = table.get(model) or table.get(base_name(model))
    if not entry:
        return None
    return Shutdown(dt.date.fromisoformat(str(entry["date"])), entry.get("replacement"))


def nearest_effort(wanted: str, accepted: Sequence[str]) -> str | None:
    """The accepted effort closest to `wanted` on the ladder; on a tie, the cheaper one."""
    if not accepted:
        return None
    if wanted in accepted:
        return wanted
    ladder = list(effort_ladder())
    rank = {e: i for i, e in enumerate(ladder)}
    target = rank.get(wanted, rank["medium"])
    return min(accepted, key=lambda e: (abs(rank.get(e, len(ladder)) - target), rank.get(e, len(ladder))))


def effort_for(model: str, wanted: str | None, accepted: Sequence[str] | None = None) -> str | None:
    """The reasoning_effort to send: None for a model that does not reason; `wanted` when accepted; else the
    nearest accepted. No wish (None or "auto") means the catalog's default: "none" where the model takes it,
    else the lowest effort it takes."""
    info = model_info(model)
    efforts = tuple(accepted) if accepted else info.efforts
    if not efforts:
        return None
    if wanted in (None, "", "auto"):
        wanted = default_effort()
        if wanted not in efforts:
            ladder = effort_ladder()
            return min(efforts, key=lambda e: ladder.index(e) if e in ladder else len(ladder))
    return nearest_effort(str(wanted), efforts)
