"""Prometheus metrics, one registry per middleware instance.

The per-request counters are plain ``itertools.count`` objects read at scrape time: ``next()`` on
one is atomic under the GIL and takes no lock, so counting a cache hit costs tens of nanoseconds
(a prometheus-client ``Counter.inc()`` takes a lock and costs ~0.5 µs, more than the rest of a
level-1 hit's bookkeeping).
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

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


class FastCounter:
    """A lock-free counter: ``inc()`` is ``next()`` on an ``itertools.count``."""

    __slots__ = ("_count", "inc")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.inc: Callable[[], int] = partial(next, self._count)

    @property
    def value(self) -> int:
        # A count object pickles as count(n): n is the next value, i.e. how many were taken.
        return self._count.__reduce__()[1][0]


class _FastCounters(Collector):
    """Exports labelled FastCounters as Prometheus counter families."""

    def __init__(self) -> None:
        self.families: list[tuple[str, str, str, dict[str, FastCounter]]] = []

    def family(self, name: str, documentation: str, label: str, values: tuple[str, ...]) -> dict[str, FastCounter]:
        counters = {value: FastCounter() for value in values}
        self.families.append((name, documentation, label, counters))
        return counters

    def collect(self) -> Iterator[Metric]:
        for name, documentation, label, counters in self.families:
            family = CounterMetricFamily(name, documentation, labels=[label])
            for value, counter in counters.items():
                family.add_metric([value], counter.value)
            yield family


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        fast = _FastCounters()
        self.requests = fast.family("cobrowse_requests", "Requests under the prefix, by endpoint",
                                    "endpoint", ENDPOINTS)
        self.hits = fast.family("cobrowse_cache_hits", "Resources served from the cache, by level",
                                "tier", TIERS)
        self.fallbacks = fast.family("cobrowse_fallbacks", "Resources not in the cache, by fallback",
                                     "kind", FALLBACKS)
        self.rejections = fast.family("cobrowse_rejections", "Refused requests and upload parts, by reason",
                                      "reason", REJECTIONS)
        self.registry.register(fast)
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
