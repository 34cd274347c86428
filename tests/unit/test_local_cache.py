"""Level 1: the byte bound holds for large and many small entries; TTL; thread safety."""

import threading

from middleware.store.local import LocalCache
from middleware.store.tiered import ENTRY_OVERHEAD, TieredStore
from middleware.store.base import ResourceMeta


def test_bound_holds_with_large_entries():
    cache = LocalCache(max_bytes=10_000, ttl=60)
    for i in range(50):
        cache.put(i, b"x", 3000)
        assert cache.size <= 10_000
    assert len(cache) == 3
    assert cache.get(49) == b"x" and cache.get(0) is None


def test_entry_larger_than_the_bound_is_not_cached():
    cache = LocalCache(max_bytes=100, ttl=60)
    assert cache.put("big", b"x" * 200, 200) is False
    assert cache.get("big") is None and cache.size == 0


def test_entries_expire_after_the_ttl():
    now = [0.0]
    cache = LocalCache(max_bytes=100, ttl=10, timer=lambda: now[0])
    cache.put("k", "v", 1)
    now[0] = 9.9
    assert cache.get("k") == "v"
    now[0] = 10.1
    assert cache.get("k") is None


def test_tiered_accounting_counts_key_and_headers_so_many_small_entries_stay_bounded():
    bound = 1_000_000
    store = TieredStore(None, local_max_bytes=bound, local_ttl=60, cache_ttl=60, session_ttl=60)
    for i in range(20_000):  # 20k one-byte bodies would be 20 KB if only bodies counted
        url = f"https://site.example/{i}.png"
        store.put("s" * 32, url, ResourceMeta("0" * 64, 1, "image/png"), b"x")
    assert store.local.size <= bound
    per_entry = 1 + len("https://site.example/0.png") + 32 + ENTRY_OVERHEAD
    assert len(store.local) <= bound // per_entry + 1


def test_concurrent_writers_keep_the_bound():
    cache = LocalCache(max_bytes=50_000, ttl=60)

    def write(offset):
        for i in range(2000):
            cache.put((offset, i), b"", 100 + i % 7)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.size <= 50_000
