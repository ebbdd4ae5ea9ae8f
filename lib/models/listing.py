"""An endpoint's own model list (GET /v1/models), kept a day in the store; quiet when an endpoint has none."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx2
import openai

from lib.models.retirement import ListedModel

DEFAULT_BASE_URL = "https://api.openai.com/v1"

if TYPE_CHECKING:
    from lib.engine.client import Endpoint
    from lib.store import Store

KEEP_S = 24 * 3600.0
TIMEOUT_S = 5.0


def endpoint_key(base_url: str | None) -> str:
    """How an endpoint is named in the store: its URL without credentials, query or trailing slash."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def fetch_models(
    endpoint: Endpoint, *, store: Store | None = None, max_age_s: float = KEEP_S, refresh: bool = False
) -> list[ListedModel] | None:
    """The endpoint's models, from the store when fetched in the last `max_age_s`; None when it lists none
    (a 404, a gateway without the route, no connection): nothing is said about models then."""
    key = endpoint_key(endpoint.base_url)
    if store is not None and not refresh:
        kept = store.models_listing(key, max_age_s)
        if kept is not None:
            return [ListedModel.from_json(m) for m in kept]
    from lib.engine.client import make_client

    client = make_client(endpoint, timeout_s=TIMEOUT_S, connections=2)
    try:
        raw = client.get("/models", cast_to=httpx2.Response, options={"timeout": TIMEOUT_S})
        data = json.loads(raw.content)
        entries = [
            ListedModel.from_json(m) for m in data.get("data") or () if isinstance(m, dict) and m.get("id")
        ]
    except (openai.APIError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if store is not None:
        try:
            store.save_models_listing(key, [m.to_json() for m in entries])
        except Exception:  # a cache: a failing disk costs one more request tomorrow, nothing else
            pass
    return entries
