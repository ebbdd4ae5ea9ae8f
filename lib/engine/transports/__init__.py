"""How a request goes over the wire: one module per API, each turning a body into a typed Outcome.

A transport module (`chat` is Chat Completions) defines `make(client, *, secrets) -> Transport`. The run's
settings name it (RunSettings.transport), so adding an API (the Responses API next) is one new module
here: it takes the same chat-shaped body, sends it its own way, and parses what comes back into an
Outcome (lib.engine.outcome). Pacing, budget, retries and judging stay where they are.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Protocol

import openai

from lib.engine.outcome import Outcome

DEFAULT = "chat"


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
