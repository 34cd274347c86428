"""Level 1: an in-process cache bounded by the bytes it holds, safe to share between threads."""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

from cachetools import TTLCache

V = TypeVar("V")


class _CountingTTLCache(TTLCache):
    """A TTLCache that counts the entries it drops by itself (LRU eviction and expiry), so that
    whatever was built on an entry elsewhere can tell it may be gone."""

    drops = 0

    def popitem(self):  # type: ignore[no-untyped-def]
        self.drops += 1
        return super().popitem()

    def expire(self, time=None):  # type: ignore[no-untyped-def]
        expired = super().expire(time)
        if expired:
            self.drops += 1
        return expired


class LocalCache(Generic[V]):
    """A TTL cache whose bound is bytes, not entries.

    The caller states each entry's size (body + headers + key, SPEC 7) so the bound holds for many
    small entries as well as a few large ones. An entry larger than the whole bound is not cached.
    cachetools is not thread-safe, hence the lock; every operation under it is O(1) amortised.
    """

    def __init__(self, max_bytes: int, ttl: float, timer: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self._items: TTLCache[Hashable, tuple[V, int]] = _CountingTTLCache(
            maxsize=max_bytes, ttl=ttl, timer=timer, getsizeof=lambda item: item[1]
        )
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: Hashable, value: V, size: int) -> bool:
        """Cache ``value``, evicting the least recently used entries as needed; False if too big."""
        if size > self.max_bytes:
            return False
        with self._lock:
            self._items[key] = (value, size)
        return True

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    @property
    def drops(self) -> int:
        """How many times entries were evicted or expired (never decreases)."""
        return self._items.drops

    @property
    def size(self) -> int:
        """Bytes accounted now (expired entries may still count until the next write)."""
        with self._lock:
            return int(self._items.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
