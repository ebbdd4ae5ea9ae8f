"""What the pages show of models: the picker's choices and labels, effort choices, shutdown warnings."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from lib import models
from lib.cost import pricing
from lib.models import ListedModel
from lib.models.retirement import format_date
from lib.models.table import is_chat_model
from lib.views.labels import price_label

AUTO = "auto"
EFFORT_WORDS = {
    AUTO: "auto (the cheapest it takes)",
    "none": "none (no hidden thinking)",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}


def model_choices(current: str | None, listing: Sequence[ListedModel] | None = None) -> list[str]:
    """The default first, then every priced (or listed) chat model that still answers; the current choice
    stays even when it is shut down, so the picker shows what the workspace holds."""
    names = set(pricing.PRICES)
    if listing is not None:
        names |= {m.id for m in listing if is_chat_model(m.id)}
    live = [n for n in names if not models.retirement(n, listing=listing).retired]
    ordered = [models.DEFAULT_MODEL, *sorted(n for n in live if n != models.DEFAULT_MODEL)]
    if current and current not in ordered:
        ordered.append(current)
    return ordered


def model_label(
    name: str, aliases: Mapping[str, str] | None = None, listing: Sequence[ListedModel] | None = None
) -> str:
    """The price label, with '· shuts down 14 Jan 2027' or '· shut down' where it applies."""
    label = price_label(name, aliases)
    status = models.retirement(name, listing=listing)
    if status.retired:
        return f"{label} · shut down"
    if status.retiring and status.date:
        return f"{label} · shuts down {format_date(status.date)}"
    return label


def effort_choices(model: str) -> list[str]:
    """'auto' and the efforts this model takes (the catalog's; every word for a model it does not know)."""
    info = models.model_info(model)
    efforts = info.efforts if info.known else tuple(e for e in models.effort_ladder())
    return [AUTO, *efforts]


def effort_note(model: str, wanted: str | None) -> str:
    """What will be sent, in words: 'Sent as none: no hidden thinking.' or why nothing is sent."""
    info = models.model_info(model)
    if info.known and not info.reasoning:
        return f"{model} does not reason: no effort is sent."
    chosen = models.effort_for(model, wanted)
    if chosen is None:  # a name the catalog does not know: sent once the server says it reasons
        return "Sent if the server says this model reasons (it then tells which efforts it takes)."
    thinking = "no hidden thinking" if chosen == "none" else "hidden thinking is billed as output tokens"
    asked = f" ({wanted} is not one it takes)" if wanted not in (None, AUTO, chosen) else ""
    return f"Sent as {chosen}{asked}: {thinking}."


# --- the endpoint's model list, without blocking a page on an endpoint that does not answer -----------------

_NO_LIST_S = 600.0  # an endpoint that did not answer /v1/models is not asked again for this long
_failed: dict[str, float] = {}
_failed_lock = threading.Lock()


def listing_for(endpoint, store) -> list[ListedModel] | None:
    """The endpoint's models (kept a day in the store); None when it lists none or did not answer lately."""
    from lib.models.listing import endpoint_key, fetch_models

    if endpoint is None:
        return None
    key = endpoint_key(endpoint.base_url)
    with _failed_lock:
        if time.monotonic() - _failed.get(key, -1e9) < _NO_LIST_S:
            return None
    found = fetch_models(endpoint, store=store)
    if found is None:
        with _failed_lock:
            _failed[key] = time.monotonic()
    return found


def retirement_warning(model: str, listing: Sequence[ListedModel] | None = None) -> tuple[str, str] | None:
    """('error' | 'warning', text) for a model that is shut down or shutting down; None otherwise."""
    status = models.retirement(model, listing=listing)
    if status.retired:
        return "error", f"{status.words()} Choose another model before starting: nothing would be answered."
    if status.retiring:
        extra = " Try the prompt on it in the workbench first." if status.replacement else ""
        return "warning", f"{status.words()}{extra}"
    return None
