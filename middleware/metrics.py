"""Prometheus counters, one registry per middleware instance.

Labelled children are bound once here, so counting on the hot path is a single ``inc()``.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ENDPOINTS = (
    "sessions", "join", "current", "check", "upload", "snapshot", "resources",
    "agent", "script", "health", "metrics", "other",
)
TIERS = ("L1", "L2")
FALLBACKS = ("proxy", "direct")
REJECTIONS = (
    "bad_request", "bad_url", "forbidden", "not_found", "method_not_allowed", "too_large",
    "quota_exceeded", "unsupported_type", "rate_limited", "internal",
)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        requests = Counter("cobrowse_requests", "Requests under the prefix, by endpoint",
                           ["endpoint"], registry=self.registry)
        hits = Counter("cobrowse_cache_hits", "Resources served from the cache, by level",
                       ["tier"], registry=self.registry)
        fallbacks = Counter("cobrowse_fallbacks", "Resources not in the cache, by fallback",
                            ["kind"], registry=self.registry)
        rejections = Counter("cobrowse_rejections", "Refused requests and upload parts, by reason",
                             ["reason"], registry=self.registry)
        self.requests = {name: requests.labels(name) for name in ENDPOINTS}
        self.hits = {name: hits.labels(name) for name in TIERS}
        self.fallbacks = {name: fallbacks.labels(name) for name in FALLBACKS}
        self.rejections = {name: rejections.labels(name) for name in REJECTIONS}
        self.bytes_stored = Counter("cobrowse_stored_bytes", "Bytes of uploads accepted",
                                    registry=self.registry)
        self.resources_stored = Counter("cobrowse_stored_resources", "Uploads accepted",
                                        registry=self.registry)
        self.level2_errors = Counter("cobrowse_level2_errors", "Level-2 calls that failed or timed out",
                                     registry=self.registry)
        self._level2_up = Gauge("cobrowse_level2_up", "1 when level 2 is in use, 0 when degraded",
                                registry=self.registry)
        self._level1_bytes = Gauge("cobrowse_level1_bytes", "Bytes accounted in level 1",
                                   registry=self.registry)

    def watch(self, level2_up: Callable[[], bool], level1_bytes: Callable[[], int]) -> None:
        """Gauges read at scrape time rather than kept up to date on every request."""
        self._level2_up.set_function(lambda: 1.0 if level2_up() else 0.0)
        self._level1_bytes.set_function(lambda: float(level1_bytes()))

    def reject(self, reason: str) -> None:
        self.rejections.get(reason, self.rejections["bad_request"]).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
