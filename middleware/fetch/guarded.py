"""The guarded server-side fetch (SPEC 6): fetch a public resource without opening a way in.

A fetch that an agent's request can trigger is a classic server-side request forgery target, so
every hop goes through the same checks, in this order:

1. the URL is an absolute ``http``/``https`` URL without userinfo, parsed as browsers parse it
   (so ``http://2130706433/`` and ``http://0x7f.1/`` are ``127.0.0.1`` before anything else);
2. its host and port match ``allowedExternalDomains``;
3. the name is resolved once and every address checked (:mod:`.addresses`): one refused address
   refuses the whole answer, so a DNS record mixing public and private cannot be used to pick;
4. the connection goes to a checked address, never to the name again (no second lookup that a
   rebinding DNS server could answer differently), while TLS still verifies the name.

Redirects go back to step 1. Only a fixed, credential-free GET is sent. The body is capped at
``max_size`` before and after decompression, and the whole fetch, redirects included, at
``proxy_timeout``: a watchdog shuts the socket down when time is up, so neither a drip-fed body
nor drip-fed headers can hold a worker longer. Every refusal or failure is one
:class:`FetchError` whose ``reason`` is a short word, for logs and metrics.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

import ada_url
from urllib3.connection import HTTPConnection, HTTPSConnection, ProxyConfig
from urllib3.response import BaseHTTPResponse
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Url, make_headers, parse_url
from urllib3.util.ssl_match_hostname import CertificateError

from .. import sniff
from ..settings import Settings, domain_allowed
from ..urls import BadURL, normalize_url
from .addresses import IPAddress, refusal_reason

Resolver = Callable[[str, int], list[str]]

#: Content types each kind of resource may have (media type only, parameters ignored).
ACCEPTED_TYPES: dict[str, frozenset[str]] = {
    "css": frozenset({"text/css"}),
    "font": frozenset({
        "font/woff", "font/woff2", "font/ttf", "font/otf", "application/font-woff",
        "application/vnd.ms-fontobject", "application/x-font-ttf", "application/font-sfnt",
    }),
    "image": frozenset({
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/svg+xml",
        "image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
    }),
}

_ACCEPT = {
    "css": "text/css,*/*;q=0.1",
    "font": "font/woff2,font/woff,font/ttf,font/otf,application/font-woff,*/*;q=0.1",
    "image": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.1",
}
USER_AGENT = "cobrowse-resource-sync/0.1 (server-side resource sync)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class FetchError(Exception):
    """The fetch was refused or failed; ``reason`` is a short word such as ``address:loopback``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    """A successful fetch."""

    url: str  # the final URL, after redirects
    status: int
    content_type: str  # the Content-Type header as sent (its charset matters for CSS)
    body: bytes  # decoded from gzip/deflate
    cacheable: bool  # False when the origin said Cache-Control: no-store or private


