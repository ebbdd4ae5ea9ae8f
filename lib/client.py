"""The endpoint (key, base URL) and the openai client built from it: short timeouts, no SDK retries.

The engine is the one retry layer: it has to tell a billing 429 from a rate-limit 429 and slow the
whole key on the latter, which the SDK's own per-request retries cannot do. So the SDK is configured
with max_retries=0 and a per-request timeout well under a minute instead of its 600 s default.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import openai

from lib.governor import key_fingerprint

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. The key is never part of repr(), logs or exports."""

    api_key: str = field(repr=False)
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.base_url, self.api_key)

    def describe(self) -> str:
        """A safe one-liner for the UI and logs: host and masked key."""
        host = urlparse(self.base_url).netloc if self.base_url else "api.openai.com"
        return f"{host} with key {mask_key(self.api_key)}"


def mask_key(key: str | None) -> str:
    """Enough of a key to tell two apart, never enough to use: 'sk-…a1b2'."""
    if not key:
        return "(none)"
    return f"{key[:3]}…{key[-4:]}" if len(key) > 12 else "…"


def load_dotenv_once(path: Path | None = None) -> None:
    """Read `.env` (without overriding variables already set) so OPENAI_* can live there."""
    from dotenv import load_dotenv

    load_dotenv(path or Path.cwd() / ".env", override=False)


def endpoint_from_env(env: Mapping[str, str] | None = None) -> Endpoint | None:
    """The endpoint described by OPENAI_API_KEY / OPENAI_BASE_URL, or None without a key."""
    env = os.environ if env is None else env
    key = (env.get("OPENAI_API_KEY") or "").strip()
    if not key:
        return None
    return Endpoint(
        api_key=key,
        base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
        organization=env.get("OPENAI_ORG_ID") or None,
        project=env.get("OPENAI_PROJECT_ID") or None,
    )


_clients: dict[tuple[str, float, int], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def make_client(
    endpoint: Endpoint, *, timeout_s: float = DEFAULT_TIMEOUT_S, connections: int = 64
) -> openai.OpenAI:
    """A client for this endpoint, shared by runs with the same settings (keyed by a hash, not the key)."""
    cache_key = (endpoint.fingerprint, timeout_s, connections)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
            client = openai.OpenAI(
                api_key=endpoint.api_key,
                base_url=endpoint.base_url,
                organization=endpoint.organization,
                project=endpoint.project,
                timeout=httpx2.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
                max_retries=0,
                http_client=openai.DefaultHttpxClient(limits=limits),
            )
            _clients[cache_key] = client
        return client
