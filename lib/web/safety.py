"""Which website addresses may be read, and a network layer that connects only to addresses it checked.

The addresses come from uploaded lead files, so a row saying `http://10.0.0.5/admin` or a public name
that resolves to the company's intranet must never be fetched from inside the company's network. The
check runs where the socket is opened: the host is resolved once, every address is judged, and the
connection goes to one of those very addresses (an IP literal), so a name that answers differently a
moment later (DNS rebinding) changes nothing. Every redirect hop opens its connection through the same
place. Hosts named in the allow list (intranet sites an admin chose) skip the address check.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore2

Resolver = Callable[[str], Sequence[str]]  # host -> its IP addresses, as text
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class BadAddress(Exception):
    """The cell is not a website address this fetcher will read; the message says why, in plain words."""


class AddressRefused(Exception):
    """The host resolves to an address that must not be reached from here (private, loopback...)."""


def default_resolver(host: str) -> list[str]:
    """The system's resolver: every address of `host` (IPv4 and IPv6), each once."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore2.ConnectError(f"name does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(ip: IP) -> IP:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, NAT64, 6to4): judged as that one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if any(ip in net for net in _NAT64):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip in _SIXTOFOUR and ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def refusal(address: str) -> str | None:
    """Why this address must not be reached ("a private network address"), or None when it is public."""
    try:
        ip = _embedded_v4(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return "not an IP address"
    if ip.is_loopback:
        return "this machine (loopback)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "a reserved address"
    if not ip.is_global:  # shared address space (100.64/10, carrier NAT), IETF protocol ranges...
        return "a non-public address"
    return None


def normal_host(host: str) -> str:
    """A host as the allow list compares it: lower case, no trailing dot, IPv6 without brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be connected to: public addresses, plus the hosts allowed explicitly."""

    allow_hosts: frozenset[str] = frozenset()
    resolver: Resolver = default_resolver

    @classmethod
    def allowing(cls, hosts: Iterable[str] = (), resolver: Resolver | None = None) -> AddressPolicy:
        return cls(frozenset(normal_host(h) for h in hosts if h.strip()), resolver or default_resolver)

    def allowed(self, host: str) -> bool:
        return normal_host(host) in self.allow_hosts

    def addresses(self, host: str) -> list[str]:
        """The addresses to connect to for `host`; AddressRefused if any of them must not be reached.

        One bad address refuses the host: a name resolving to a public and a private address at once is
        a trick, not a mistake.
        """
        name = normal_host(host)
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
            resolved: Sequence[str] = [name]
        except ValueError:
            resolved = self.resolver(name)
        if not resolved:
            raise httpcore2.ConnectError(f"name does not resolve: {host}")
        if name in self.allow_hosts:
            return list(resolved)
        for address in resolved:
            why = refusal(address)
            if why is not None:
                where = host if address == name else f"{host} resolves to {address}, which"
                raise AddressRefused(
                    f"{where} is {why}. Addresses from a lead file may only reach public websites; "
                    "an intranet site can be allowed by name."
                )
        return list(resolved)


# --- a total time limit per request, across connect, TLS, writing and every read --------------------------

_deadline = threading.local()
SLICE_S = 0.25  # a read waits at most this long before it looks at the deadline and the stop signal again


class Cancelled(Exception):
    """The run was cancelled while this request was on the wire."""


class deadline:
    """`with deadline(seconds, stop):` bounds every socket operation of this thread's requests to that
    total, and ends them within SLICE_S once the `stop` event is set (a cancelled run)."""

    def __init__(self, seconds: float, stop: threading.Event | None = None):
        self.seconds = seconds
        self.stop = stop

    def __enter__(self) -> deadline:
        self._saved = (getattr(_deadline, "at", None), getattr(_deadline, "stop", None))
        _deadline.at = time.monotonic() + self.seconds
        _deadline.stop = self.stop
        return self

    def __exit__(self, *exc: object) -> None:
        _deadline.at, _deadline.stop = self._saved


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """The shorter of an operation's own timeout and what is left of this thread's deadline."""
    stop = getattr(_deadline, "stop", None)
    if stop is not None and stop.is_set():
        raise Cancelled("the run was cancelled")
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the total time for this request ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A socket stream whose reads and writes never outlast the thread's deadline."""

    def __init__(self, inner: httpcore2.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read in slices, so a cancel or the deadline is noticed within SLICE_S of a silent server."""
        while True:
            wait = _remaining(timeout, httpcore2.ReadTimeout)
            slice_s = SLICE_S if wait is None else min(wait, SLICE_S)
            try:
                return self._inner.read(max_bytes, slice_s)
            except httpcore2.ReadTimeout:
                if wait is not None and wait <= slice_s:
                    raise
                if timeout is not None:
                    timeout -= slice_s

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        wrapped = self._inner.start_tls(
            ssl_context, server_hostname, _remaining(timeout, httpcore2.ConnectTimeout)
        )
        return _DeadlineStream(wrapped)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@dataclass
class GuardedBackend(httpcore2.SyncBackend):
    """httpcore's socket layer, connecting only to addresses the policy has just checked.

    `on_connect(address, port)` is called right before each socket is opened (tests use it as a second
    fence: fail unless the address is loopback).
    """

    policy: AddressPolicy
    on_connect: Callable[[str, int], None] | None = None

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options=None,
    ) -> httpcore2.NetworkStream:
        addresses = self.policy.addresses(host)
        last: Exception | None = None
        for address in addresses:
            if self.on_connect is not None:
                self.on_connect(address, port)
            try:
                stream = super().connect_tcp(
                    address,
                    port,
                    _remaining(timeout, httpcore2.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
                continue
            return _DeadlineStream(stream)
        assert last is not None
        raise last


# --- what a cell may say ---------------------------------------------------------------------------------


def candidate_urls(cell: str) -> list[str]:
    """The URLs to try for a cell, in order: as written, or https then http when it has no scheme.

    Credentials written into an address (`https://user:pass@host/`) are dropped, never sent.
    BadAddress when the cell is not a website address at all.
    """
    text = cell.strip()
    if not text:
        raise BadAddress("No website address in this row.")
    if any(c.isspace() for c in text) or len(text) > 2048:
        raise BadAddress(f"'{_short(text)}' is not a website address.")
    parts = urlsplit(text)
    if parts.scheme and "://" in text:
        return [clean_url(text)]
    if parts.scheme and parts.scheme.lower() not in ("http", "https") and not _looks_like_host_port(text):
        raise BadAddress(
            f"'{_short(text)}' is a {parts.scheme}: address; only web addresses (http, https) are read."
        )
    if text.startswith("//"):
        text = text[2:]
    urls = [clean_url("https://" + text), clean_url("http://" + text)]
    host = urlsplit(urls[0]).netloc
    if "." not in host and ":" not in host:  # "N/A", "none", "TBD": a bare word is not a website
        raise BadAddress(f"'{_short(text)}' is not a website address.")
    return urls


def _looks_like_host_port(text: str) -> bool:
    """`example.com:8080/x` parses as scheme `example.com`; a port after the colon means it is a host."""
    head = text.split("/", 1)[0]
    return ":" in head and head.rsplit(":", 1)[1].isdigit()


def clean_url(url: str) -> str:
    """A URL that is safe to request: http(s), a plausible host, no credentials, no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadAddress(f"'{_short(url)}' is not a website address ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadAddress(
            f"'{_short(url)}' is a {scheme}: address; only web addresses (http, https) are read."
        )
    host = parts.hostname or ""
    if not host or not _plausible_host(host):
        raise BadAddress(f"'{_short(url)}' is not a website address.")
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port is None else f"{shown}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _plausible_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels
    ) and not host.startswith("-")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
