"""Web research as a prompt option: the web_search tool a row's request carries, and its limits.

A prompt file asks for it with `tools: [web_search]` (optional: `max_tool_calls`, `search_context_size:
low | medium | high`, `user_location: {country: DE, city: Berlin}`); the Prompt page's switch and the command
line's `--web-search` turn it on for a run, `--max-tool-calls N` (the run's setting, default 3) caps the
billed calls of one request. The request gets `tools: [{"type": "web_search", ...}]` and `max_tool_calls`,
which only the Responses API serves (lib.engine.transports.choose sends such a run through it).
A packed request (several rows) may make `max_tool_calls` calls per row it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lib.models.catalog import web_search_defaults

if TYPE_CHECKING:
    from lib.prompts.templates import PromptSpec

WEB_SEARCH = "web_search"
TOOLS = (WEB_SEARCH,)
CONTEXT_SIZES = ("low", "medium", "high")
LOCATION_KEYS = ("country", "region", "city", "timezone")
MAX_TOOL_CALLS = 20  # a setting above this is a typo, not a research plan


@dataclass(frozen=True)
class WebSearch:
    """A run's web research: the most billed calls one row may make, the context size, the location."""

    max_tool_calls: int = 3
    context_size: str | None = None  # None: the API's default (medium)
    location: tuple[tuple[str, str], ...] = ()

    def body_fields(self, rows: int = 1) -> dict[str, Any]:
        """What a request of `rows` rows carries: the tool and its cap (per row, for a packed request)."""
        tool: dict[str, Any] = {"type": WEB_SEARCH}
        if self.context_size:
            tool["search_context_size"] = self.context_size
        if self.location:
            tool["user_location"] = {"type": "approximate", **dict(self.location)}
        return {"tools": [tool], "max_tool_calls": self.max_tool_calls * max(1, rows)}

    @property
    def content_tokens_per_call(self) -> int:
        """The most search content (billed as input) one call may bring, as the catalog reckons it."""
        return web_search_defaults().tokens_per_call(self.context_size)


def default_max_tool_calls() -> int:
    return web_search_defaults().default_max_tool_calls


def of_spec(
    spec: PromptSpec,
    *,
    enabled: bool | None = None,
    max_tool_calls: int | None = None,
    context_size: str | None = None,
) -> WebSearch | None:
    """The run's web research: the prompt's (`tools: [web_search]`), turned on or off by `enabled`, its
    cap and size overridden by the run's settings; None when the rows are sent without it."""
    on = WEB_SEARCH in spec.tools if enabled is None else enabled
    if not on:
        return None
    return WebSearch(
        max_tool_calls=int(max_tool_calls or spec.max_tool_calls or default_max_tool_calls()),
        context_size=context_size or spec.search_context_size,
        location=tuple(spec.user_location),
    )


def allowance(body: Mapping[str, Any]) -> tuple[int, int]:
    """(the most web search calls, the most search content tokens per call) a request body may be billed
    for: (0, 0) without the tool. For the budget's worst case and the quote."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return 0, 0
    searches = [t for t in tools if isinstance(t, Mapping) and str(t.get("type", "")).startswith(WEB_SEARCH)]
    if not searches:
        return 0, 0
    calls = body.get("max_tool_calls")
    most = int(calls) if isinstance(calls, int) and calls > 0 else MAX_TOOL_CALLS
    size = searches[0].get("search_context_size")
    return most, web_search_defaults().tokens_per_call(size if isinstance(size, str) else None)


def prompt_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The web research fields of a prompt file's mapping, checked (ValueError naming the field):
    tools, max_tool_calls, search_context_size, user_location, one_answer_per."""
    tools = data.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise ValueError("field 'tools' must be a list such as [web_search]")
    calls = data.get("max_tool_calls")
    if calls is not None and (
        isinstance(calls, bool) or not isinstance(calls, int) or not 1 <= calls <= MAX_TOOL_CALLS
    ):
        raise ValueError(
            f"field 'max_tool_calls' must be a whole number from 1 to {MAX_TOOL_CALLS}, not {calls!r}"
        )
    size = data.get("search_context_size")
    if size is not None and size not in CONTEXT_SIZES:
        raise ValueError(
            f"field 'search_context_size' must be one of {', '.join(CONTEXT_SIZES)} (got {size!r})"
        )
    keyed = data.get("one_answer_per")
    if keyed is not None and not isinstance(keyed, str):
        raise ValueError(f"field 'one_answer_per' must be text (a placeholder's name), not {keyed!r}")
    return {
        "tools": check_tools(tools),
        "max_tool_calls": calls,
        "search_context_size": size,
        "user_location": parse_location(data.get("user_location")),
        "one_answer_per": (keyed or "").strip() or None,
    }


def parse_location(data: object) -> tuple[tuple[str, str], ...]:
    """`user_location` from a prompt file: {country, region, city, timezone}, each text."""
    if data is None:
        return ()
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError("field 'user_location' must be a mapping such as {country: DE, city: Berlin}")
    unknown = [k for k in data if k not in LOCATION_KEYS]
    if unknown:
        raise ValueError(f"field 'user_location' has '{unknown[0]}' (known: {', '.join(LOCATION_KEYS)})")
    return tuple((str(k), str(v)) for k, v in data.items() if str(v).strip())


def check_tools(tools: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise ValueError(f"field 'tools' names '{unknown[0]}' (known: {', '.join(TOOLS)})")
    return tuple(tools)
