"""Server-side sync against origins that fail or lie (SPEC 5 rule 3, SPEC 6): every one ends in the
direct-load fallback (302 to the URL) within ``[proxy] timeout`` + 1 s, and nothing is cached.

The origins are on loopback: :class:`~tests.support.origin.Origin` for scripted HTTP answers, and
:class:`RawOrigin` below for what an HTTP server library will not do (resetting a connection in the
middle of a body). The middleware allows exactly their host:port and admits 127.0.0.1/32 past the
private-address ban, as an intranet deployment would.
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from middleware import ResourceSyncMiddleware
from middleware.fetch.sync import PROXY_NAMESPACE
from tests.conftest import RedisServer
from tests.integration.conftest import Cobrowse, make_settings
from tests.support.origin import Origin, drip, endless, gzip_bomb
from tests.support.servers import free_port, plain_app, serve_in_thread

PROXY_TIMEOUT = 1.0
#: The brief's bound for a fallback: the fetch's whole budget, plus a generous second.
FALLBACK_BOUND = PROXY_TIMEOUT + 1.0
CSS = {"Content-Type": "text/css"}
HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                   b"<body><h1>Please sign in</h1><script>location='/login'</script></body></html>")


class RawOrigin:
    """A TCP server on 127.0.0.1 that hands each connection to ``handler`` (in its own thread)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)  # the request; its content does not matter here
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


def reset_mid_body(conn: socket.socket) -> None:
    """Promise 100 KB of CSS, send 2 KB, then reset the connection (RST, not FIN)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 100000\r\n\r\n"
                 + b"a{color:red}\n" * 150)
    time.sleep(0.05)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@functools.cache
def bomb() -> bytes:
    """100 MB of zeros in about 100 KB of gzip (built once: it takes a moment)."""
    return gzip_bomb(10**8)


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as origin:
        origin.route("/short.css", body=b"a{color:red}", content_length=5000, headers=CSS)
        origin.route("/drip.css", body=drip(b"a{color:red}" * 100), interval=0.05, headers=CSS)
        origin.route("/drip-many.css", body=drip(b"a{color:red}" * 100), interval=0.05, headers=CSS)
        origin.route("/drip-head.css", body=b"a{}", head_interval=0.05, headers=CSS)
        origin.route("/stall.css", body=b"a{}", delay=10, headers=CSS)
        origin.route("/endless.css", body=endless(), chunked=True, headers=CSS)
        origin.route("/endless-slow.css", body=endless(b"a" * 16), chunked=True, interval=0.01,
                     headers=CSS)
        origin.route("/bomb.css", body=bomb(),
                     headers={**CSS, "Content-Encoding": "gzip"})
        origin.route("/not-gzip.css", body=b"a{color:red}",
                     headers={**CSS, "Content-Encoding": "gzip"})
        origin.route("/error-page.css", body=HTML_ERROR_PAGE, headers=CSS)
        origin.route("/error-page-spaced.css", body=b"\n\n  <html lang=en><body>500</body></html>",
                     headers={"Content-Type": "text/css; charset=utf-8"})
        origin.route("/login.png", body=HTML_ERROR_PAGE, headers={"Content-Type": "image/png"})
        origin.route("/login.woff2", body=HTML_ERROR_PAGE, headers={"Content-Type": "font/woff2"})
        origin.route("/fine.css", body=b"a{color:red}", headers=CSS)
        yield origin


@pytest.fixture(scope="module")
def raw() -> Iterator[RawOrigin]:
    raw = RawOrigin(reset_mid_body)
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()  # nothing listens there: connection refused


@pytest.fixture(scope="module")
def cb(_redis_server_once: RedisServer, tmp_path_factory, origin, raw, closed_port) -> Iterator[Cobrowse]:
    """One server for the module (each case has a URL of its own, so none sees another's
    negative-cache entry), over the suite's redis-server."""
    _redis_server_once.resume()
    _redis_server_once.start()
    settings = make_settings(
        tmp_path_factory.mktemp("origin-faults"), _redis_server_once.url, proxy_timeout=PROXY_TIMEOUT, proxy_types="css,font,image",
        allowed_external_domains=[origin.netloc, raw.netloc, f"127.0.0.1:{closed_port}"],
        allowed_private_networks=["127.0.0.1/32"], proxy_failure_ttl="60s")
    middleware = ResourceSyncMiddleware(plain_app, settings)
    with serve_in_thread(middleware) as base:
        yield Cobrowse(base, middleware)


