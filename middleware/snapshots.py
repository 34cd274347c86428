"""The page snapshot: the customer posts its serialised DOM, the agent gets it rewritten and safe.

The latest snapshot of a session is stored like a resource (both levels) under a key that is not a
URL, so it needs nothing new from level 2. It is rewritten for the agent once per token: every
resource reference points at the resources endpoint, and nothing in it can run script.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from .responses import HttpError, PreparedResource, Response
from .rewrite.html import rewrite_snapshot
from .sessions import Session, SessionManager
from .store.base import ResourceMeta
from .store.tiered import TieredStore
from .uploads import read_json
from .urls import BadURL, normalize_url

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Not a URL, so it can never collide with a resource, and status listings skip it.
SNAPSHOT_KEY = "~snapshot"
#: The snapshot may load images, styles, fonts and media from anywhere (direct loads redirect to
#: the original origins), but never run script, submit forms or navigate its frame elsewhere.
SNAPSHOT_CSP = ("default-src 'none'; img-src * data: blob:; style-src * 'unsafe-inline'; "
                "font-src * data:; media-src * data: blob:; script-src 'none'; object-src 'none'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox")
MAX_DIMENSION = 100_000


def _int_pair(value: Any, first: str, second: str, name: str) -> dict[str, int]:
    if value is None:
        return {first: 0, second: 0}
    if not isinstance(value, dict) or not all(
            isinstance(value.get(k), (int, float)) and 0 <= value[k] <= MAX_DIMENSION for k in (first, second)):
        raise HttpError(400, "bad_request", f"{name} must be {{{first!r}, {second!r}}} with small non-negative numbers")
    return {first: int(value[first]), second: int(value[second])}


class Snapshots:
    def __init__(self, prefix: str, store: TieredStore, sessions: SessionManager, max_bytes: int) -> None:
        self.endpoint = f"{prefix}/resources"
        self.store = store
        self.sessions = sessions
        self.max_bytes = max_bytes

    def post(self, environ: WSGIEnvironment, session: Session) -> dict[str, Any]:
        payload = read_json(environ, limit=self.max_bytes)
        if not isinstance(payload, dict) or not isinstance(payload.get("html"), str):
            raise HttpError(400, "bad_request", 'the body must be {"url", "html", "charset", "viewport"}')
        try:
            url = normalize_url(payload.get("url") if isinstance(payload.get("url"), str) else "")
        except BadURL as exc:
            raise HttpError(400, "bad_url", f"url: {exc}") from None
        charset = payload.get("charset") or ""
        if not isinstance(charset, str) or len(charset) > 64:
            raise HttpError(400, "bad_request", "charset must be a short string")
        document = {
            "url": url, "html": payload["html"], "charset": charset.strip().lower(),
            "viewport": _int_pair(payload.get("viewport"), "width", "height", "viewport"),
            "scroll": _int_pair(payload.get("scroll"), "x", "y", "scroll"),
        }
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        meta = ResourceMeta(hashlib.sha256(body).hexdigest(), len(body), "application/json")
        self.store.put(session.sid, SNAPSHOT_KEY, meta, body)
        # Stylesheets fall back to the referring document's encoding: this page's.
        self.sessions.set_page(session, url, document["charset"])
        return {"url": url, "version": meta.sha256[:16]}

    def info(self, session: Session) -> dict[str, Any]:
        """What the viewer needs to know of the latest snapshot (empty when there is none)."""
        found = self.store.get(session.sid, SNAPSHOT_KEY)
        if found is None:
            return {"snapshot": None}
        document = json.loads(found[0].body)
        return {"snapshot": {"version": found[0].meta.sha256[:16], "url": document["url"],
                             "viewport": document["viewport"], "scroll": document["scroll"]}}

    def get(self, query_string: str, if_none_match: str | None, accept_encoding: str | None = None) -> Response:
        token = dict(parse_qsl(query_string)).get("token", "")
        session = self.sessions.authenticate(token, "view")
        found = self.store.get(session.sid, SNAPSHOT_KEY)
        if found is None:
            raise HttpError(404, "not_found", "the customer has not shared a page yet")
        entry = found[0]
        prepared = entry.prepared.get(token)
        if prepared is None:
            document = json.loads(entry.body)
            endpoint, quoted_token = self.endpoint, quote(token, safe="")

            def make_url(absolute: str, kind: str) -> str:
                return f"{endpoint}?url={quote(absolute, safe='')}&token={quoted_token}&as={kind}"

            html = rewrite_snapshot(document["html"], document["url"], make_url).encode("utf-8")
            prepared = entry.prepared[token] = PreparedResource.build_page(
                html, "text/html; charset=utf-8", f'"{hashlib.sha256(html).hexdigest()[:32]}"', SNAPSHOT_CSP)
        return prepared.answer(if_none_match, accept_encoding)