@dataclass(frozen=True)
class _Target:
    """One checked hop: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # as the URL has it: a name, or an IP literal (IPv6 in brackets)
    port: int
    addresses: tuple[IPAddress, ...]  # every one checked
    path: str  # path and query

    @property
    def name(self) -> str:
        """The name TLS verifies: the host without brackets or a trailing dot."""
        return self.host.strip("[]").rstrip(".")

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, each once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedFetcher:
    """Fetches allowed public resources for server-side sync, refusing everything else.

    ``resolver(host, port) -> [ip, ...]`` resolves names (tests inject one); ``ca_certs`` is a CA
    bundle to verify HTTPS origins with instead of the system's (for tests and private CAs).
    Thread-safe: nothing is shared between fetches but the settings.
    """

    def __init__(
        self, settings: Settings, resolver: Resolver | None = None, *, ca_certs: str | None = None
    ) -> None:
        self.settings = settings
        self.resolver: Resolver = resolver or system_resolver
        self.ca_certs = ca_certs
        outbound = settings.proxy_outbound
        self._proxy: Url | None = parse_url(outbound) if outbound else None

    def fetch(self, url: str, kind: str) -> Fetched:
        """GET ``url`` as a resource of ``kind`` (``css``, ``font`` or ``image``), redirects
        followed; raises :class:`FetchError` for any refusal or failure."""
        if kind not in ACCEPTED_TYPES:
            raise FetchError("kind", repr(kind))
        deadline = _Deadline(self.settings.proxy_timeout)
        try:
            target = self._check(url, None, deadline)
            for _ in range(self.settings.proxy_max_redirects + 1):
                location = self._get(target, kind, deadline)
                if isinstance(location, Fetched):
                    return location
                target = self._check(location, target.url, deadline)
            raise FetchError("redirects", f"more than {self.settings.proxy_max_redirects}")
        finally:
            deadline.close()

    # --- checks (steps 1 to 3) ------------------------------------------------------------------

    def _check(self, raw: str, base: str | None, deadline: _Deadline) -> _Target:
        """``raw`` (resolved against ``base``) as a target whose every address passed, or refuse."""
        try:
            parsed = ada_url.URL(raw, base) if base else ada_url.URL(raw)
        except ValueError:
            # Scheme-relative and other relative forms have no scheme to judge: not http(s).
            raise FetchError("scheme" if base is None else "url", raw[:200]) from None
        scheme = parsed.protocol.rstrip(":")
        if scheme not in ("http", "https"):
            raise FetchError("scheme", scheme)
        if parsed.username or parsed.password:
            raise FetchError("userinfo")
        try:
            url = normalize_url(raw, base)  # also refuses control characters, which ada drops
        except BadURL as exc:
            raise FetchError("url", str(exc)) from None
        parsed = ada_url.URL(url)
        host = parsed.hostname
        port = int(parsed.port) if parsed.port else (443 if scheme == "https" else 80)

        rules = self.settings.allowed_external_domains
        if not domain_allowed(rules, host, port, scheme):
            # Tell a wrong port on an allowed host from a host that is not allowed at all.
            on_other_port = any(
                domain_allowed((rule,), host, rule.port or 443, "https") for rule in rules
            )
            raise FetchError("port" if on_other_port else "domain", f"{host}:{port}")

        addresses = self._addresses(host, port, deadline)
        for ip in addresses:
            reason = refusal_reason(ip, self.settings.allowed_private_networks)
            if reason is not None:
                raise FetchError(f"address:{reason}", f"{host} -> {ip}")
        return _Target(url, scheme, host, port, addresses, parsed.pathname + parsed.search)

    def _addresses(self, host: str, port: int, deadline: _Deadline) -> tuple[IPAddress, ...]:
        """The host's IP literal, or the addresses its name resolves to (looked up once)."""
        try:
            return (ipaddress.ip_address(host.strip("[]")),)
        except ValueError:
            pass
        answer = _call_with_timeout(lambda: self.resolver(host, port), deadline.remaining())
        try:
            addresses = tuple(dict.fromkeys(ipaddress.ip_address(a) for a in answer))
        except (TypeError, ValueError):
            raise FetchError("dns", f"{host}: not an address in the answer") from None
        if not addresses:
            raise FetchError("dns", f"{host}: no address")
        return addresses

    # --- one request (step 4) -------------------------------------------------------------------

    def _get(self, target: _Target, kind: str, deadline: _Deadline) -> Fetched | str:
        """GET one hop: the resource, or the Location of a redirect (not yet checked)."""
        conn: HTTPConnection | None = None
        response: BaseHTTPResponse | None = None
        try:
            conn, request_target, proxy_headers = self._connect(target, deadline)
            # Kept now: http.client lets go of the socket once it has the response headers.
            sock = conn.sock
            headers = {
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept": _ACCEPT[kind],
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
                **proxy_headers,
            }
            conn.request("GET", request_target, headers=headers, preload_content=False,
                         decode_content=False)
            response = conn.getresponse()
            deadline.remaining()  # headers cut short by the watchdog must not count as complete
            status = response.status
            if status in _REDIRECTS and response.headers.get("Location"):
                return response.headers["Location"]
            if not 200 <= status < 300:
                raise FetchError(f"status:{status}")
            content_type = response.headers.get("Content-Type", "").strip()
            if content_type.split(";")[0].strip().lower() not in ACCEPTED_TYPES[kind]:
                raise FetchError("content_type", content_type[:100])
            body = self._read_body(response, sock, deadline)
            refused = sniff.refusal(content_type, body)  # an HTML error page labelled as CSS, ...
            if refused is not None:
                raise FetchError("content_sniff", refused)
            cacheable = _cacheable(response.headers.get("Cache-Control", ""))
            return Fetched(target.url, status, content_type, body, cacheable)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, HTTPError, CertificateError) as exc:
            raise _failure(exc, deadline) from exc
        finally:
            if response is not None:
                response.close()  # an unread redirect body too: it owns the socket by now
            if conn is not None:
                conn.close()

    def _read_body(
        self, response: BaseHTTPResponse, sock: socket.socket | None, deadline: _Deadline
    ) -> bytes:
        """The decoded body, capped at ``max_size`` (declared, on the wire and decoded)."""
        body = _Body(response.headers.get("Content-Encoding", ""), self.settings.max_size)
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > body.limit:
            raise FetchError("too_large", f"Content-Length {length}")  # before reading any
        while True:
            # Each read waits no longer than the time left (once the body is complete,
            # http.client has closed the socket: then there is nothing left to wait for).
            if sock is not None and sock.fileno() != -1:
                sock.settimeout(deadline.remaining())
            chunk = response.read1(_CHUNK, decode_content=False)  # one recv, not "fill 64 KB"
            deadline.remaining()  # a watchdog cut looks like an end of body: check the clock
            if not chunk:
                return body.finish()
            body.feed(chunk)

    def _connect(
        self, target: _Target, deadline: _Deadline
    ) -> tuple[HTTPConnection, str, dict[str, str]]:
        """A connection to one of the target's checked addresses (directly or through the
        outbound proxy), the request target to send on it, and any headers the proxy needs."""
        error: Exception | None = None
        for ip in target.addresses:  # in the resolver's order, like a browser
            conn, request_target, headers = self._new_connection(target, ip, deadline)
            try:
                conn.connect()
                return conn, request_target, headers
            except NewConnectionError as exc:  # refused or unreachable: try the next address
                conn.close()
                error = exc
        assert error is not None
        raise error

    def _new_connection(
        self, target: _Target, ip: IPAddress, deadline: _Deadline
    ) -> tuple[HTTPConnection, str, dict[str, str]]:
        timeout = deadline.remaining()  # bounds the connect, and each wait until the first read
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": self.ca_certs}
        site = {"server_hostname": target.name, "assert_hostname": target.name, **tls}
        proxy = self._proxy
        if proxy is None:
            if target.scheme == "https":
                conn: HTTPConnection = _WatchedHTTPSConnection(
                    deadline, str(ip), target.port, timeout=timeout, **site)
            else:
                conn = _WatchedHTTPConnection(deadline, str(ip), target.port, timeout=timeout)
            return conn, target.path, {}

        proxy_port = proxy.port or (443 if proxy.scheme == "https" else 80)
        if target.scheme == "http":
            # Forwarding: the absolute-form names the checked address, the Host header the site.
            if proxy.scheme == "https":
                conn = _WatchedHTTPSConnection(
                    deadline, proxy.host, proxy_port, timeout=timeout, **tls)
            else:
                conn = _WatchedHTTPConnection(deadline, proxy.host, proxy_port, timeout=timeout)
            ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
            return conn, f"http://{ip_host}:{target.port}{target.path}", _proxy_auth(proxy)

        # Tunnel: CONNECT to the checked address, then TLS with the site's name through it.
        conn = _WatchedHTTPSConnection(
            deadline, proxy.host, proxy_port, timeout=timeout, proxy=proxy,
            proxy_config=ProxyConfig(ssl_context=None, use_forwarding_for_https=False,
                                     assert_hostname=None, assert_fingerprint=None),
            **site)
        conn.set_tunnel(str(ip), target.port, headers=_proxy_auth(proxy),
                        scheme=proxy.scheme or "http")
        return conn, target.path, {}


