"""The two levels composed: writes go to both, reads try level 1 then level 2 and promote.

Uploaded content is keyed by (session, URL): two sessions that upload different bytes for one URL
each see their own (SPEC 6). Level 2 stores bytes once per hash; level 1 keeps ready-to-serve
entries. Level 2 errors never escape: the breaker reports them and we carry on with level 1.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from .base import NOT_FETCHED, UNAVAILABLE, Level2Unavailable, ResourceMeta
from .breaker import CircuitBreaker
from .local import LocalCache

#: What an entry costs level 1 besides its body and URL: the prebuilt header lists, the objects.
ENTRY_OVERHEAD = 1024
#: Types for which the serving layer keeps a second body (rewritten CSS, or a gzip variant).
VARIANT_TYPES = ("text/css", "image/svg+xml", "application/json")
#: Sessions whose URL index level 1 remembers (an index is small: URL -> meta).
MAX_LOCAL_SESSIONS = 100_000


@dataclass(eq=False, slots=True)
class CachedResource:
    """One session's copy of one URL, as level 1 holds it.

    ``prepared`` is where the serving layer keeps what it builds once per entry (header lists,
    rewritten stylesheets), so later hits are a dict lookup.
    """

    meta: ResourceMeta
    body: bytes
    prepared: dict[Any, Any] = field(default_factory=dict)
    touched: float = field(default_factory=time.monotonic)  # when level 2's TTL was last slid


class TieredStore:
    def __init__(
        self,
        level2: CircuitBreaker | None,
        local_max_bytes: int,
        local_ttl: float,
        cache_ttl: float,
        session_ttl: float,
    ) -> None:
        self.level2 = level2
        self.local: LocalCache[CachedResource] = LocalCache(local_max_bytes, local_ttl)
        self.cache_ttl = cache_ttl
        self.touch_every = cache_ttl / 4
        self._changes = 0
        # Level 1's own index of what each session stored, for check/link/status while level 2
        # is down, and to drop a session's entries when it ends.
        self._index: TTLCache[str, dict[str, ResourceMeta]] = TTLCache(MAX_LOCAL_SESSIONS, session_ttl)
        # Per session: content hash -> a URL holding it, so ``link`` finds a source in O(1).
        self._by_hash: TTLCache[str, dict[str, str]] = TTLCache(MAX_LOCAL_SESSIONS, session_ttl)
        self._index_lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Grows with every change to what a (session, URL) names and every level-1 eviction or
        expiry, so answers remembered by the serving layer's fast path can tell with one integer
        compare that they may be stale, or hold bytes level 1 no longer accounts for."""
        return self._changes + self.local.drops

    # --- level-1 bookkeeping ----------------------------------------------------------------

    def _cache_locally(self, sid: str, url: str, entry: CachedResource) -> None:
        body = len(entry.body)
        if entry.meta.content_type.startswith(VARIANT_TYPES):
            body *= 2  # the served variant (rewritten stylesheet, gzip) lives beside the body
        self.local.put((sid, url), entry, body + len(url) + len(sid) + ENTRY_OVERHEAD)
        with self._index_lock:
            index = self._index.get(sid)
            if index is None:
                index = self._index[sid] = {}
            index[url] = entry.meta
            by_hash = self._by_hash.get(sid)
            if by_hash is None:
                by_hash = self._by_hash[sid] = {}
            by_hash[entry.meta.sha256] = url

    def _local_index(self, sid: str) -> dict[str, ResourceMeta]:
        with self._index_lock:
            return dict(self._index.get(sid) or {})

    def _level2(self, method: str, *args: Any) -> Any:
        """Call level 2; raises Level2Unavailable (also when there is no level 2)."""
        if self.level2 is None:
            raise Level2Unavailable("no level 2 configured")
        return self.level2.call(method, *args)

    # --- the operations ---------------------------------------------------------------------

    def get_with_session(self, sid: str, url: str, session_ttl: float) -> tuple[Any, Any]:
        """Level 2's session record and the session's copy of ``url``, in one round trip, for
        ``get(..., prefetched=)`` and ``SessionManager.live(..., record)``."""
        try:
            return self._level2("get_session_and_resource", sid, url, session_ttl, self.cache_ttl)
        except Level2Unavailable:
            return UNAVAILABLE, None

    def get(self, sid: str, url: str, prefetched: Any = NOT_FETCHED) -> tuple[CachedResource, str] | None:
        """The session's copy of ``url`` and the level it came from (``L1`` or ``L2``).

        ``prefetched`` is level 2's answer when ``get_with_session`` already asked for it.
        """
        entry = self.local.get((sid, url))
        if entry is not None:
            if time.monotonic() - entry.touched > self.touch_every:
                self._touch(sid, entry)
            return entry, "L1"
        found = prefetched
        if found is NOT_FETCHED:
            try:
                found = self._level2("get_resource", sid, url, self.cache_ttl)
            except Level2Unavailable:
                return None
        if found is None:
            return None
        entry = CachedResource(*found)
        self._cache_locally(sid, url, entry)
        return entry, "L2"

    def _touch(self, sid: str, entry: CachedResource) -> None:
        """Keep level 2's sliding TTL alive for an entry level 1 keeps serving: one small call
        per entry every quarter of ``cache_ttl``, not one per hit."""
        entry.touched = time.monotonic()
        try:
            self._level2("touch_resource", sid, entry.meta.sha256, self.cache_ttl)
        except Level2Unavailable:
            pass

    def put(self, sid: str, url: str, meta: ResourceMeta, body: bytes) -> str:
        """Store in both levels; returns ``"L1+L2"`` or ``"L1"`` (level 2 unavailable)."""
        self._changes += 1
        self._cache_locally(sid, url, CachedResource(meta, body))
        try:
            self._level2("put_resource", sid, url, meta, body, self.cache_ttl)
        except Level2Unavailable:
            return "L1"
        return "L1+L2"

    def stored(self, sid: str) -> dict[str, ResourceMeta]:
        """Every URL the session has in either level."""
        index = self._local_index(sid)
        try:
            index.update(self._level2("list_resources", sid))
        except Level2Unavailable:
            pass
        return index

    def link(self, sid: str, url: str, sha256: str) -> ResourceMeta | None:
        """Point ``url`` at content this session itself uploaded under another URL, if any."""
        self._changes += 1
        with self._index_lock:
            source = (self._by_hash.get(sid) or {}).get(sha256)
        local_entry = self.local.get((sid, source)) if source is not None else None
        if local_entry is not None and local_entry.meta.sha256 != sha256:
            local_entry = None  # that URL was uploaded again since, with other bytes
        try:
            meta = self._level2("link_resource", sid, url, sha256, self.cache_ttl)
        except Level2Unavailable:
            meta = None
        if local_entry is not None:
            self._cache_locally(sid, url, CachedResource(local_entry.meta, local_entry.body))
            return local_entry.meta
        return meta

    def in_level1(self, sid: str, url: str) -> bool:
        return (sid, url) in self.local

    def holds(self, sid: str, url: str, sha256: str) -> bool:
        """Whether level 1 has exactly these bytes for the session's ``url``."""
        entry = self.local.get((sid, url))
        return entry is not None and entry.meta.sha256 == sha256

    def drop_session(self, sid: str) -> None:
        """Forget a session's entries in level 1 (level 2 forgets them in ``end_session``)."""
        self._changes += 1
        with self._index_lock:
            index = self._index.pop(sid, None) or {}
            self._by_hash.pop(sid, None)
        for url in index:
            self.local.pop((sid, url))
