"""Customer uploads: one raw resource, a multipart batch, and ``check``.

Every limit is enforced while the body is read, never after: a body over ``max_size`` or over the
session's remaining quota stops being buffered the moment it crosses the line, and nothing of it is
stored. The SHA-256 is computed here from the bytes received; a client's claim is never trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wsgi import get_input_stream

from . import sniff
from .responses import HttpError
from .sessions import Session, SessionManager
from .store.base import ResourceMeta
from .store.tiered import TieredStore
from .urls import BadURL, normalize_url

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .metrics import Metrics

ALLOWED_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/svg+xml",
    "image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
    "text/css",
    "font/woff", "font/woff2", "font/ttf", "font/otf", "application/font-woff",
    "application/vnd.ms-fontobject", "application/x-font-ttf",
})
CHUNK = 64 * 1024
#: Parts in one batch, and bytes of JSON bodies: generous for real pages, small for attackers.
MAX_PARTS = 1000
MAX_JSON_BYTES = 1024 * 1024
MAX_CHECK_ENTRIES = 10_000
#: Multipart framing allowed on top of the payload bytes (part headers, boundaries).
MULTIPART_OVERHEAD = 4096
#: The header block of one multipart part (and a preamble or epilogue) is held in memory until it
#: ends: at most this many bytes (plus one read chunk), else 400. Real part headers are ~200 bytes.
MAX_PART_HEADER_BYTES = 16 * 1024
#: A Content-Type longer than this is no accepted type (RFC 6838 names are <= 127 + 1 + 127 chars,
#: plus a charset): refused as 415 before it is parsed.
MAX_CONTENT_TYPE_LENGTH = 512
#: URLs (X-Cobrowse-Url, part names, check entries) are limited by ``urls.MAX_URL_LENGTH`` (8 KiB).
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def stored_content_type(raw: str | None) -> str | None:
    """The content type to store, or None if it is not an accepted one.

    Stylesheets keep their ``charset`` parameter: it is what the customer's browser saw, and it
    decides how the sheet is decoded later (SPEC 5).
    """
    if not raw or len(raw) > MAX_CONTENT_TYPE_LENGTH:
        return None
    mimetype, options = parse_options_header(raw)
    mimetype = mimetype.lower()
    if mimetype not in ALLOWED_TYPES:
        return None
    charset = options.get("charset", "").strip().lower()
    if mimetype == "text/css" and charset and re.fullmatch(r"[a-z0-9._:-]{1,40}", charset):
        return f"text/css; charset={charset}"
    return mimetype


def _read(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes of the body; 400 when the body ends before its Content-Length or its
    framing is broken (a lying chunk size: werkzeug's and gunicorn's readers raise OSError)."""
    try:
        return stream.read(size)
    except ClientDisconnected:
        raise HttpError(400, "bad_request", "the request body ended before its Content-Length") from None
    except OSError as exc:
        raise HttpError(400, "bad_request", f"the request body could not be read: {exc}") from None


def read_json(environ: WSGIEnvironment, required: bool = True, limit: int = MAX_JSON_BYTES) -> Any:
    """The request's JSON body (at most ``limit`` bytes), or None when optional and empty."""
    stream = get_input_stream(environ, max_content_length=None)
    body = _read(stream, limit + 1)
    if len(body) > limit:
        raise HttpError(413, "too_large", f"this JSON body is limited to {limit} bytes")
    if not body.strip():
        if required:
            raise HttpError(400, "bad_request", "a JSON body is required")
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." nesting
        raise HttpError(400, "bad_request", "the body is not valid JSON") from None


@dataclass
class _Part:
    """One resource being received: hashed and buffered as it arrives, until a limit is hit."""

    url: str
    content_type: str | None
    limit: int
    error: str | None = None
    size: int = 0
    chunks: list[bytes] = field(default_factory=list)
    hasher: Any = field(default_factory=hashlib.sha256)

    def feed(self, data: bytes) -> None:
        if self.error:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.error = "too_large"
            self.chunks.clear()
            return
        self.hasher.update(data)
        self.chunks.append(data)


