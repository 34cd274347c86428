"""Which IP addresses the server-side fetch may connect to (SPEC 6).

The fetch must never become a way into the server's own network: loopback, private ranges, cloud
metadata (169.254.169.254), CGNAT and every other non-public range are refused, unless the operator
admitted them with ``allowedPrivateNetworks``.

The ranges are listed here explicitly rather than trusting ``ipaddress``'s ``is_global``: the
standard library calls IPv6 forms that carry an IPv4 address inside them global (``::127.0.0.1``,
``64:ff9b::a9fe:a9fe``, ``2002:7f00:1::``), and reaching any of those can land on the embedded
IPv4 address. Such forms are unwrapped and the IPv4 address inside is what gets classified.
``is_global`` is only a last check, for whatever the tables below might miss.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Sequence

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# First match wins, so narrow ranges come before the wider ones that contain them.
_REFUSED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "this-network"),  # "this host on this network": Linux connects it locally
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),  # includes the cloud metadata address 169.254.169.254
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),  # the retired 6to4 relay anycast
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_REFUSED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(cidr), reason)
    for cidr, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("100::/64", "reserved"),  # discard-only
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

_MAPPED = IPv6Network("::ffff:0:0/96")  # IPv4-mapped: the socket talks IPv4 to the low 32 bits
_COMPATIBLE = IPv6Network("::/96")  # IPv4-compatible (deprecated), e.g. ::127.0.0.1
_NAT64 = IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix, IPv4 in the low 32 bits
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")  # local-use NAT64: where the IPv4 sits varies
_SIX_TO_FOUR = IPv6Network("2002::/16")  # 6to4, IPv4 in bits 16-48
_TEREDO = IPv6Network("2001::/32")  # Teredo: server IPv4, and the client's IPv4 obfuscated


def embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries and may deliver traffic to; () if none.

    ``::`` and ``::1`` are inside the IPv4-compatible range but are IPv6's own unspecified and
    loopback addresses, so they are left to the IPv6 table.
    """
    if ip in _MAPPED or ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        return (IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip in _SIX_TO_FOUR:
        return (ip.sixtofour,)  # type: ignore[return-value]  # not None inside 2002::/16
    if ip in _TEREDO:
        server, client = ip.teredo  # type: ignore[misc]  # not None inside 2001::/32
        return (server, client)
    return ()


def _in(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _v4_reason(ip: IPv4Address) -> str | None:
    for network, reason in _REFUSED_V4:
        if ip in network:
            return reason
    return None if ip.is_global else "reserved"


def refusal_reason(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why the fetch must not connect to ``ip`` (a short word such as ``"loopback"``), or None.

    ``allowed`` are the ``allowedPrivateNetworks``: an address inside one is admitted whatever
    its range. For an IPv6 form that embeds IPv4 addresses, the verdict is that of the embedded
    addresses (all of them must pass), and ``allowed`` is checked against both forms.
    """
    if _in(ip, allowed):
        return None
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)

    ip = IPv6Address(int(ip))  # drop any %scope: the ranges are what matters
    if ip in _NAT64_LOCAL:
        return "ipv4-embedded"  # local-use only, and the IPv4's position is not fixed
    embedded = embedded_ipv4(ip)
    if embedded:
        for v4 in embedded:
            if not _in(v4, allowed) and (reason := _v4_reason(v4)) is not None:
                return reason
        return None
    for network, reason in _REFUSED_V6:
        if ip in network:
            return reason
    return None if ip.is_global else "reserved"
