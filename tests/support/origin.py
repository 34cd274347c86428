"""A scriptable origin server on loopback, for tests of anything that fetches from "the internet".

Tests may only talk to loopback, so the sites a server-side fetch would reach are played by an
:class:`Origin` on ``127.0.0.1`` (or ``::1``) whose answers each test scripts per path::

    with Origin() as origin:
        origin.route("/a.css", body=b"a{}", headers={"Content-Type": "text/css"})
        origin.redirect("/old.css", "/a.css")
        origin.route("/bomb.css", headers={"Content-Type": "text/css",
                                           "Content-Encoding": "gzip"}, body=gzip_bomb(10**8))
        origin.route("/slow.css", body=drip(b"a{}" * 100), interval=0.05)
        ... fetch origin.url("/a.css") ...
        assert origin.hits("/a.css") == 1
        assert origin.requests[0].headers["Host"] == "origin.test:%d" % origin.port

A route is a status, headers and a body: bytes, or a function returning an iterable of byte
pieces (sent one by one, ``interval`` seconds apart; :func:`endless` never ends). Unknown paths
answer 404. Every request is recorded (method, path, headers) before it is answered.

Also here: :func:`make_certificates` (a throw-away CA and a certificate for a host name, made with
the ``openssl`` command, for HTTPS origins) and :class:`ForwardProxy`, a minimal outbound HTTP proxy
(absolute-form GET and CONNECT) that records what it was asked to reach.
"""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import selectors
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable, Iterator

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Route:
    """What the origin answers for one path."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Body = b""
    chunked: bool = False  # Transfer-Encoding: chunked, one chunk per body piece
    interval: float = 0.0  # pause before each body piece
    delay: float = 0.0  # pause before sending anything at all
    head_interval: float = 0.0  # > 0: send the status line and headers one byte at a time
    content_length: int | None = None  # a Content-Length to claim instead of the true one


@dataclass(frozen=True)
class Recorded:
    """One request as the origin received it."""

    method: str
    path: str
    headers: dict[str, str]  # as sent (names in their original case; repeated names: the last)


def endless(piece: bytes = b"a" * 16384) -> Callable[[], Iterator[bytes]]:
    """A body that never ends (for the size cap): the same piece forever."""
    return lambda: itertools.repeat(piece)


def drip(data: bytes, size: int = 1) -> Callable[[], Iterator[bytes]]:
    """``data`` in pieces of ``size`` bytes (with a route ``interval``: a slow trickle)."""
    return lambda: (data[i:i + size] for i in range(0, len(data), size))


def gzip_bomb(decoded_size: int) -> bytes:
    """A small gzip body that decodes to ``decoded_size`` zero bytes (about 1000 times more).

    Up to 64 MiB it is one gzip member; beyond, identical 64 MiB members one after the other
    (which gzip allows), so a 10 GB bomb takes a moment to build and 10 MB to hold.
    """
    member_size = 64 * 1024 * 1024
    whole, rest = divmod(decoded_size, member_size)
    parts = [_gzip_zeros(member_size)] * whole if whole else []
    if rest or not parts:
        parts.append(_gzip_zeros(rest))
    return b"".join(parts)


def _gzip_zeros(size: int) -> bytes:
    """One gzip member of ``size`` zero bytes, compressed piece by piece."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [encoder.compress(zeros[: min(len(zeros), size - start)])
             for start in range(0, size, len(zeros))]
    parts.append(encoder.flush())
    return b"".join(parts)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


