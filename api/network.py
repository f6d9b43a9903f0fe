"""Source-address allow-lists for the webhook doors, behind trusted proxies or not."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworksInvalid(ValueError):
    """When an allow-list or proxy list holds something that is not an address or CIDR."""


def parse_networks(text: str, name: str) -> tuple[Network, ...]:
    """`203.0.113.0/24, 2001:db8::/32, 198.51.100.7` (a bare address is a /32 or /128)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise NetworksInvalid(f"{name}: {item!r} is not an address or CIDR") from exc
    return tuple(networks)


def forwarded_for(lines: list[str]) -> str | None:
    """Every `X-Forwarded-For` line joined in order, as one list (RFC 9110 §5.3): a proxy
    may append its own line rather than extend the client's, and reading only the first
    line would believe what the client wrote there."""
    return ", ".join(lines) if lines else None


def _address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> Address | None:
    """The address a request came from.

    `X-Forwarded-For` is believed only when the peer is a trusted proxy, and then only
    up to the first hop that is not itself trusted (read from the right: each proxy
    appends what it saw, so anything left of an untrusted hop may be forged).
    """
    address = _address(peer)
    if address is None or not forwarded_for or not within(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # a malformed chain: trust nothing in it
        address = hop_address
        if not within(address, trusted):
            break
    return address


def arrived_over_tls(
    scheme: str, peer: str | None, forwarded_proto: list[str], trusted: tuple[Network, ...]
) -> bool:
    """Whether a request arrived over TLS: its own scheme is `https`, or the peer is a
    trusted proxy whose `X-Forwarded-Proto` (the value of the hop nearest to us) says
    so. The header is believed from trusted proxies only, as `X-Forwarded-For` is."""
    if scheme in ("https", "wss"):
        return True
    address = _address(peer)
    if address is None or not forwarded_proto or not within(address, trusted):
        return False
    nearest = ",".join(forwarded_proto).split(",")[-1].strip().lower()
    return nearest == "https"
