"""Where an agent's resource comes from: the decision table of SPEC 5.

1. not an absolute http(s) URL -> 400
2. the session stores a copy -> serve it (level 1, else level 2, promoted)
3. server-side sync, when the session allows it, ``as`` names a kind in ``[proxy] types`` and the
   host is allowed -> serve what the guarded fetch got
4. otherwise -> 302 to the original URL (direct load)

Stylesheets, whatever their source, are served as UTF-8 with every URL in them pointing back here
for the same token. That rewrite is done once per stored sheet and token and kept with the entry.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol
from urllib.parse import parse_qsl, quote

from werkzeug.http import parse_options_header

from .metrics import Metrics
from .responses import HttpError, PreparedResource, Response, etag_for, redirect_response
from .rewrite.charset import decode_stylesheet, utf8_stylesheet_bytes
from .rewrite.css import rewrite_stylesheet
from .sessions import REVALIDATE_AFTER, Session, SessionManager
from .store.base import NOT_FETCHED
from .store.tiered import CachedResource, TieredStore
from .urls import BadURL, normalize_url

#: ``as`` values the rewriters add, and the ``[proxy] types`` kind each one means.
KIND_OF_AS = {"style": "css", "font": "font", "image": "image"}
#: Variants one entry keeps (tokens x referrer encodings); a shared proxied sheet read by many
#: sessions starts afresh past this, so an entry's memory stays bounded.
MAX_VARIANTS = 16
#: What the agent's browser last got for each URL, per session, for the viewer's panel.
MAX_SERVED_PER_SESSION = 5000
#: How long a remembered answer may be given without asking the session and the store again:
#: the same staleness a session record may have (sessions.REVALIDATE_AFTER).
HOT_FOR = REVALIDATE_AFTER
#: Remembered answers kept at most (then they are all dropped and remembered afresh).
MAX_HOT = 4096
L1_HIT = ("cache", "L1", 200)


class HotAnswer:
    """A level-1 hit remembered by its raw query string: the fast path's whole state."""

    __slots__ = ("session", "url", "prepared", "until", "generation")

    def __init__(self, session: Session, url: str, prepared: PreparedResource, until: float, generation: int):
        self.session = session
        self.url = url
        self.prepared = prepared
        self.until = until
        self.generation = generation


class ProxyFetcher(Protocol):
    """Rule 3: a resource fetched from an allowed origin; None when it cannot be had (rule 4)."""

    def fetch(self, url: str, kind: str) -> CachedResource | None: ...


def is_stylesheet(entry: CachedResource) -> bool:
    return entry.meta.content_type.startswith("text/css")


