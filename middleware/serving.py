"""Where an agent's resource comes from: the decision table of SPEC 5.

1. not an absolute http(s) URL -> 400
2. the session stores a copy -> serve it (level 1, else level 2, promoted)
3. server-side sync (the ``fetcher`` seam; off when none is plugged in)
4. otherwise -> 302 to the original URL (direct load)
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl

from .metrics import Metrics
from .responses import HttpError, PreparedResource, Response, etag_for, redirect_response, served_content_type
from .sessions import Session, SessionManager
from .store.tiered import CachedResource, TieredStore
from .urls import BadURL, normalize_url

#: ``as`` values the rewriters add, and the ``[proxy] types`` kind each one means.
KIND_OF_AS = {"style": "css", "font": "font", "image": "image"}


class ServerSideSync(Protocol):
    """Rule 3: fetch a resource from an allowed origin; None when it cannot (then rule 4)."""

    def fetch(self, url: str, kind: str, session: Session) -> PreparedResource | None: ...


class ResourceServer:
    def __init__(self, store: TieredStore, sessions: SessionManager, metrics: Metrics,
                 proxy_types: frozenset[str], fetcher: ServerSideSync | None = None) -> None:
        self.store = store
        self.sessions = sessions
        self.metrics = metrics
        self.proxy_types = proxy_types
        self.fetcher = fetcher

    def serve(self, query_string: str, if_none_match: str | None) -> Response:
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        session = self.sessions.authenticate(query.get("token"), "view")
        try:
            url = normalize_url(query.get("url", ""))
        except BadURL as exc:
            raise HttpError(400, "bad_url", f"url: {exc}") from None

        found = self.store.get(session.sid, url)
        if found is not None:
            entry, tier = found
            self.metrics.hits[tier].inc()
            return self._prepared(entry, tier).answer(if_none_match)

        kind = KIND_OF_AS.get(query.get("as", ""))
        if self.fetcher is not None and kind in self.proxy_types and session.css_server:
            proxied = self.fetcher.fetch(url, kind, session)
            if proxied is not None:
                self.metrics.fallbacks["proxy"].inc()
                return proxied.answer(if_none_match)
        self.metrics.fallbacks["direct"].inc()
        return redirect_response(url)

    @staticmethod
    def _prepared(entry: CachedResource, tier: str) -> PreparedResource:
        """The entry's response for ``tier``, built on its first hit and kept with the entry."""
        prepared = entry.prepared.get(tier)
        if prepared is None:
            prepared = entry.prepared[tier] = PreparedResource.build(
                entry.body, served_content_type(entry.meta), etag_for(entry.meta), "cache", tier)
        return prepared
