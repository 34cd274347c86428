"""A circuit breaker in front of a level-2 backend.

Level 2 failing must never fail a request or slow it much (SPEC 7). Each call is already bounded by
the backend's own short timeout; after ``threshold`` consecutive failures the breaker opens and
every call fails at once with :class:`Level2Unavailable`. While open, a background thread pings the
backend every ``retry_after`` seconds; the first successful ping closes the breaker. No request
ever waits on a probe.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .base import Level2, Level2Unavailable

log = logging.getLogger("cobrowse.level2")


class CircuitBreaker:
    def __init__(
        self,
        backend: Level2,
        threshold: int = 3,
        retry_after: float = 0.5,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.threshold = threshold
        self.retry_after = retry_after
        self._on_failure = on_failure
        self._failures = 0
        self._open = False
        self._lock = threading.Lock()
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def state(self) -> str:
        """``ok``, ``failing`` (errors, breaker still closed) or ``open``."""
        if self._open:
            return "open"
        return "failing" if self._failures else "ok"

    def call(self, method: str, *args: Any) -> Any:
        """Run ``backend.<method>(*args)``; raise :class:`Level2Unavailable` on any failure."""
        if self._open:
            raise Level2Unavailable(f"level 2 ({self.backend.name}) circuit is open")
        try:
            result = getattr(self.backend, method)(*args)
        except Exception as exc:  # any backend error is an outage to us, never a crash
            self._record_failure(exc)
            raise Level2Unavailable(f"level 2 ({self.backend.name}) failed: {exc}") from exc
        if self._failures:
            with self._lock:
                self._failures = 0
        return result

    def _record_failure(self, exc: Exception) -> None:
        if self._on_failure is not None:
            self._on_failure()
        with self._lock:
            self._failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self._open or self._failures < self.threshold:
                return
            self._open = True
        log.warning("level 2 (%s) unavailable, serving from level 1: %s", self.backend.name, exc)
        threading.Thread(target=self._probe_until_back, name="cobrowse-level2-probe", daemon=True).start()

    def _probe_until_back(self) -> None:
        while True:
            time.sleep(self.retry_after)
            try:
                self.backend.ping()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            with self._lock:
                self._failures = 0
                self._open = False
            log.warning("level 2 (%s) is back", self.backend.name)
            return