class ResourceServer:
    def __init__(self, prefix: str, store: TieredStore, sessions: SessionManager, metrics: Metrics,
                 proxy_types: frozenset[str], fetcher: ProxyFetcher | None = None) -> None:
        self.endpoint = f"{prefix}/resources"
        self.store = store
        self.sessions = sessions
        self.metrics = metrics
        self.proxy_types = proxy_types
        self.fetcher = fetcher
        self.hot: dict[str, HotAnswer] = {}
        self._hot_generation = -1

    def hot_answer(self, query_string: str) -> HotAnswer | None:
        """The remembered answer for this exact query, if it may still be given as it is.

        It may while it is younger than ``HOT_FOR``, nothing in the store changed since, and its
        session was not ended here; otherwise ``serve`` decides afresh (and remembers again).
        """
        hot = self.hot.get(query_string)
        if (hot is None or hot.generation != self.store.generation or hot.session.ended
                or hot.until < time.monotonic()):
            return None
        hot.session.served[hot.url] = L1_HIT
        return hot

    def _remember(self, query_string: str, session: Session, url: str, prepared: PreparedResource,
                  generation: int) -> None:
        now = time.monotonic()
        if generation != self._hot_generation or len(self.hot) >= MAX_HOT:
            # Answers of an older generation may hold bodies level 1 has let go: drop them all,
            # so what the fast path keeps alive is always accounted for in level 1.
            self.hot = {}
            self._hot_generation = generation
        self.hot[query_string] = HotAnswer(session, url, prepared, now + HOT_FOR, generation)

    def serve(self, query_string: str, if_none_match: str | None, accept_encoding: str | None = None) -> Response:
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        token = query.get("token", "")
        sid = self.sessions.verify(token, "view").session
        try:
            url = normalize_url(query.get("url", ""))
        except BadURL as exc:
            raise HttpError(400, "bad_url", f"url: {exc}") from None
        prefetched = NOT_FETCHED
        if self.sessions.is_fresh(sid) or self.store.in_level1(sid, url):
            session = self.sessions.require_live(sid)
        else:
            # This process has not seen the session lately: one level-2 round trip brings both
            # its record and the resource.
            record, prefetched = self.store.get_with_session(sid, url, self.sessions.session_ttl)
            session = self.sessions.require_live(sid, record)
        # Set by the rewriter on @import targets: the importing sheet's encoding (CSS Syntax 3).
        referrer_charset = query.get("cs") or session.charset

        generation = self.store.generation
        found = self.store.get(sid, url, prefetched)
        if found is not None:
            entry, tier = found
            self.metrics.hits[tier].inc()
            self._record(session, url, ("cache", tier, 200))
            prepared = self._prepared(entry, url, "cache", tier, token, referrer_charset)
            if generation == self.store.generation:  # nothing changed while we looked
                # Next time it is a level-1 hit (a level-2 hit was promoted just now).
                hot = prepared if tier == "L1" else self._prepared(entry, url, "cache", "L1", token, referrer_charset)
                self._remember(query_string, session, url, hot, generation)
            return prepared.answer(if_none_match, accept_encoding)

        kind = KIND_OF_AS.get(query.get("as", ""))
        if self.fetcher is not None and kind in self.proxy_types and session.css_server:
            entry = self.fetcher.fetch(url, kind)
            if entry is not None:
                self.metrics.fallbacks["proxy"].inc()
                self._record(session, url, ("proxy", None, 200))
                prepared = self._prepared(entry, url, "proxy", None, token, referrer_charset)
                return prepared.answer(if_none_match, accept_encoding)
        self.metrics.fallbacks["direct"].inc()
        self._record(session, url, ("direct", None, 302))
        return redirect_response(url)

    @staticmethod
    def _record(session: Session, url: str, outcome: tuple[str, str | None, int]) -> None:
        if len(session.served) < MAX_SERVED_PER_SESSION or url in session.served:
            session.served[url] = outcome

    def _prepared(self, entry: CachedResource, url: str, source: str, tier: str | None, token: str,
                  referrer_charset: str) -> PreparedResource:
        """The entry's ready response, built on first use and kept with the entry."""
        stylesheet = is_stylesheet(entry)
        key = (source, tier, token, referrer_charset) if stylesheet else (source, tier)
        prepared = entry.prepared.get(key)
        if prepared is not None:
            return prepared
        if stylesheet:
            body = self._rewrite_stylesheet(entry, url, token, referrer_charset)
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            content_type = "text/css; charset=utf-8"
        else:
            body, etag, content_type = entry.body, etag_for(entry.meta), entry.meta.content_type
        prepared = PreparedResource.build(body, content_type, etag, source, tier)
        if len(entry.prepared) >= MAX_VARIANTS:
            entry.prepared.clear()
        entry.prepared[key] = prepared
        return prepared

    def _rewrite_stylesheet(self, entry: CachedResource, url: str, token: str, referrer_charset: str) -> bytes:
        http_charset = parse_options_header(entry.meta.content_type)[1].get("charset")
        text, encoding = decode_stylesheet(entry.body, http_charset, referrer_charset or None)
        endpoint, quoted_token = self.endpoint, quote(token, safe="")
        # An @import target falls back to its importing sheet's encoding, as in browsers: pass
        # it along in the rewritten URL, where serve() reads it back as ``cs``.
        import_hint = "" if encoding == "utf-8" else f"&cs={quote(encoding)}"

        def make_url(absolute: str, kind: str) -> str:
            target = f"{endpoint}?url={quote(absolute, safe='')}&token={quoted_token}&as={kind}"
            return target + import_hint if kind == "style" else target

        return utf8_stylesheet_bytes(rewrite_stylesheet(text, url, make_url))
