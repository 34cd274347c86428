"""Rule 3 of the decision table: server-side sync.

Glue between the agent's request and the guarded fetch: a domain check before anything else, the
shared cache of public proxied responses, the negative cache, and single flight, so 50 agents
asking at once for one uncached stylesheet cost the origin one request.
"""

from __future__ import annotations

import hashlib
import logging

import ada_url

from ..settings import Settings, domain_allowed
from ..store.base import ResourceMeta
from ..store.tiered import CachedResource, TieredStore
from ..uploads import stored_content_type
from .flight import NegativeCache, SingleFlight
from .guarded import ACCEPTED_TYPES, FetchError, GuardedFetcher

log = logging.getLogger("cobrowse.fetch")

#: The pseudo-session under which public proxied responses are cached by URL. Real session ids
#: are hex, so this can never collide with one.
PROXY_NAMESPACE = "~proxy"


class ServerSideSync:
    def __init__(self, settings: Settings, store: TieredStore, fetcher: GuardedFetcher | None = None) -> None:
        self.rules = settings.allowed_external_domains
        self.store = store
        self.fetcher = fetcher or GuardedFetcher(settings)
        self.flight = SingleFlight()
        self.failures = NegativeCache(settings.proxy_failure_ttl)

    def allowed(self, url: str) -> bool:
        """Whether ``url``'s host and port match ``allowedExternalDomains`` (cheap, no I/O)."""
        if not self.rules:
            return False
        parsed = ada_url.URL(url)
        port = int(parsed.port) if parsed.port else None
        return domain_allowed(self.rules, parsed.hostname, port, parsed.protocol.rstrip(":"))

    def fetch(self, url: str, kind: str) -> CachedResource | None:
        """The resource, from the proxy cache or the origin; None when it cannot be had."""
        if not self.allowed(url):
            return None
        found = self.store.get(PROXY_NAMESPACE, url)
        if found is not None and found[0].meta.content_type.split(";")[0] in ACCEPTED_TYPES[kind]:
            return found[0]
        if self.failures.failed((url, kind)):
            return None
        return self.flight.do((url, kind), lambda: self._fetch_from_origin(url, kind))

    def _fetch_from_origin(self, url: str, kind: str) -> CachedResource | None:
        try:
            fetched = self.fetcher.fetch(url, kind)
        except FetchError as exc:
            log.info("server-side sync of %s refused or failed: %s", url, exc)
            self.failures.remember((url, kind), exc.reason)
            return None
        content_type = stored_content_type(fetched.content_type)
        if content_type is None:  # the guard checked the kind; this only guards our own table
            self.failures.remember((url, kind), "content_type")
            return None
        meta = ResourceMeta(hashlib.sha256(fetched.body).hexdigest(), len(fetched.body), content_type)
        if fetched.cacheable:
            self.store.put(PROXY_NAMESPACE, url, meta, fetched.body)
        return CachedResource(meta, fetched.body)
