"""What the pages say about web research and the API a run goes through (pure: words from lib objects)."""

from __future__ import annotations

from lib.engine import runs, transports
from lib.prompts import research
from lib.prompts.templates import PromptSpec


def research_text(spec: PromptSpec, options: runs.RunOptions, base_url: str | None) -> tuple[bool, str]:
    """(fine, words): which API the rows go through and what web research and one answer per company do;
    fine is False (the words say why) when the choice cannot work (web research on Chat Completions)."""
    web = research.of_spec(
        spec,
        enabled=options.web_search,
        max_tool_calls=options.max_tool_calls,
        context_size=options.search_context_size,
    )
    try:
        api = transports.choose(base_url, options.api, web_search=web is not None)
    except ValueError as exc:
        return False, str(exc)
    words = f"Sent through the {transports.LABELS[api]}"
    if web is not None:
        words += (
            f", with web research: up to {web.max_tool_calls} billed searches a row, each answer's cited pages "
            "in a sources column"
        )
        if transports.default_api(base_url) == "chat" and options.api is None:
            words += (
                " (this endpoint is otherwise sent Chat Completions; web research needs the Responses API)"
            )
    keyed = options.one_answer_per if options.one_answer_per is not None else spec.one_answer_per
    if keyed:
        words += f"; one answer per {keyed}: the rows of one company share it, paid once"
    return True, words + "."


def searches_text(snap) -> str | None:
    """'312 web searches billed, ...' for a run that searched the web (None for one that did not)."""
    calls = getattr(snap, "web_search_calls", 0)
    if not calls:
        return None
    return f"{calls:,} web search{'es' if calls != 1 else ''} billed, priced in the cost above."