class Origin:
    """A threaded HTTP(S) server on loopback with scripted routes; a context manager.

    ``host`` is ``127.0.0.1`` or ``::1``; ``tls`` an ``ssl.SSLContext`` (server side) to serve
    HTTPS. ``port`` is chosen by the system.
    """

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.scheme = "https" if tls else "http"
        self.routes: dict[str, Route] = {}
        self.requests: list[Recorded] = []
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _server_class(host)((host, 0), _handler(self))
        self._server.tls = tls
        self.port: int = self._server.server_address[1]
        # A short poll interval: close() waits for it, and tests make many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    # --- scripting ----------------------------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: Body = b"",
        chunked: bool = False,
        interval: float = 0.0,
        delay: float = 0.0,
        head_interval: float = 0.0,
        content_length: int | None = None,
    ) -> None:
        """Answer ``path`` (with its query, exactly as requested) as told; see :class:`Route`."""
        self.routes[path] = Route(status, dict(headers or {}), body, chunked, interval, delay,
                                  head_interval, content_length)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``location`` (sent as given, relative or not)."""
        self.route(path, status=status, headers={"Location": location})

    # --- observing ----------------------------------------------------------------------------

    def hits(self, path: str | None = None) -> int:
        """How many requests reached ``path`` (None: any path)."""
        with self._lock:
            return sum(self._hits.values()) if path is None else self._hits[path]

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str = "/", host: str | None = None) -> str:
        """The URL of ``path`` here, optionally naming the origin ``host`` (resolved by a test
        resolver) instead of its address."""
        netloc = f"{host}:{self.port}" if host else self.netloc
        return f"{self.scheme}://{netloc}{path}"

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Origin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)
            self._hits[request.path] += 1


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True
        tls: ssl.SSLContext | None = None

        def get_request(self):  # type: ignore[no-untyped-def]
            sock, address = super().get_request()
            if self.tls is not None:  # handshake later, in the request's own thread
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, address

        def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
            pass  # clients that hang up or refuse our certificate are part of the tests

    return Server


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            origin._record(Recorded(self.command, self.path, dict(self.headers.items())))
            route = origin.routes.get(self.path) or Route(
                status=404, headers={"Content-Type": "text/plain"}, body=b"not found")
            try:
                self._answer(route)
            except (OSError, ssl.SSLError):
                pass  # the client went away (as a guarded fetch does when it has had enough)
            self.close_connection = True

        do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

        def _answer(self, route: Route) -> None:
            if route.delay and origin._stopping.wait(route.delay):
                return
            fixed = isinstance(route.body, bytes)
            head = [f"HTTP/1.1 {route.status} Scripted"]
            head += [f"{name}: {value}" for name, value in route.headers.items()]
            if route.chunked:
                head.append("Transfer-Encoding: chunked")
            elif route.content_length is not None:
                head.append(f"Content-Length: {route.content_length}")
            elif fixed:
                head.append(f"Content-Length: {len(route.body)}")  # type: ignore[arg-type]
            head.append("Connection: close")
            raw_head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if route.head_interval:
                for i in range(len(raw_head)):
                    if origin._stopping.wait(route.head_interval):
                        return
                    self.wfile.write(raw_head[i:i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(raw_head)
            if self.command == "HEAD":
                return
            pieces = [route.body] if fixed else route.body()  # type: ignore[operator]
            for piece in pieces:
                if origin._stopping.is_set():
                    return
                if route.interval:
                    time.sleep(route.interval)
                if not piece:
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece)
                self.wfile.flush()
            if route.chunked:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


def ipv6_available() -> bool:
    """Whether this machine can listen on ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate, for the client to trust
    cert: Path  # the server's certificate (for ``hostname``), then its key
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificates(directory: Path, hostname: str) -> Certificates | None:
    """A throw-away CA and a certificate it signed for ``hostname``; None without ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "cert.pem", directory / "cert.key", directory / "cert.csr"
    extensions = directory / "ext.cnf"
    extensions.write_text(
        f"subjectAltName=DNS:{hostname}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=cobrowse test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={hostname}"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", extensions],
    ]
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return Certificates(ca, cert, key)


# --- an outbound proxy ----------------------------------------------------------------------------


class ForwardProxy:
    """A minimal HTTP proxy on 127.0.0.1: absolute-form requests and CONNECT tunnels.

    ``requests`` records each request line's target (``http://127.0.0.1:8080/a.css`` or
    ``127.0.0.1:8443``) with its headers. It only ever connects to loopback targets (a refused
    target gets 403), so a test can never send traffic elsewhere through it.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # unbuffered: nothing the client sent may sit in a buffer we forget

            def handle(self) -> None:
                try:
                    proxy._handle(self.connection, self.rfile)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: close() waits for it, and tests make many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def _handle(self, client: socket.socket, rfile) -> None:  # type: ignore[no-untyped-def]
        line = rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        method, target, version = line.split(" ", 2)
        head_lines = []
        headers: dict[str, str] = {}
        while (header := rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            head_lines.append(header)
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip()] = value.strip()
        self.requests.append(Recorded(method, target, headers))

        if method == "CONNECT":
            host, _, port = target.rpartition(":")
        else:
            authority = target.split("://", 1)[1].split("/", 1)[0]
            host, _, port = authority.rpartition(":")
        host = host.strip("[]")
        if not _is_loopback(host):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection((host, int(port)), timeout=10)
        with upstream:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                path = "/" + target.split("://", 1)[1].partition("/")[2]
                kept = [h for h in head_lines if not h.lower().startswith(b"proxy-")]
                upstream.sendall(f"{method} {path} {version}\r\n".encode("latin-1")
                                 + b"".join(kept) + b"\r\n")
            _pipe(client, upstream)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ForwardProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pipe(a: socket.socket, b: socket.socket, idle: float = 10.0) -> None:
    """Copy bytes both ways between two sockets until one side closes or ``idle`` passes."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while events := selector.select(idle):
            for key, _ in events:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)
