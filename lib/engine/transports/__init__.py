"""How a request goes over the wire: one module per API, each turning a body into a typed Outcome.

A transport module (`chat` is Chat Completions, `responses` the Responses API) defines
`make(client, *, secrets) -> Transport`. The run's settings name it (RunSettings.transport), so adding an
API is one new module here: it takes the same chat-shaped body, sends it its own way, and parses what
comes back into an Outcome (lib.engine.outcome). Pacing, budget, retries and judging stay where they are.

`choose` picks the API a run goes through: the Responses API on OpenAI's own endpoint (and hosts named in
LEAD_STUDIO_RESPONSES_HOSTS), Chat Completions elsewhere (most OpenAI-compatible servers serve only that);
a setting (`--api`, the sidebar) overrides it, and web research needs the Responses API.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

import openai

from lib.engine.outcome import Outcome

DEFAULT = "chat"
APIS = ("responses", "chat")
RESPONSES_HOSTS = ("api.openai.com",)
RESPONSES_HOSTS_ENV = "LEAD_STUDIO_RESPONSES_HOSTS"  # more hosts that serve /v1/responses, comma-separated
LABELS = {"responses": "Responses API", "chat": "Chat Completions"}


class Transport(Protocol):
    def send(self, body: Mapping, *, row_id: int, timeout: float) -> Outcome:
        """Send one request (the body as the server should see it) and say what came back."""
        ...


def names() -> list[str]:
    """The transports this release has."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def make(name: str, client: openai.OpenAI, *, secrets: Iterable[str] = ()) -> Transport:
    """The transport called `name` over `client`; `secrets` (the key in use) never appear in a message."""
    if name not in names():
        raise ValueError(f"Unknown transport '{name}': use one of {', '.join(names())}.")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.make(client, secrets=tuple(secrets))


def default_api(base_url: str | None) -> str:
    """The API an endpoint is sent through unless a setting says otherwise: responses where it is served."""
    host = (urlsplit(base_url).hostname or "") if base_url else RESPONSES_HOSTS[0]
    extra = [h.strip().lower() for h in os.environ.get(RESPONSES_HOSTS_ENV, "").split(",") if h.strip()]
    return "responses" if host.lower() in (*RESPONSES_HOSTS, *extra) else "chat"


def choose(base_url: str | None, wanted: str | None = None, *, web_search: bool = False) -> str:
    """The API a run goes through: `wanted` ("responses" | "chat"; None or "auto": the endpoint's default).
    Web research forces the Responses API; asking for chat with it is refused (ValueError, in words)."""
    if wanted in (None, "", "auto"):
        wanted = None
    elif wanted not in APIS:
        raise ValueError(f"Unknown API '{wanted}': use responses or chat.")
    if web_search:
        if wanted == "chat":
            raise ValueError(
                "Web research needs the Responses API (its web_search tool), and Chat Completions was chosen. "
                "Choose the Responses API (--api responses) or switch web research off."
            )
        return "responses"
    return wanted or default_api(base_url)
