"""The guarded server-side fetch against hostile targets and a real (loopback) origin (SPEC 6).

Traffic rule of these tests: only loopback is ever connected to. Host names are answered by a
fake resolver, and every ``socket.connect`` is watched (:func:`connections`): a connection to
anything but loopback fails the test on the spot, and each hostile case asserts that no
connection at all was made to the refused target, besides the reason it was refused for.

Two fetchers share one origin on 127.0.0.1:P. ``strict`` admits no private network, so the
loopback spellings that point at the origin itself (``127.1:P``, ``2130706433:P``, ``[::1]:P``...)
are refused, and the origin's request count proves they never reached it. ``live`` admits only
``127.0.0.1/32``, so ``origin.test:P`` works and redirects from it can be aimed at refused
targets such as ``127.0.0.2``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import tracemalloc
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from middleware.fetch import FetchError, Fetched, GuardedFetcher, SingleFlight
from middleware.settings import Settings
from tests.support.origin import (
    ForwardProxy,
    Origin,
    drip,
    endless,
    gzip_bomb,
    gzipped,
    ipv6_available,
    make_certificates,
)

SECRET = "guarded-fetch-test-secret-0123456789"
MAX_SIZE = 64 * 1024
TIMEOUT = 1.5
CSS = {"Content-Type": "text/css"}

# --- the fake resolver and the connection spy -----------------------------------------------------


@dataclass
class FakeDNS:
    """A resolver for test names: never the real DNS. Records every lookup."""

    table: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        name = host.lower().rstrip(".")
        if name not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[name])


DNS_TABLE = {
    "origin.test": ["127.0.0.1"],
    "www.origin.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],  # serves origin.test's certificate: a name mismatch
    "localhost": ["127.0.0.1", "::1"],
    "loop.test": ["127.0.0.1"],
    "private.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "ula.test": ["fd00::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],  # one public, one private: all refused
    "empty.test": [],
    "garbage.test": ["not-an-address"],
}


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection attempted during the test, as (address, port).

    A connection to a non-loopback address raises AssertionError instead of leaving the machine.
    """
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address) -> None:  # type: ignore[no-untyped-def]
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = str(address[0]), int(address[1])
            attempts.append((host, port))
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise AssertionError(f"attempted a connection to {host}:{port}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


# --- the world: origins, resolver and fetchers --------------------------------------------------


@dataclass
class World:
    origin: Origin
    origin6: Origin | None  # the same on [::1], when the machine has IPv6
    dns: FakeDNS
    live: GuardedFetcher  # admits 127.0.0.1/32
    strict: GuardedFetcher  # admits no private network
    connections: list[tuple[str, int]]

    @property
    def port(self) -> int:
        return self.origin.port

    def format(self, template: str) -> str:
        port6 = self.origin6.port if self.origin6 else self.port
        return template.replace("{P}", str(self.port)).replace("{P6}", str(port6))

    def origin_hits(self) -> int:
        return self.origin.hits() + (self.origin6.hits() if self.origin6 else 0)


def domain_rules(port: int, port6: int) -> list[str]:
    """Everything the hostile cases need to get past the domain check to the address check."""
    at_port = ["origin.test", "*.origin.test", "other.test", "127.0.0.1", "127.0.0.2",
               "localhost", "loop.test", "0.0.0.0", "[::]", "[::ffff:7f00:2]", "[::127.0.0.1]",
               "[::ffff:127.0.0.1]", "[2002:7f00:1::]", "mixed.test", "private.test"]
    anywhere = ["allowed.com", "*.allowed.com", "169.254.169.254", "[::ffff:a9fe:a9fe]",
                "[64:ff9b::a9fe:a9fe]", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
                "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "[fd00::1]",
                "[fe80::1]", "[fec0::1]", "private.test", "metadata.test", "ula.test",
                "mapped.test", "mixed.test", "nxdomain.test", "empty.test", "garbage.test"]
    return [f"{host}:{port}" for host in at_port] + [f"[::1]:{port6}"] + anywhere


def make_settings(port: int, port6: int, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        secret_key=SECRET,
        allowed_external_domains=domain_rules(port, port6),
        allowed_private_networks=["127.0.0.1/32"],
        proxy_timeout=TIMEOUT,
        proxy_max_redirects=3,
        max_size=MAX_SIZE,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def world(connections: list[tuple[str, int]]) -> Iterator[World]:
    origin = Origin()
    origin6 = Origin("::1") if ipv6_available() else None
    dns = FakeDNS(DNS_TABLE)
    port6 = origin6.port if origin6 else origin.port
    live = GuardedFetcher(make_settings(origin.port, port6), dns)
    strict = GuardedFetcher(make_settings(origin.port, port6, allowed_private_networks=[]), dns)
    try:
        yield World(origin, origin6, dns, live, strict, connections)
    finally:
        origin.close()
        if origin6:
            origin6.close()


def refused(fetcher: GuardedFetcher, url: str, kind: str = "css") -> str:
    """The reason ``url`` is refused; fails the test if it was fetched."""
    with pytest.raises(FetchError) as caught:
        result = fetcher.fetch(url, kind)
        pytest.fail(f"fetched {url}: {result}")  # pragma: no cover - only when the guard fails
    return caught.value.reason


# --- hostile targets refused before any connection ------------------------------------------------

# (url, reason); {P} is the origin's port, {P6} its IPv6 twin's. Fetched with `strict`.
DIRECT = [
    # loopback, by name and by number: every spelling is 127.0.0.1 to the URL parser
    ("http://127.0.0.1:{P}/a.css", "address:loopback"),
    ("http://localhost.:{P}/a.css", "address:loopback"),
    ("http://localhost:{P}/a.css", "address:loopback"),
    ("http://loop.test:{P}/a.css", "address:loopback"),
    ("http://2130706433:{P}/a.css", "address:loopback"),
    ("http://0x7f.1:{P}/a.css", "address:loopback"),
    ("http://127.1:{P}/a.css", "address:loopback"),
    ("http://017700000001:{P}/a.css", "address:loopback"),
    ("http://0x7f000001:{P}/a.css", "address:loopback"),
    ("http://[::1]:{P6}/a.css", "address:loopback"),
    ("http://[::ffff:127.0.0.1]:{P}/a.css", "address:loopback"),
    ("http://[::127.0.0.1]:{P}/a.css", "address:loopback"),
    ("http://[2002:7f00:1::]:{P}/a.css", "address:loopback"),
    ("http://mapped.test/a.css", "address:loopback"),
    # unspecified: connecting to 0.0.0.0:P would reach the origin on this machine
    ("http://0.0.0.0:{P}/a.css", "address:unspecified"),
    ("http://0:{P}/a.css", "address:unspecified"),
    ("http://[::]:{P}/a.css", "address:unspecified"),
    # cloud metadata, and its IPv6 disguises
    ("http://169.254.169.254/latest/meta-data/", "address:link-local"),
    ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "address:link-local"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "address:link-local"),
    ("http://[64:ff9b::169.254.169.254]/latest/meta-data/", "address:link-local"),
    ("http://metadata.test/latest/meta-data/", "address:link-local"),
    # private, CGNAT, benchmarking, multicast, reserved, broadcast
    ("http://10.0.0.1/a.css", "address:private"),
    ("http://172.16.0.1/a.css", "address:private"),
    ("http://192.168.1.1/a.css", "address:private"),
    ("http://100.64.0.1/a.css", "address:cgnat"),
    ("http://198.18.0.1/a.css", "address:benchmarking"),
    ("http://224.0.0.1/a.css", "address:multicast"),
    ("http://240.0.0.1/a.css", "address:reserved"),
    ("http://255.255.255.255/a.css", "address:broadcast"),
    # IPv6 local ranges
    ("http://[fd00::1]/a.css", "address:unique-local"),
    ("http://[fe80::1]/a.css", "address:link-local"),
    ("http://[fec0::1]/a.css", "address:site-local"),
    ("http://ula.test/a.css", "address:unique-local"),
    # names resolving to private addresses, or mixing public and private
    ("http://private.test/a.css", "address:private"),
    ("http://mixed.test/a.css", "address:private"),
    # DNS failures
    ("http://nxdomain.test/a.css", "dns"),
    ("http://empty.test/a.css", "dns"),
    ("http://garbage.test/a.css", "dns"),
    # lookalike hosts
    ("http://allowed.com.evil.com/a.css", "domain"),
    ("http://evilallowed.com/a.css", "domain"),
    ("http://allowed.com@evil.com/a.css", "userinfo"),
    ("http://evil.com#@allowed.com/a.css", "domain"),
    ("http://evil.com\\@allowed.com/a.css", "domain"),
    ("http://evil.com/allowed.com/a.css", "domain"),
    ("http://allowed.com.:8080/a.css", "port"),
    ("http://xn--allowed-.com/a.css", "domain"),
    # userinfo
    ("http://user:secret@allowed.com/a.css", "userinfo"),
    ("http://user@allowed.com/a.css", "userinfo"),
    ("http://:secret@allowed.com/a.css", "userinfo"),
    # not http(s), or no scheme at all
    ("ftp://allowed.com/a.css", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://allowed.com:70/_GET", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("data:text/css,a{}", "scheme"),
    ("ws://allowed.com/a.css", "scheme"),
    ("//allowed.com/a.css", "scheme"),
    ("allowed.com/a.css", "scheme"),
    # ports: without one in the entry, only 80 and 443
    ("http://allowed.com:8080/a.css", "port"),
    ("http://allowed.com:22/a.css", "port"),
    ("https://allowed.com:6379/a.css", "port"),
    ("http://origin.test:1/a.css", "port"),
    # a header-injection attempt never reaches a request line
    ("http://allowed.com/a.css\r\nX-Injected: 1", "url"),
]


@pytest.mark.parametrize(("template", "reason"), DIRECT, ids=[case[0] for case in DIRECT])
def test_hostile_target_refused_without_connecting(world: World, template: str,
                                                   reason: str) -> None:
    url = world.format(template)
    assert refused(world.strict, url) == reason
    assert world.connections == []  # not the origin, not anything
    assert world.origin_hits() == 0


def test_refused_by_the_live_fetcher_too(world: World) -> None:
    """Admitting 127.0.0.1/32 admits nothing next to it."""
    for template, reason in [
        ("http://127.0.0.2:{P}/a.css", "address:loopback"),
        ("http://[::1]:{P6}/a.css", "address:loopback"),
        ("http://localhost:{P}/a.css", "address:loopback"),  # its ::1 answer spoils it
        ("http://[::ffff:7f00:2]:{P}/a.css", "address:loopback"),
        ("http://private.test/a.css", "address:private"),
    ]:
        assert refused(world.live, world.format(template)) == reason
    assert world.connections == []
    assert world.origin_hits() == 0


def test_names_are_resolved_once_and_literals_never(world: World) -> None:
    refused(world.strict, "http://mixed.test/a.css")
    assert world.dns.calls == ["mixed.test"]
    for url in ["http://169.254.169.254/", world.format("http://2130706433:{P}/a.css"),
                "http://allowed.com.evil.com/", "http://allowed.com@evil.com/"]:
        refused(world.strict, url)
    assert world.dns.calls == ["mixed.test"]  # IP literals and refused names: no lookup


def test_the_connection_goes_to_the_address_that_was_checked(world: World) -> None:
    """DNS rebinding: a resolver that answers differently the second time is asked only once."""
    answers = iter([["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    world.origin.route("/a.css", body=b"a{}", headers=CSS)
    fetcher = GuardedFetcher(world.live.settings, rebinding)
    assert fetcher.fetch(world.origin.url("/a.css", "origin.test"), "css").body == b"a{}"
    assert calls == ["origin.test"]
    assert world.connections == [("127.0.0.1", world.port)]


def test_a_hanging_dns_lookup_is_given_up_at_the_deadline(world: World) -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["127.0.0.1"]

    started = time.monotonic()
    try:
        fetcher = GuardedFetcher(world.live.settings, hanging)
        assert refused(fetcher, world.origin.url("/a.css", "origin.test")) == "timeout"
    finally:
        release.set()
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert world.connections == []


def test_an_unknown_kind_is_refused(world: World) -> None:
    assert refused(world.live, world.origin.url("/a.css", "origin.test"), "script") == "kind"
    assert world.connections == []


# --- hostile redirects: the first hop is fine, the next is refused ------------------------------

REDIRECTS = [
    ("http://127.0.0.2:{P}/a.css", "address:loopback"),
    ("http://[::ffff:7f00:2]:{P}/a.css", "address:loopback"),
    ("http://[::1]:{P6}/a.css", "address:loopback"),
    ("http://0.0.0.0:{P}/a.css", "address:unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "address:link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "address:link-local"),
    ("http://10.0.0.1/a.css", "address:private"),
    ("http://private.test/a.css", "address:private"),
    ("http://mixed.test/a.css", "address:private"),
    ("http://100.64.0.1/a.css", "address:cgnat"),
    ("http://[fd00::1]/a.css", "address:unique-local"),
    ("http://evil.com/a.css", "domain"),
    ("//evil.com/a.css", "domain"),  # scheme-relative: resolved against the current URL
    ("http://origin.test:1/a.css", "port"),
    ("http://user:pw@origin.test:{P}/a.css", "userinfo"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://origin.test:{P}/", "scheme"),
]


@pytest.mark.parametrize(("template", "reason"), REDIRECTS, ids=[r[0] for r in REDIRECTS])
@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_to_refused_target(world: World, template: str, reason: str,
                                    status: int) -> None:
    world.origin.redirect("/start.css", world.format(template), status)
    assert refused(world.live, world.origin.url("/start.css", "origin.test")) == reason
    assert world.origin.hits("/start.css") == 1
    assert world.connections == [("127.0.0.1", world.port)]  # the first hop only


def test_redirect_statuses_303_and_308_are_checked_too(world: World) -> None:
    for status in (303, 308):
        world.origin.redirect(f"/r{status}", world.format("http://127.0.0.2:{P}/a.css"), status)
        assert refused(world.live, world.origin.url(f"/r{status}", "origin.test")) == \
            "address:loopback"
    assert set(world.connections) == {("127.0.0.1", world.port)}


def test_too_many_redirects(world: World) -> None:
    world.origin.redirect("/loop.css", "/loop.css")
    assert refused(world.live, world.origin.url("/loop.css", "origin.test")) == "redirects"
    assert world.origin.hits("/loop.css") == 4  # the first request and 3 redirects followed


def test_a_redirect_chain_longer_than_allowed(world: World) -> None:
    for i in range(5):
        world.origin.redirect(f"/hop{i}.css", f"/hop{i + 1}.css")
    world.origin.route("/hop5.css", body=b"a{}", headers=CSS)
    assert refused(world.live, world.origin.url("/hop0.css", "origin.test")) == "redirects"
    assert world.origin.hits("/hop5.css") == 0


# --- hostile responses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("css", "text/html"), ("css", "text/plain"), ("css", "image/svg+xml"), ("css", None),
     ("css", "text/css-but-not"), ("image", "text/css"), ("image", "text/html"),
     ("font", "application/octet-stream"), ("font", "text/css")],
)
def test_wrong_content_type(world: World, kind: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    world.origin.route("/thing", body=b"<html>", headers=headers)
    assert refused(world.live, world.origin.url("/thing", "origin.test"), kind) == "content_type"


@pytest.mark.parametrize("status", [404, 401, 500, 503, 304, 300])
def test_error_status(world: World, status: int) -> None:
    world.origin.route("/a.css", status=status, body=b"a{}", headers=CSS)
    assert refused(world.live, world.origin.url("/a.css", "origin.test")) == f"status:{status}"


def test_redirect_without_location(world: World) -> None:
    world.origin.route("/a.css", status=302, headers=CSS)
    assert refused(world.live, world.origin.url("/a.css", "origin.test")) == "status:302"


def test_oversized_content_length_refused_before_reading(world: World) -> None:
    world.origin.route("/big.css", headers=CSS, content_length=10**9, body=endless())
    started = time.monotonic()
    assert refused(world.live, world.origin.url("/big.css", "origin.test")) == "too_large"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("chunked", [True, False])
def test_endless_body(world: World, chunked: bool) -> None:
    world.origin.route("/endless.css", headers=CSS, body=endless(), chunked=chunked)
    assert refused(world.live, world.origin.url("/endless.css", "origin.test")) == "too_large"


def test_content_length_that_understates_the_body(world: World) -> None:
    """A Content-Length of 10 is read as 10 bytes: the rest is never read, let alone kept."""
    world.origin.route("/a.css", headers=CSS, content_length=10, body=endless())
    fetched = world.live.fetch(world.origin.url("/a.css", "origin.test"), "css")
    assert fetched.body == b"a" * 10


def test_content_length_that_overstates_the_body(world: World) -> None:
    world.origin.route("/a.css", headers=CSS, content_length=1000, body=b"a{}")
    assert refused(world.live, world.origin.url("/a.css", "origin.test")) == "connection"


@pytest.mark.parametrize(
    ("decoded_size", "chunked"),
    [(10 * 1024**3, True),  # 10 GiB of zeros in 10 MB, streamed without a Content-Length
     (40 * 1024**2, False)],  # 40 MiB in 40 KB: its Content-Length is under the cap
    ids=["10GiB-chunked", "40MiB-small-on-the-wire"],
)
def test_gzip_bomb_never_expands_past_the_cap(world: World, decoded_size: int,
                                              chunked: bool) -> None:
    bomb = gzip_bomb(decoded_size)
    if not chunked:
        assert len(bomb) < MAX_SIZE  # so only the cap on decoded bytes can stop it
    world.origin.route("/bomb.css", body=drip(bomb, 64 * 1024) if chunked else bomb,
                       chunked=chunked, headers={**CSS, "Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        reason = refused(world.live, world.origin.url("/bomb.css", "origin.test"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason == "too_large"
    assert peak < 8 * MAX_SIZE + 512 * 1024  # the cap, a read buffer or two, and overhead


def test_deflate_bomb(world: World) -> None:
    bomb = zlib.compress(bytes(40 * 1024 * 1024), 9)
    assert len(bomb) < MAX_SIZE
    world.origin.route("/bomb.css", body=bomb, headers={**CSS, "Content-Encoding": "deflate"})
    assert refused(world.live, world.origin.url("/bomb.css", "origin.test")) == "too_large"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("br", b"\x0b\x01\x80a{}\x03"), ("gzip", b"not gzip at all"),
     ("gzip", gzipped(b"a{}" * 1000)[:-30]), ("gzip, gzip", gzipped(gzipped(b"a{}"))),
     ("deflate", b"\xff\xff\xff\xff")],
    ids=["brotli", "corrupt-gzip", "truncated-gzip", "stacked", "corrupt-deflate"],
)
def test_bad_content_encoding(world: World, encoding: str, body: bytes) -> None:
    world.origin.route("/a.css", body=body, headers={**CSS, "Content-Encoding": encoding})
    assert refused(world.live, world.origin.url("/a.css", "origin.test")) == "encoding"


def test_body_trickling_past_the_deadline(world: World) -> None:
    world.origin.route("/slow.css", headers=CSS, body=drip(b"a" * 1000), interval=0.05)
    started = time.monotonic()
    assert refused(world.live, world.origin.url("/slow.css", "origin.test")) == "timeout"
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_headers_trickling_past_the_deadline(world: World) -> None:
    """Each byte arrives well within any socket timeout; only a total deadline stops it."""
    world.origin.route("/slow.css", headers=CSS, body=b"a{}", head_interval=0.05)
    started = time.monotonic()
    assert refused(world.live, world.origin.url("/slow.css", "origin.test")) == "timeout"
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_silent_origin(world: World) -> None:
    world.origin.route("/silent.css", headers=CSS, body=b"a{}", delay=30)
    started = time.monotonic()
    assert refused(world.live, world.origin.url("/silent.css", "origin.test")) == "timeout"
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_slow_redirects_share_one_deadline(world: World) -> None:
    """Each hop is quick enough alone; together they exceed the budget."""
    for i in range(3):
        world.origin.route(f"/s{i}.css", status=302, headers={"Location": f"/s{i + 1}.css"},
                           delay=TIMEOUT / 2.5)
    world.origin.route("/s3.css", body=b"a{}", headers=CSS, delay=TIMEOUT / 2.5)
    assert refused(world.live, world.origin.url("/s0.css", "origin.test")) == "timeout"


def test_connection_refused(world: World) -> None:
    closed = Origin()
    closed.close()  # nothing listens on its port any more
    fetcher = GuardedFetcher(make_settings(closed.port, closed.port), world.dns)
    assert refused(fetcher, f"http://origin.test:{closed.port}/a.css") == "connection"


# --- what is fetched, and how ---------------------------------------------------------------------


def test_allowed_css_is_fetched(world: World) -> None:
    world.origin.route("/a.css", body=b"body{color:red}",
                       headers={"Content-Type": "text/css; charset=utf-8"})
    fetched = world.live.fetch(world.origin.url("/a.css", "origin.test"), "css")
    assert fetched == Fetched(url=world.origin.url("/a.css", "origin.test"), status=200,
                              content_type="text/css; charset=utf-8", body=b"body{color:red}",
                              cacheable=True)
    assert world.connections == [("127.0.0.1", world.port)]


def test_only_a_fixed_minimal_get_is_sent(world: World) -> None:
    world.origin.route("/a.css?v=2", body=b"a{}", headers=CSS)
    world.live.fetch(world.origin.url("/a.css?v=2", "origin.test"), "css")
    (request,) = world.origin.requests
    assert request.method == "GET"
    assert request.path == "/a.css?v=2"
    assert set(request.headers) == {"Host", "User-Agent", "Accept", "Accept-Encoding",
                                    "Connection"}
    assert request.headers["Host"] == f"origin.test:{world.port}"  # the name, not the address
    assert "cobrowse" in request.headers["User-Agent"]
    assert request.headers["Accept"].startswith("text/css")
    assert request.headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzipped), ("x-gzip", gzipped), ("deflate", zlib.compress),
     ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
     ("gzip", lambda data: gzipped(data[:100]) + gzipped(data[100:]))],  # two gzip members
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-members"],
)
def test_compressed_css_is_decoded(world: World, encoding: str,
                                   encode: Callable[[bytes], bytes]) -> None:
    css = b".a{background:url(x.png)}" * 200
    world.origin.route("/a.css", body=encode(css), headers={**CSS, "Content-Encoding": encoding})
    assert world.live.fetch(world.origin.url("/a.css", "origin.test"), "css").body == css


def test_compressed_body_trickling_one_byte_at_a_time(world: World) -> None:
    css = b"a{color:blue}" * 20
    world.origin.route("/a.css", body=drip(zlib.compress(css)), chunked=True,
                       headers={**CSS, "Content-Encoding": "deflate"})
    assert world.live.fetch(world.origin.url("/a.css", "origin.test"), "css").body == css


def test_redirects_within_the_allowed_domains_are_followed(world: World) -> None:
    world.origin.redirect("/old.css", "/new.css", 301)
    world.origin.redirect("/new.css", world.origin.url("/final.css", "www.origin.test"), 307)
    world.origin.route("/final.css", body=b"a{}", headers=CSS)
    fetched = world.live.fetch(world.origin.url("/old.css", "origin.test"), "css")
    assert fetched.url == world.origin.url("/final.css", "www.origin.test")
    assert fetched.body == b"a{}"
    assert [r.headers["Host"] for r in world.origin.requests] == [
        f"origin.test:{world.port}", f"origin.test:{world.port}", f"www.origin.test:{world.port}"]


def test_exactly_max_redirects_is_fine(world: World) -> None:
    for i in range(3):
        world.origin.redirect(f"/hop{i}.css", f"/hop{i + 1}.css")
    world.origin.route("/hop3.css", body=b"a{}", headers=CSS)
    assert world.live.fetch(world.origin.url("/hop0.css", "origin.test"), "css").body == b"a{}"


def test_body_of_exactly_max_size(world: World) -> None:
    world.origin.route("/a.css", body=b"a" * MAX_SIZE, headers=CSS, chunked=True)
    assert len(world.live.fetch(world.origin.url("/a.css", "origin.test"), "css").body) == MAX_SIZE
    world.origin.route("/b.css", body=b"a" * (MAX_SIZE + 1), headers=CSS, chunked=True)
    assert refused(world.live, world.origin.url("/b.css", "origin.test")) == "too_large"


@pytest.mark.parametrize(
    ("cache_control", "cacheable"),
    [("no-store", False), ("private, max-age=60", False), ("public, max-age=60", True),
     ("max-age=0", True), ("No-Store", False)],
)
def test_cacheable(world: World, cache_control: str, cacheable: bool) -> None:
    world.origin.route("/a.css", body=b"a{}", headers={**CSS, "Cache-Control": cache_control})
    assert world.live.fetch(world.origin.url("/a.css", "origin.test"), "css").cacheable is cacheable


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [("font", "font/woff2", b"wOF2\x00\x01\x00\x00" + bytes(40)),
     ("font", "application/font-woff", b"wOFF\x00\x01\x00\x00" + bytes(40)),
     ("image", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(40)),
     ("image", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
     ("image", "image/vnd.microsoft.icon", b"\x00\x00\x01\x00\x01\x00" + bytes(40)),
     ("css", "TEXT/CSS", b"a{}")],
)
def test_each_kind_accepts_its_types(world: World, kind: str, content_type: str, body: bytes) -> None:
    world.origin.route("/r", body=body, headers={"Content-Type": content_type})
    fetched = world.live.fetch(world.origin.url("/r", "origin.test"), kind)
    assert (fetched.content_type, fetched.body) == (content_type, body)


def test_ipv6_origin_admitted_by_allowed_private_networks(world: World) -> None:
    if world.origin6 is None:
        pytest.skip("no IPv6 loopback here")
    settings = make_settings(world.port, world.origin6.port, allowed_private_networks=["::1/128"])
    world.origin6.route("/a.css", body=b"a{}", headers=CSS)
    fetched = GuardedFetcher(settings, world.dns).fetch(world.origin6.url("/a.css"), "css")
    assert fetched.body == b"a{}"
    assert world.connections == [("::1", world.origin6.port)]


def test_single_flight_makes_one_origin_fetch_for_many_agents(world: World) -> None:
    world.origin.route("/a.css", body=b"a{}", headers=CSS, delay=0.5)  # all 20 arrive meanwhile
    flight = SingleFlight()
    url = world.origin.url("/a.css", "origin.test")
    results: list[bytes] = []
    barrier = threading.Barrier(20)

    def agent() -> None:
        barrier.wait()
        results.append(flight.do(url, lambda: world.live.fetch(url, "css")).body)

    threads = [threading.Thread(target=agent) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [b"a{}"] * 20
    assert world.origin.hits("/a.css") == 1


# --- HTTPS: connect to the checked address, verify the name -----------------------------------


@pytest.fixture
def tls_origin(tmp_path: Path) -> Iterator[tuple[Origin, str]]:
    certificates = make_certificates(tmp_path, "origin.test")
    if certificates is None:
        pytest.skip("openssl is not installed")
    with Origin(tls=certificates.server_context()) as origin:
        yield origin, str(certificates.ca)


def test_https_verifies_the_name_while_connecting_to_the_address(
    world: World, tls_origin: tuple[Origin, str]
) -> None:
    origin, ca = tls_origin
    origin.route("/a.css", body=b"a{}", headers=CSS)
    fetcher = GuardedFetcher(make_settings(origin.port, origin.port), world.dns, ca_certs=ca)
    fetched = fetcher.fetch(origin.url("/a.css", "origin.test"), "css")
    assert fetched.body == b"a{}"
    assert fetched.url == f"https://origin.test:{origin.port}/a.css"
    assert world.connections == [("127.0.0.1", origin.port)]
    assert origin.requests[0].headers["Host"] == f"origin.test:{origin.port}"


def test_https_with_a_certificate_for_another_name(world: World,
                                                   tls_origin: tuple[Origin, str]) -> None:
    origin, ca = tls_origin
    origin.route("/a.css", body=b"a{}", headers=CSS)
    fetcher = GuardedFetcher(make_settings(origin.port, origin.port), world.dns, ca_certs=ca)
    assert refused(fetcher, origin.url("/a.css", "other.test")) == "tls"
    assert origin.hits() == 0


def test_https_with_an_untrusted_certificate(world: World,
                                             tls_origin: tuple[Origin, str]) -> None:
    origin, _ = tls_origin
    origin.route("/a.css", body=b"a{}", headers=CSS)
    fetcher = GuardedFetcher(make_settings(origin.port, origin.port), world.dns)  # system CAs
    assert refused(fetcher, origin.url("/a.css", "origin.test")) == "tls"
    assert origin.hits() == 0


# --- through an outbound proxy: the checks still apply to the target ----------------------------


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


def test_http_through_the_outbound_proxy(world: World, proxy: ForwardProxy) -> None:
    world.origin.route("/a.css", body=b"a{}", headers=CSS)
    settings = make_settings(world.port, world.port, proxy_outbound=proxy.url)
    fetched = GuardedFetcher(settings, world.dns).fetch(
        world.origin.url("/a.css", "origin.test"), "css")
    assert fetched.body == b"a{}"
    (request,) = proxy.requests
    assert request.path == f"http://127.0.0.1:{world.port}/a.css"  # the checked address
    assert request.headers["Host"] == f"origin.test:{world.port}"  # the name
    assert world.origin.requests[0].headers["Host"] == f"origin.test:{world.port}"


def test_https_through_the_outbound_proxy(world: World, proxy: ForwardProxy,
                                          tls_origin: tuple[Origin, str]) -> None:
    origin, ca = tls_origin
    origin.route("/a.css", body=b"a{}", headers=CSS)
    settings = make_settings(origin.port, origin.port, proxy_outbound=proxy.url)
    fetched = GuardedFetcher(settings, world.dns, ca_certs=ca).fetch(
        origin.url("/a.css", "origin.test"), "css")
    assert fetched.body == b"a{}"
    (request,) = proxy.requests
    assert (request.method, request.path) == ("CONNECT", f"127.0.0.1:{origin.port}")


def test_refused_targets_never_reach_the_proxy(world: World, proxy: ForwardProxy) -> None:
    settings = make_settings(world.port, world.port, proxy_outbound=proxy.url)
    fetcher = GuardedFetcher(settings, world.dns)
    for url, reason in [("http://private.test/a.css", "address:private"),
                        ("http://169.254.169.254/", "address:link-local"),
                        (world.format("http://127.0.0.2:{P}/a.css"), "address:loopback"),
                        ("http://evil.com/", "domain")]:
        assert refused(fetcher, url) == reason
    world.origin.redirect("/start.css", "http://10.0.0.1/a.css")
    assert refused(fetcher, world.origin.url("/start.css", "origin.test")) == "address:private"
    assert [r.path for r in proxy.requests] == [f"http://127.0.0.1:{world.port}/start.css"]
