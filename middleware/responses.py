"""Response objects that know nothing of WSGI, and the header lists built once per resource.

Following WhiteNoise: what can be computed when a resource enters level 1 (its header lists, its
ETag, its 304) is computed then, so a hit is a lookup and a return.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any, Iterable

from .store.base import ResourceMeta

#: How long the agent's browser may reuse a served resource without asking again. Short, because
#: the customer may re-upload a URL with new bytes when the page changes; the ETag makes
#: revalidation cheap.
RESOURCE_MAX_AGE = 60

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    # An uploaded SVG opened directly must never run script; style-src lets SVG styles apply.
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    # The sandboxed viewer has an opaque origin and fetches fonts in CORS mode.
    ("Access-Control-Allow-Origin", "*"),
    # Tokens travel in URLs; never let them leak to an origin through Referer.
    ("Referrer-Policy", "no-referrer"),
)

STATUS_LINES = {
    200: "200 OK", 201: "201 Created", 204: "204 No Content", 302: "302 Found",
    304: "304 Not Modified", 400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found",
    405: "405 Method Not Allowed", 413: "413 Content Too Large", 415: "415 Unsupported Media Type",
    422: "422 Unprocessable Content", 429: "429 Too Many Requests",
    500: "500 Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes = b""


class HttpError(Exception):
    """An error answered as the spec's JSON shape: ``{"error": code, "message": text}``."""

    def __init__(self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)

    def response(self) -> Response:
        return json_response(self.status, {"error": self.code, "message": self.message}, self.headers)


def json_response(status: int, payload: Any, extra_headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *extra_headers,
    ]
    return Response(STATUS_LINES[status], headers, body)


def empty_response(status: int, extra_headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(STATUS_LINES[status], [("Content-Length", "0"), *extra_headers])


def redirect_response(location: str) -> Response:
    """Rule 4 of the decision table: let the agent's browser load the resource itself."""
    return Response(STATUS_LINES[302], [
        ("Location", location),
        ("Content-Length", "0"),
        ("Cache-Control", "private, no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Cobrowse-Source", "direct"),
    ])


def etag_for(meta: ResourceMeta) -> str:
    """An ETag naming the exact bytes stored (variants get their own, see the rewriters)."""
    return f'"{meta.sha256[:32]}"'


#: Types worth a precompressed variant, and the smallest body worth compressing.
COMPRESSIBLE_TYPES = ("text/css", "image/svg+xml", "text/html", "application/javascript")
MIN_COMPRESSIBLE = 512


@dataclass(frozen=True, slots=True)
class PreparedResource:
    """A resource ready to serve: its 200 and its 304, headers built once, and a gzip variant
    (its own ETag) when the type compresses and the saving is real."""

    etag: str
    ok: Response
    not_modified: Response
    gzipped: "PreparedResource | None" = None

    @classmethod
    def build(cls, body: bytes, content_type: str, etag: str, source: str, tier: str | None) -> "PreparedResource":
        """A cached, proxied or otherwise synced resource, with the spec's headers."""
        headers = [
            ("Cache-Control", f"private, max-age={RESOURCE_MAX_AGE}"),
            *SECURITY_HEADERS,
            ("X-Cobrowse-Source", source),
        ]
        if tier is not None:
            headers.append(("X-Cobrowse-Cache", tier))
        return cls._with_variants(body, content_type, etag, headers)

    @classmethod
    def build_page(cls, body: bytes, content_type: str, etag: str, csp: str) -> "PreparedResource":
        """Our own pages and scripts (snapshot, viewer, customer script): revalidated on every use."""
        return cls._with_variants(body, content_type, etag, [
            ("Cache-Control", "private, no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", csp),
            ("Referrer-Policy", "no-referrer"),
        ])

    @classmethod
    def _with_variants(cls, body: bytes, content_type: str, etag: str,
                       headers: list[tuple[str, str]]) -> "PreparedResource":
        gzipped = None
        if content_type.startswith(COMPRESSIBLE_TYPES) and len(body) >= MIN_COMPRESSIBLE:
            compressed = gzip.compress(body, 6, mtime=0)
            if len(compressed) <= 0.9 * len(body):
                headers = [*headers, ("Vary", "Accept-Encoding")]
                gzipped = cls._one(compressed, content_type, f'{etag[:-1]}-gzip"',
                                   [*headers, ("Content-Encoding", "gzip")])
        return cls._one(body, content_type, etag, headers, gzipped)

    @classmethod
    def _one(cls, body: bytes, content_type: str, etag: str, headers: list[tuple[str, str]],
             gzipped: "PreparedResource | None" = None) -> "PreparedResource":
        common = [("ETag", etag), *headers]
        ok = Response(STATUS_LINES[200], [
            ("Content-Type", content_type), ("Content-Length", str(len(body))), *common,
        ], body)
        return cls(etag, ok, Response(STATUS_LINES[304], common), gzipped)

    @property
    def size(self) -> int:
        """Bytes of bodies held (for level-1 accounting)."""
        return len(self.ok.body) + (len(self.gzipped.ok.body) if self.gzipped else 0)

    def answer(self, if_none_match: str | None, accept_encoding: str | None = None) -> Response:
        if self.gzipped is not None and accept_encoding and accepts_gzip(accept_encoding):
            return self.gzipped.answer(if_none_match)
        if if_none_match and etag_matches(if_none_match, self.etag):
            return self.not_modified
        return self.ok


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (``gzip;q=0`` refuses it)."""
    if "gzip" not in accept_encoding:
        return False
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
    return False


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison against an ``If-None-Match`` list (or ``*``)."""
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False
