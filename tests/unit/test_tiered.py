"""The tiered store: level-1 hits slide level 2's TTL now and then, not on every hit."""

import time

from middleware.store.base import ResourceMeta
from middleware.store.breaker import CircuitBreaker
from middleware.store.tiered import TieredStore


class CountingLevel2:
    name = "counting"

    def __init__(self):
        self.touches = []

    def ping(self):
        pass

    def put_resource(self, sid, url, meta, body, ttl):
        pass

    def touch_resource(self, sid, sha256, ttl):
        self.touches.append((sid, sha256, ttl))


def test_level1_hits_touch_level2_once_per_quarter_ttl():
    backend = CountingLevel2()
    store = TieredStore(CircuitBreaker(backend), 10_000_000, 60, cache_ttl=0.4, session_ttl=60)
    meta = ResourceMeta("a" * 64, 3, "image/png")
    store.put("s1", "https://s.example/a.png", meta, b"png")
    for _ in range(100):
        assert store.get("s1", "https://s.example/a.png")[1] == "L1"
    assert backend.touches == []  # fresh entries cost level 2 nothing
    time.sleep(0.11)  # past a quarter of the TTL
    for _ in range(100):
        store.get("s1", "https://s.example/a.png")
    assert backend.touches == [("s1", "a" * 64, 0.4)]


def test_stylesheets_are_accounted_with_their_served_variant():
    store = TieredStore(None, 10_000_000, 60, cache_ttl=60, session_ttl=60)
    store.put("s1", "https://s.example/a.css", ResourceMeta("b" * 64, 1000, "text/css"), b"x" * 1000)
    store.put("s1", "https://s.example/a.png", ResourceMeta("c" * 64, 1000, "image/png"), b"x" * 1000)
    sizes = dict((k[1], v[1]) for k, v in store.local._items.items())
    assert sizes["https://s.example/a.css"] - sizes["https://s.example/a.png"] == 1000


def test_link_never_copies_bytes_a_url_no_longer_holds():
    store = TieredStore(None, 10_000_000, 60, cache_ttl=60, session_ttl=60)
    old, new = ResourceMeta("1" * 64, 3, "image/png"), ResourceMeta("2" * 64, 3, "image/png")
    store.put("s1", "https://s.example/a.png", old, b"old")
    store.put("s1", "https://s.example/a.png", new, b"new")  # a.png no longer holds "old"
    assert store.link("s1", "https://s.example/b.png", "1" * 64) is None
    assert store.get("s1", "https://s.example/b.png") is None
    assert store.link("s1", "https://s.example/c.png", "2" * 64) == new
    assert store.get("s1", "https://s.example/c.png")[0].body == b"new"
