"""The source address of a request: the TCP peer, or what a trusted proxy forwarded.

``X-Forwarded-For`` (or, without it, ``Forwarded``) is read only when the peer is
in ``TRUSTED_PROXIES``. The chain is walked from the right, past the trusted
proxies, to the first address nobody vouches for: what a client puts at the
left of the header is never believed.
"""

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def parse_networks(value: str, setting: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks; raises ConfigurationError naming ``setting``."""
    nets = []
    for item in value.replace(",", " ").split():
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"{setting}: {item!r} is not an address or CIDR") from exc
    return tuple(nets)


def parse_trusted(value: str) -> tuple[Network, ...]:
    return parse_networks(value, "TRUSTED_PROXIES")


def address_in(address: str, nets: Iterable[Network]) -> bool:
    """True when ``address`` (as ASGI gives it) lies in one of ``nets``."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # "::ffff:127.0.0.1" on a dual-stack listener
    return ip is not None and any(ip in net for net in nets)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # "[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # "192.0.2.1:4711"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, nets: Iterable[Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in net for net in nets)


def forwarded_chain(headers: dict[str, str]) -> list[str]:
    """Addresses the proxies recorded, client first."""
    xff = headers.get("x-forwarded-for")
    if xff is not None:
        return [part.strip() for part in xff.split(",") if part.strip()]
    chain = []
    for element in headers.get("forwarded", "").split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for" and value:
                chain.append(value.strip().strip('"'))
    return chain


def source_of(peer: str, headers: dict[str, str], trusted: tuple[Network, ...]) -> str:
    if not trusted or not _trusted(peer, trusted):
        return peer
    address = peer
    for hop in reversed(forwarded_chain(headers)):
        ip = _ip(hop)
        if ip is None:
            break  # "unknown" or garbage: stop at the last address we could read
        address = str(ip)
        if not any(ip in net for net in trusted):
            break
    return address


class SourceAddress:
    """ASGI middleware: ``scope["client"]`` becomes the request's source address."""

    def __init__(self, app: ASGIApp, trusted_proxies: str = "") -> None:
        self.app = app
        self.trusted = parse_trusted(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and _trusted(client[0], self.trusted):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            scope = dict(scope)
            real = source_of(client[0], headers, self.trusted)
            if real != client[0]:
                scope["client"] = (real, 0)
            proto = forwarded_proto(headers)
            if proto in ("http", "https") and scope["type"] == "http":
                scope["scheme"] = proto
        await self.app(scope, receive, send)


def forwarded_proto(headers: dict[str, str]) -> str | None:
    """The scheme the client used, as the nearest proxy says."""
    xfp = headers.get("x-forwarded-proto")
    if xfp is not None:
        return xfp.split(",")[-1].strip().lower()
    for pair in headers.get("forwarded", "").split(",")[-1].split(";"):
        name, _, value = pair.strip().partition("=")
        if name.lower() == "proto":
            return value.strip('"').lower()
    return None
