"""Where a webhook may be POSTed: URL checks and the address a delivery connects to.

A webhook URL is chosen by whoever holds an operator key, and the delivery
worker POSTs to it from inside the operator's network. Without checks that
makes the worker a probe of that network (docs/security.md, "Webhook targets
(SSRF)"): loopback services, the cloud metadata address, private hosts. So:

- `parse` refuses malformed URLs: control characters or spaces (CR/LF would
  split the request line), a scheme other than http/https, userinfo
  (`user:pass@`), no host, an invalid IPv6 literal, a port outside 1..65535.
- `resolve` resolves the host with getaddrinfo, which also turns the integer
  forms of IPv4 (`2130706433`, `0x7f000001`, `017700000001`, `127.1`) into the
  address they mean, and refuses the target when ANY address is loopback,
  private, link-local, unspecified, multicast, reserved or otherwise not
  globally routable (IPv4 inside IPv6 — mapped, 6to4, Teredo — is checked as
  IPv4 too). `webhook_allow_private_targets` turns that refusal off, for tests
  and labs; malformed URLs are refused regardless.
- The worker resolves and checks again at every attempt and connects to the
  address it checked (`Target.pinned_url`), sending the original Host header
  and TLS server name (SNI, certificate check), so a name that re-resolves to
  another address between the check and the connect (DNS rebinding) cannot
  redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from carryover.services.errors import ServiceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTarget(ServiceError):
    """A webhook URL that is malformed or points where deliveries may not go.

    `kind` says why in a few fixed words (what a delivery records in `last_error`).
    """

    def __init__(self, message: str, kind: str = "invalid URL") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: scheme, host as written (no brackets), port, and the rest."""

    scheme: str
    host: str
    port: int
    netloc: str  # host[:port] as written, for the Host header
    rest: str  # path, query

    def pinned_url(self, address: Address) -> str:
        """The URL with the host replaced by `address`: what the worker connects to."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.rest}"


def parse(url: str) -> Target:
    """Check `url`'s form; a RefusedTarget says what is wrong with it."""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        raise RefusedTarget("URL: contains a space or a control character (CR, LF, ...)")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise RefusedTarget(f"URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedTarget(f"URL: {url!r} is not an http:// or https:// URL")
    if "@" in parts.netloc:
        raise RefusedTarget("URL: user:password@ is not allowed (the signature "
                            "authenticates deliveries)")
    if not parts.hostname:
        raise RefusedTarget(f"URL: {url!r} has no host")
    if port == 0 or (parts.netloc.endswith(":") and port is None):
        raise RefusedTarget("URL: port must be 1..65535")
    host = parts.hostname
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise RefusedTarget(f"URL: {host!r} is not an IPv6 address") from None
    rest = parts.path or "/"
    if parts.query:
        rest += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80),
                  parts.netloc, rest)


def _embedded_ipv4(address: Address) -> list[Address]:
    if address.version != 6:
        return []
    inner = [address.ipv4_mapped, address.sixtofour,
             address.teredo[1] if address.teredo else None]
    return [a for a in inner if a is not None]


def why_refused(address: Address) -> str | None:
    """The kind of address deliveries may not go to, or None for a public one."""
    for candidate in (*_embedded_ipv4(address), address):
        for kind, flag in (("loopback", candidate.is_loopback),
                           ("unspecified", candidate.is_unspecified),
                           ("link-local", candidate.is_link_local),
                           ("multicast", candidate.is_multicast),
                           ("private", candidate.is_private),
                           ("reserved", candidate.is_reserved),
                           ("not globally routable", not candidate.is_global)):
            if flag:
                return kind
    return None


def addresses(target: Target) -> list[Address]:
    """Every address the host resolves to, in resolver order, without repeats."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise RefusedTarget(f"URL: host {target.host!r} does not resolve",
                            "host does not resolve") from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise RefusedTarget(f"URL: host {target.host!r} does not resolve",
                            "host does not resolve")
    return found


def resolve(target: Target, allow_private: bool,
            never: frozenset[str] = frozenset()) -> Address:
    """The address to connect to: the first one, once every one has been checked; with
    `allow_private` only the kinds in `never` are refused."""
    found = addresses(target)
    for address in found:
        kind = why_refused(address)
        if kind is not None and (not allow_private or kind in never):
            raise RefusedTarget(
                f"URL: host {target.host!r} resolves to {address} ({kind}); "
                "webhooks may not be sent there (setting "
                "webhook_allow_private_targets, docs/security.md)",
                f"{kind} address")
    return found[0]


def check(url: str, allow_private: bool) -> Target:
    """Refuse `url` unless it is well formed and every address of its host may be used."""
    target = parse(url)
    resolve(target, allow_private)
    return target