# --- helpers --------------------------------------------------------------------------------------


class _Deadline:
    """The fetch's total time budget, and a watchdog that cuts its connections when it runs out.

    Socket timeouts bound each wait, not their sum: a server dripping one byte per second never
    trips them. So a timer shuts down every socket of the fetch at the deadline; it works on
    duplicates of the sockets, which it owns, so that it can never touch a descriptor number
    that was closed and reused meanwhile.
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None  # started with the first connection
        self.expired = False

    def remaining(self) -> float:
        """Seconds left; raises FetchError("timeout") once there are none."""
        left = self._end - time.monotonic()
        if left <= 0 or self.expired:
            raise FetchError("timeout")
        return left

    def over(self) -> bool:
        return self.expired or time.monotonic() >= self._end

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline, whatever the fetch is doing then."""
        copy = sock.dup()
        with self._lock:
            self._sockets.append(copy)
            if self.expired:  # too late already
                _shutdown(copy)
            elif self._timer is None:
                self._timer = threading.Timer(max(0.0, self._end - time.monotonic()), self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes any thread blocked on the connection
    except OSError:
        pass


class _Watched:
    """Hands each new TCP socket to the fetch's deadline, before TLS or anything else runs."""

    def __init__(self, deadline: _Deadline, *args: object, **kwargs: object) -> None:
        self._deadline = deadline
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        self._deadline.watch(sock)
        return sock


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


def _call_with_timeout(fn: Callable[[], list[str]], timeout: float) -> list[str]:
    """``fn()`` (a DNS lookup), given up after ``timeout`` seconds.

    ``getaddrinfo`` cannot be interrupted, so it runs in a daemon thread that is abandoned if
    it takes too long; it ends on its own when the system resolver gives up.
    """
    outcome: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["answer"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported to the caller below
            outcome["error"] = exc
        done.set()

    threading.Thread(target=run, name="guarded-fetch-dns", daemon=True).start()
    if not done.wait(timeout):
        raise FetchError("timeout", "DNS lookup")
    if "error" in outcome:
        raise FetchError("dns", str(outcome["error"])[:200])
    return outcome["answer"]  # type: ignore[return-value]


def _failure(exc: BaseException, deadline: _Deadline) -> FetchError:
    """The FetchError for a network or protocol error."""
    if deadline.over():  # whatever broke, it broke because the watchdog cut the connection
        return FetchError("timeout")
    if isinstance(exc, NewConnectionError):  # a subclass of urllib3's TimeoutError, oddly
        return FetchError("connection", str(exc)[:200])
    if isinstance(exc, (TimeoutError, Urllib3Timeout)):  # socket's, or urllib3's read timeout
        return FetchError("timeout")
    if isinstance(exc, (ssl.SSLError, CertificateError)):
        return FetchError("tls", str(exc)[:200])
    return FetchError("connection", str(exc)[:200])


def _proxy_auth(proxy: Url) -> dict[str, str]:
    """The Proxy-Authorization header for a proxy URL with user:password@, else nothing."""
    if not proxy.auth:
        return {}
    user, _, password = proxy.auth.partition(":")
    return make_headers(proxy_basic_auth=f"{unquote(user)}:{unquote(password)}")


def _cacheable(cache_control: str) -> bool:
    """Whether a response may be cached by URL for other sessions: not if no-store or private."""
    directives = {part.split("=", 1)[0].strip().lower() for part in cache_control.split(",")}
    return not directives & {"no-store", "private"}


class _Body:
    """Collects a response body, decoding gzip or deflate, and refuses it past ``limit`` bytes.

    Both the bytes on the wire and the decoded bytes are capped, the latter *while* decoding
    (``max_length``), so a small gzip bomb never expands past the cap in memory.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.encoding = encoding.strip().lower()
        if self.encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError("encoding", self.encoding[:50])
        self._gzip = self.encoding in ("gzip", "x-gzip")
        self._decoder: zlib._Decompress | None = None
        self._pending = b""  # the first bytes of a deflate body, until its header can be read
        self._wire = 0
        self._out = bytearray()

    def feed(self, data: bytes) -> None:
        self._wire += len(data)
        if self._wire > self.limit:
            raise FetchError("too_large", "body")
        if self.encoding in ("", "identity"):
            self._out += data
            return
        if self._decoder is None:
            self._pending += data
            if not self._gzip and len(self._pending) < 2:
                return
            self._decoder = self._new_decoder(self._pending)
            data, self._pending = self._pending, b""
        try:
            while data:
                if self._decoder.eof:  # a gzip body may hold several members, one after another
                    if not self._gzip:
                        return  # bytes after the end of a deflate stream: ignored
                    self._decoder = self._new_decoder(data)
                room = self.limit - len(self._out) + 1  # one more than allowed: tells "over"
                self._out += self._decoder.decompress(data, room)
                if len(self._out) > self.limit:
                    raise FetchError("too_large", "decoded body")
                data = self._decoder.unused_data if self._decoder.eof else b""
        except zlib.error as exc:
            raise FetchError("encoding", str(exc)) from None

    def _new_decoder(self, head: bytes) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" means zlib-wrapped (RFC 9110) but some servers send it raw: read the header.
        wrapped = (len(head) >= 2 and head[0] & 0x0F == 8
                   and int.from_bytes(head[:2], "big") % 31 == 0)
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def finish(self) -> bytes:
        """The decoded body; refuses a compressed stream that stopped before its end."""
        compressed = self.encoding not in ("", "identity")
        if compressed and self._wire and (self._decoder is None or not self._decoder.eof):
            raise FetchError("encoding", "truncated compressed body")
        return bytes(self._out)
