"""The models an endpoint serves as rows for people: price, tiers, effort levels, shutdown (`python -m lib models`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from lib.cost import pricing
from lib.models.catalog import model_info
from lib.models.retirement import ListedModel, format_date, retirement

CHAT_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-")
NOT_CHAT = (
    "image",
    "audio",
    "realtime",
    "tts",
    "transcribe",
    "embed",
    "whisper",
    "dall-e",
    "moderation",
    "search",
)


def is_chat_model(name: str) -> bool:
    """A model the studio can send rows to (not an image, audio or embedding model)."""
    return not any(word in name for word in NOT_CHAT)


def model_rows(
    listing: Iterable[ListedModel] | None,
    *,
    on: dt.date | None = None,
    aliases: Mapping[str, str] | None = None,
    everything: bool = False,
) -> list[dict]:
    """One row per chat model: listed by the endpoint when it lists them, else the priced models."""
    entries: Sequence[ListedModel]
    if listing is None:
        entries = [ListedModel(name) for name in sorted(pricing.known_models())]
    else:
        entries = sorted(listing, key=lambda m: m.id)
    rows = []
    for entry in entries:
        if not everything and not is_chat_model(entry.id):
            continue
        info = model_info(entry.id)
        price = pricing.price_for(entry.id, aliases=aliases)
        status = retirement(entry.id, listing=[entry] if listing is not None else None, on=on)
        tiers = [
            t for t in ("flex", "priority", "fast") if pricing.price_for(entry.id, tier=t, aliases=aliases)
        ]
        rows.append(
            {
                "model": entry.id,
                "input_per_1m": price.input if price else None,
                "cached_input_per_1m": price.cached_input if price else None,
                "output_per_1m": price.output if price else None,
                "tiers": ["default", *tiers, "batch"] if price else [],
                "reasoning_efforts": list(info.efforts),
                "known_shape": info.known,
                "shutdown_date": status.date.isoformat() if status.date else None,
                "state": status.state,
                "replacement": status.replacement,
                "note": _note(status, info.known),
            }
        )
    return rows


def _note(status, known: bool) -> str:
    if status.state != "current" and status.date is not None:
        verb = "shut down" if status.retired else "shuts down"
        suggest = f"; suggested: {status.replacement}" if status.replacement else ""
        return f"{verb} {format_date(status.date)}{suggest}"
    return "" if known else "shape learnt from the server"