class Uploader:
    def __init__(self, store: TieredStore, sessions: SessionManager, max_size: int, metrics: Metrics) -> None:
        self.store = store
        self.sessions = sessions
        self.max_size = max_size
        self.metrics = metrics

    def _part_limit(self, session: Session) -> tuple[int, str]:
        """How many bytes the next resource may have, and the error for crossing that."""
        remaining = self.sessions.remaining_quota(session)
        if remaining < self.max_size:
            return remaining, "quota_exceeded"
        return self.max_size, "too_large"

    def _finish(self, session: Session, part: _Part) -> dict[str, Any]:
        """Store a fully received part; returns its ``stored`` entry or raises HttpError."""
        body = b"".join(part.chunks)
        refused = sniff.refusal(part.content_type or "", body)
        if refused is not None:
            raise HttpError(415, "unsupported_type", f"{part.content_type}: {refused}")
        if not self.sessions.reserve_bytes(session, len(body)):
            raise HttpError(413, "quota_exceeded", "the session's upload quota is used up")
        meta = ResourceMeta(part.hasher.hexdigest(), len(body), part.content_type or "")
        self.store.put(session.sid, part.url, meta, body)
        self.metrics.bytes_stored.inc(len(body))
        self.metrics.resources_stored.inc()
        return {"url": part.url, "sha256": meta.sha256, "size": meta.size, "content_type": meta.content_type}

    # --- POST /resources with a raw body --------------------------------------------------------

    def upload_raw(self, environ: WSGIEnvironment, session: Session) -> dict[str, Any]:
        try:
            url = normalize_url(environ.get("HTTP_X_COBROWSE_URL", ""))
        except BadURL as exc:
            raise HttpError(400, "bad_url", f"X-Cobrowse-Url: {exc}") from None
        content_type = stored_content_type(environ.get("CONTENT_TYPE"))
        if content_type is None:
            raise HttpError(415, "unsupported_type", "this content type is not accepted for upload")
        limit, error = self._part_limit(session)
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > limit:
            raise self._limit_error(error, limit)
        part = _Part(url, content_type, limit)
        stream = get_input_stream(environ, max_content_length=None)
        while chunk := _read(stream, CHUNK):
            part.feed(chunk)
            if part.error:
                raise self._limit_error(error, limit)
        return {"stored": [self._finish(session, part)], "rejected": []}

    def _limit_error(self, error: str, limit: int) -> HttpError:
        if error == "quota_exceeded":
            return HttpError(413, error, "the session's upload quota is used up")
        return HttpError(413, error, f"resources are limited to {limit} bytes")

    # --- POST /resources as multipart/form-data -------------------------------------------------

    def upload_batch(self, environ: WSGIEnvironment, session: Session, boundary: str) -> tuple[int, dict[str, Any]]:
        """Store every acceptable part; 201 when at least one was stored, else 422."""
        decoder = MultipartDecoder(boundary.encode("latin-1"), CHUNK + MAX_PART_HEADER_BYTES,
                                   max_parts=MAX_PARTS)
        stream: IO[bytes] = get_input_stream(environ, max_content_length=None)
        stored: list[dict[str, Any]] = []
        rejected: list[dict[str, str]] = []
        # The whole body may carry at most the session's remaining quota plus framing, so an
        # endless body is cut off even when every part in it is refused.
        budget = self.sessions.remaining_quota(session) + MAX_PARTS * MULTIPART_OVERHEAD
        received = 0
        part: _Part | None = None
        limit_error = "too_large"

        def handle(event: Any) -> None:
            nonlocal part, limit_error
            if isinstance(event, (Field, File)):
                part, limit_error = self._start_part(session, event)
            elif isinstance(event, Data) and part is not None:
                part.feed(event.data)
                if not event.more_data:
                    if part.error == "too_large":
                        part.error = limit_error
                    if part.error:
                        self.metrics.reject(part.error)
                        rejected.append({"url": part.url, "error": part.error})
                    else:
                        try:
                            stored.append(self._finish(session, part))
                        except HttpError as exc:
                            self.metrics.reject(exc.code)
                            rejected.append({"url": part.url, "error": exc.code})
                    part = None

        try:
            while True:
                chunk = _read(stream, CHUNK)
                received += len(chunk)
                if received > budget:
                    raise HttpError(413, "too_large", "the batch is larger than the session may upload")
                try:
                    decoder.receive_data(chunk or None)
                except RequestEntityTooLarge:  # a header block, preamble or epilogue kept growing
                    raise HttpError(400, "bad_request", "multipart part headers are limited to "
                                    f"{MAX_PART_HEADER_BYTES} bytes") from None
                while not isinstance(event := decoder.next_event(), (NeedData, Epilogue)):
                    handle(event)
                if isinstance(event, Epilogue) or not chunk:
                    break
        except RequestEntityTooLarge:  # next_event() past max_parts
            raise HttpError(413, "too_large", f"at most {MAX_PARTS} parts a batch") from None
        except ValueError as exc:  # werkzeug's decoder on broken framing
            raise HttpError(400, "bad_request", f"malformed multipart body: {exc}") from None
        if part is not None or not isinstance(event, Epilogue):
            raise HttpError(400, "bad_request", "the multipart body is truncated")
        return (201 if stored else 422), {"stored": stored, "rejected": rejected}

    def _start_part(self, session: Session, event: Field | File) -> tuple[_Part, str]:
        limit, limit_error = self._part_limit(session)
        name = event.name or ""  # None when Content-Disposition has no name
        try:
            url = normalize_url(name)
        except BadURL:
            return _Part(name[:2048], None, 0, error="bad_url"), limit_error
        content_type = stored_content_type(event.headers.get("Content-Type"))
        error = None if content_type else "unsupported_type"
        return _Part(url, content_type, limit, error=error), limit_error

    # --- POST /resources/check -----------------------------------------------------------------

    def check(self, environ: WSGIEnvironment, session: Session) -> dict[str, list[str]]:
        """Which listed URLs the customer must upload; the rest are linked without upload."""
        payload = read_json(environ)
        entries = payload.get("resources") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise HttpError(400, "bad_request", 'the body must be {"resources": [{"url", "sha256"}, ...]}')
        if len(entries) > MAX_CHECK_ENTRIES:
            raise HttpError(413, "too_large", f"at most {MAX_CHECK_ENTRIES} resources per check")
        wanted: list[tuple[str, str, str]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                raise HttpError(400, "bad_request", "each resource needs a url and a sha256")
            sha256 = entry.get("sha256")
            if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256.lower()):
                raise HttpError(400, "bad_request", f"bad sha256 for {entry['url'][:200]!r}")
            try:
                url = normalize_url(entry["url"])
            except BadURL as exc:
                raise HttpError(400, "bad_url", f"{entry['url'][:200]!r}: {exc}") from None
            wanted.append((entry["url"], url, sha256.lower()))

        missing = []
        for original, url, sha256 in wanted:
            # ``link`` also confirms that level 2 still holds the bytes, so a URL whose blob has
            # expired is reported missing rather than skipped.
            if self.store.holds(session.sid, url, sha256) or self.store.link(session.sid, url, sha256):
                continue
            missing.append(original)
        return {"missing": missing}
