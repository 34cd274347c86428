"""Which addresses the server-side fetch may connect to (SPEC 6). Classification only: nothing
here opens a connection, so public addresses can be listed safely."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from middleware.fetch.addresses import embedded_ipv4, refusal_reason

REFUSED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.0.0.9", "reserved"),
    ("192.88.99.1", "reserved"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "reserved"),
    # IPv6 forms that embed IPv4: the embedded address decides
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("::127.0.0.1", "loopback"),  # IPv4-compatible; ipaddress says it is global
    ("::169.254.169.254", "link-local"),
    ("::10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1; ipaddress says global
    ("2002:a9fe:a9fe::1", "link-local"),
    ("2002:c0a8:101::", "private"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of the metadata address; ipaddress: global
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b:1::a9fe:a9fe", "ipv4-embedded"),  # local-use NAT64 prefix
    ("64:ff9b:1:ffff::1", "ipv4-embedded"),
    # Teredo: server 127.0.0.1, client (obfuscated) 93.184.216.34 -> the server is loopback
    ("2001:0:7f00:1::a247:27dd", "loopback"),
    # Teredo: public server 65.54.227.120, client 10.0.0.1 (stored as ~10.0.0.1 = f5ff:fffe)
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),
]

ADMITTED = [
    "93.184.216.34",
    "1.1.1.1",
    "8.8.8.8",
    "2606:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:93.184.216.34",  # mapped public IPv4
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
    # Teredo: server 65.54.227.120, client 93.184.216.34, both public
    "2001:0:4136:e378:8000:63bf:a247:27dd",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused(address: str, reason: str) -> None:
    assert refusal_reason(ip_address(address), ()) == reason


@pytest.mark.parametrize("address", ADMITTED)
def test_public_addresses_are_admitted(address: str) -> None:
    assert refusal_reason(ip_address(address), ()) is None


def test_the_standard_library_alone_would_be_fooled() -> None:
    """Why refusal_reason does not trust is_global: these reach 127.0.0.1 or the metadata IP."""
    for address in ("::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::"):
        assert ip_address(address).is_global
        assert refusal_reason(ip_address(address), ()) is not None


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("::ffff:127.0.0.1", ["127.0.0.1"]),
        ("::127.0.0.1", ["127.0.0.1"]),
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),
        ("2002:7f00:1::", ["127.0.0.1"]),
        ("2001:0:4136:e378:8000:63bf:a247:27dd", ["65.54.227.120", "93.184.216.34"]),
        ("::1", []),
        ("::", []),
        ("2606:4700::1111", []),
    ],
)
def test_embedded_ipv4(address: str, embedded: list[str]) -> None:
    assert [str(v4) for v4 in embedded_ipv4(ip_address(address))] == embedded


ALLOWED = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "10.255.255.255", "::ffff:127.0.0.1", "::ffff:10.9.8.7",
     "64:ff9b::a00:1"],
)
def test_allowed_private_networks_admit(address: str) -> None:
    """allowedPrivateNetworks admits an address, also in an IPv6 form embedding it."""
    assert refusal_reason(ip_address(address), ALLOWED) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.2", "loopback"),  # next door to the one admitted
        ("::ffff:127.0.0.2", "loopback"),
        ("11.0.0.1", None),  # public anyway
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),  # IPv6 loopback is not 127.0.0.1/32
    ],
)
def test_allowed_private_networks_admit_nothing_else(address: str, reason: str | None) -> None:
    assert refusal_reason(ip_address(address), ALLOWED) == reason


def test_allowed_ipv6_network() -> None:
    allowed = (ip_network("fd00:1::/32"),)
    assert refusal_reason(ip_address("fd00:1::5"), allowed) is None
    assert refusal_reason(ip_address("fd00:2::5"), allowed) == "unique-local"
    # networks of the other version never match (and never raise)
    assert refusal_reason(ip_address("10.0.0.1"), allowed) == "private"
