"""Keep many agents from hammering one origin (SPEC 6).

:class:`SingleFlight` makes concurrent requests for the same URL share one fetch, and
:class:`NegativeCache` remembers for a short while that a URL failed, so a dead or hostile origin
is asked once per ``[proxy] failure.ttl`` rather than once per agent request.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

from cachetools import TTLCache

T = TypeVar("T")


class _Call(Generic[T]):
    """One execution in progress, which later callers of the same key wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Run ``fn`` once per key at a time: callers that arrive while it runs share its outcome.

    Only concurrent callers share: once a call has finished, the next caller runs ``fn`` again
    (caching the outcome is the caller's business).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call] = {}

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        """``fn()``'s result, or its exception raised again, run once for all concurrent callers."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
        assert call is not None
        if leader:
            try:
                call.result = fn()
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of any failure
                call.error = exc
            finally:
                with self._lock:
                    del self._calls[key]
                call.done.set()
        else:
            call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]


class NegativeCache:
    """Failed keys and why they failed, each forgotten ``ttl`` seconds after it was remembered.

    Bounded (``maxsize`` keys, the oldest dropped first) so that a flood of distinct failing URLs
    cannot grow memory; thread-safe.
    """

    def __init__(
        self, ttl: float, maxsize: int = 10_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._entries: TTLCache[Hashable, str] = TTLCache(maxsize=maxsize, ttl=ttl, timer=timer)

    def remember(self, key: Hashable, reason: str) -> None:
        """Record that ``key`` failed because of ``reason`` (restarting its ttl)."""
        with self._lock:
            self._entries[key] = reason

    def failed(self, key: Hashable) -> str | None:
        """The reason ``key`` failed, while that is remembered; else None."""
        with self._lock:
            return self._entries.get(key)

    def forget(self, key: Hashable) -> None:
        """Drop what is known about ``key`` (after it succeeded some other way, for instance)."""
        with self._lock:
            self._entries.pop(key, None)