#: (case, path on the scripted origin or a special target, ``as``)
CASES = [
    ("refused", "closed:/a.css", "style"),
    ("reset mid-body", "raw:/reset.css", "style"),
    ("body shorter than Content-Length", "/short.css", "style"),
    ("drip-feed past the deadline", "/drip.css", "style"),
    ("headers drip-fed past the deadline", "/drip-head.css", "style"),
    ("nothing sent before the deadline", "/stall.css", "style"),
    ("endless chunked body", "/endless.css", "style"),
    ("endless slow chunked body", "/endless-slow.css", "style"),
    ("gzip bomb", "/bomb.css", "style"),
    ("gzip label on a plain body", "/not-gzip.css", "style"),
    ("HTML error page labelled as CSS", "/error-page.css", "style"),
    ("HTML after whitespace labelled as CSS", "/error-page-spaced.css", "style"),
    ("HTML login page labelled as PNG", "/login.png", "image"),
    ("HTML login page labelled as WOFF2", "/login.woff2", "font"),
]


@pytest.mark.parametrize("case, target, kind", CASES, ids=[c[0] for c in CASES])
def test_origin_fault_ends_in_direct_load_and_nothing_is_cached(cb, origin, raw, closed_port,
                                                                 case, target, kind):
    url = (f"http://127.0.0.1:{closed_port}/a.css" if target.startswith("closed:")
           else f"http://{raw.netloc}/reset.css" if target.startswith("raw:")
           else origin.url(target))
    session = cb.new_session()
    started = time.monotonic()
    got = cb.fetch(session["view_token"], url, **{"as": kind})
    elapsed = time.monotonic() - started
    assert got.status_code == 302, (case, got.status_code, got.content[:100])
    assert got.headers["Location"] == url and got.headers["X-Cobrowse-Source"] == "direct"
    assert elapsed < FALLBACK_BOUND, f"{case}: the fallback took {elapsed:.2f}s"
    assert cb.middleware.store.get(PROXY_NAMESPACE, url) is None
    assert cb.middleware.store.get(session["session"], url) is None

    # The failure is remembered: the next agent gets the fallback at once, the origin is spared.
    hits = origin.hits() + raw.connections
    started = time.monotonic()
    again = cb.fetch(cb.new_session()["view_token"], url, **{"as": kind})
    assert again.status_code == 302 and time.monotonic() - started < 0.5
    assert origin.hits() + raw.connections == hits


def test_a_healthy_origin_still_works_beside_the_faulty_ones(cb, origin):
    """The control: the same settings proxy a good stylesheet (so the 302s above are the faults)."""
    session = cb.new_session()
    got = cb.fetch(session["view_token"], origin.url("/fine.css"), **{"as": "style"})
    assert got.status_code == 200 and got.headers["X-Cobrowse-Source"] == "proxy"
    assert got.content == b"a{color:red}"
    assert cb.middleware.store.get(PROXY_NAMESPACE, origin.url("/fine.css")) is not None


def test_many_agents_on_a_drip_fed_origin_all_fall_back_in_time_with_one_fetch(cb, origin):
    """Twenty agents ask at once for a stylesheet whose origin drips: one fetch, twenty 302s,
    none of them waiting past the deadline (single flight shares the failure too)."""
    url = origin.url("/drip-many.css")
    sessions = [cb.new_session() for _ in range(4)]
    barrier = threading.Barrier(20)
    results: list[tuple[int, float]] = []

    def agent(n: int) -> None:
        barrier.wait()
        started = time.monotonic()
        got = cb.fetch(sessions[n % 4]["view_token"], url, **{"as": "style"})
        results.append((got.status_code, time.monotonic() - started))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 20
    assert all(status == 302 for status, _ in results), results
    assert max(elapsed for _, elapsed in results) < FALLBACK_BOUND, results
    assert origin.hits("/drip-many.css") == 1
    assert cb.middleware.store.get(PROXY_NAMESPACE, url) is None
