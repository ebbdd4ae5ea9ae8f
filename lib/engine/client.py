"""The endpoint (key, base URL) and the openai client built from it: short timeouts, no SDK retries.

The engine is the one retry layer: it has to tell a billing 429 from a rate-limit 429 and slow the
whole key on the latter, which the SDK's own per-request retries cannot do. So the SDK is configured
with max_retries=0 and a per-request timeout well under a minute instead of its 600 s default.

Under the SDK, bytes move through lib.engine.http_transport.KeepAliveTransport (~0.93 instead of ~1.3 ms client CPU per row), unless
an environment proxy applies to the API host or LEAD_STUDIO_HTTP=httpx is set: then httpx2's default stack,
which honours HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, carries them as before.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlsplit

import httpx2
import openai

from lib.engine.governor import key_fingerprint
from lib.engine.http_transport import KeepAliveTransport

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the SDK's own default
HTTP_STACK_ENV = "LEAD_STUDIO_HTTP"  # "httpx": ops' escape hatch back to httpx2's default transport


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


def http_stack(base_url: str | None) -> str:
    """Which HTTP stack carries requests to base_url: "keepalive" (lib.engine.http_transport) or "httpx" (httpx2's).

    A custom transport turns off httpx2's environment proxies, so any proxy that would apply to the API host
    sends us back to the default stack. urllib reads the same variables httpx2 does; on NO_PROXY they differ
    only in that urllib (like curl) lets ".example.com" also match "example.com" itself.
    """
    if (os.environ.get(HTTP_STACK_ENV) or "").strip().lower() == "httpx":
        return "httpx"
    url = urlsplit(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
    proxies = urllib.request.getproxies()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return "keepalive"
    host = url.netloc.rpartition("@")[2]  # host[:port]: NO_PROXY entries may name a port
    return "keepalive" if urllib.request.proxy_bypass_environment(host, proxies) else "httpx"


@dataclass
class _Shared:
    client: openai.OpenAI
    users: int


# Keyed by a hash of the key, never the key. Each entry lives while some run uses it: a key typed in the
# app must not stay in a process-wide object after the runs that used it are gone.
_clients: dict[tuple[str, float, int, str], _Shared] = {}
_clients_lock = threading.Lock()


def make_client(
    endpoint: Endpoint, *, timeout_s: float = DEFAULT_TIMEOUT_S, connections: int = 64
) -> openai.OpenAI:
    """A client for this endpoint, shared by the runs using the same settings now. Each call counts one
    user more; `release_client` when done: the last user's release closes it and forgets it."""
    stack = http_stack(endpoint.base_url)
    cache_key = (endpoint.fingerprint, timeout_s, connections, stack)
    with _clients_lock:
        shared = _clients.get(cache_key)
        if shared is None:
            shared = _clients[cache_key] = _Shared(_new_client(endpoint, timeout_s, connections, stack), 0)
        shared.users += 1
        return shared.client


def release_client(client: openai.OpenAI) -> None:
    """One user of a client from make_client fewer; with none left it is closed (its sockets too)."""
    with _clients_lock:
        for cache_key, shared in list(_clients.items()):
            if shared.client is client:
                shared.users -= 1
                if shared.users > 0:
                    return
                del _clients[cache_key]
                break
        else:
            return
    client.close()


def shared_fingerprints() -> set[str]:
    """The key fingerprints that have a client in the shared cache now (what a test may ask)."""
    with _clients_lock:
        return {cache_key[0] for cache_key in _clients}


def _new_client(endpoint: Endpoint, timeout_s: float, connections: int, stack: str) -> openai.OpenAI:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    if stack == "keepalive":
        transport = KeepAliveTransport(max_idle=connections, keepalive_expiry=limits.keepalive_expiry)
        http_client = openai.DefaultHttpxClient(transport=transport, limits=limits)
    else:
        http_client = openai.DefaultHttpxClient(limits=limits)
    return openai.OpenAI(
        api_key=endpoint.api_key,
        # Never None: the SDK would then read OPENAI_BASE_URL itself (an empty one breaks every
        # request), and the endpoint shown to the user must be the one used.
        base_url=endpoint.base_url or DEFAULT_BASE_URL,
        organization=endpoint.organization,
        project=endpoint.project,
        timeout=httpx2.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        max_retries=0,
        http_client=http_client,
    )


@dataclass(frozen=True)
class Connection:
    """Where one browser session's requests go, and where its key came from (never the key itself)."""

    endpoint: Endpoint | None
    demo: bool
    source: str  # "typed in this session", ".env / environment", "secrets.toml", "offline demo", ""
    why_none: str = ""  # why there is no endpoint, in words, when a key exists but may not be sent

    @property
    def url(self) -> str:
        if self.endpoint is None:
            return ""
        return self.endpoint.base_url or DEFAULT_BASE_URL

    def sending_line(self) -> str:
        """'Sending to http://… with the key typed in this session (sk-…abcd).', shown by every action."""
        if self.endpoint is None:
            return self.why_none or (
                "No API key: type one in the sidebar, add OPENAI_API_KEY to .env, or use the offline demo."
            )
        if self.demo:
            return f"Sending to the offline demo server at {self.url} (simulated answers, no cost)."
        return (
            f"Sending to {self.url} with the key {self.source_words()} ({mask_key(self.endpoint.api_key)})."
        )

    def source_words(self) -> str:
        return {
            "typed in this session": "typed in this session",
            ".env / environment": "from .env / the environment",
            "secrets.toml": "from secrets.toml",
        }.get(self.source, self.source)


DEFAULT_BASE_URL = "https://api.openai.com/v1"


def choose_connection(
    *,
    demo: bool,
    demo_url: str | None,
    typed_key: str | None,
    typed_base_url: str | None,
    env: Mapping[str, str],
    secret_key: str | None = None,
) -> Connection:
    """The session's connection: the demo server, else a typed key, else the environment's or secrets' key.

    A typed endpoint wins over OPENAI_BASE_URL; with none typed, OPENAI_BASE_URL (else OpenAI) is used.
    The environment's (or secrets') key goes only to the environment's own endpoint: a typed endpoint
    needs a typed key, so a workspace link with someone's endpoint in it can never collect the team key.
    Nothing here reads session state: the app passes what this session typed, so no rerun can swap it.
    """
    if demo:
        return Connection(Endpoint(api_key="sk-local-demo", base_url=demo_url), True, "offline demo")
    env_url = (env.get("OPENAI_BASE_URL") or "").strip() or None
    typed_url = (typed_base_url or "").strip() or None
    base_url = typed_url or env_url
    org = env.get("OPENAI_ORG_ID") or None
    project = env.get("OPENAI_PROJECT_ID") or None
    typed = (typed_key or "").strip()
    if typed:
        return Connection(Endpoint(typed, base_url, org, project), False, "typed in this session")
    key = (env.get("OPENAI_API_KEY") or "").strip()
    source = ".env / environment" if key else "secrets.toml"
    key = key or (secret_key or "").strip()
    if not key:
        return Connection(None, False, "")
    if typed_url and not _same_url(typed_url, env_url or DEFAULT_BASE_URL):
        return Connection(
            None,
            False,
            "",
            f"The endpoint {typed_url} needs a key typed in this session: the key from {source} is only sent "
            f"to {env_url or DEFAULT_BASE_URL}. Type a key, or clear the endpoint.",
        )
    return Connection(Endpoint(key, base_url, org, project), False, source)


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()
