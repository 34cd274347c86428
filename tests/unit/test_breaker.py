"""The circuit breaker: opens after failures, fails fast while open, closes after a good probe."""

import time

import pytest

from middleware.store.base import Level2Unavailable
from middleware.store.breaker import CircuitBreaker


class FlakyBackend:
    name = "flaky"

    def __init__(self):
        self.up = True
        self.calls = 0

    def ping(self):
        if not self.up:
            raise ConnectionError("down")

    def get_session(self, sid, ttl):
        self.calls += 1
        if not self.up:
            raise TimeoutError("timed out")
        return {"sid": sid}


def test_opens_after_threshold_and_then_skips_the_backend():
    backend = FlakyBackend()
    failures = []
    breaker = CircuitBreaker(backend, threshold=3, retry_after=0.05, on_failure=lambda: failures.append(1))
    backend.up = False
    for _ in range(3):
        with pytest.raises(Level2Unavailable):
            breaker.call("get_session", "s", 1)
    assert breaker.is_open and backend.calls == 3 and len(failures) == 3
    with pytest.raises(Level2Unavailable, match="circuit is open"):
        breaker.call("get_session", "s", 1)
    assert backend.calls == 3  # the open breaker never touched the backend


def test_a_successful_probe_closes_it_without_a_request_paying_for_it():
    backend = FlakyBackend()
    breaker = CircuitBreaker(backend, threshold=1, retry_after=0.05)
    backend.up = False
    with pytest.raises(Level2Unavailable):
        breaker.call("get_session", "s", 1)
    assert breaker.state == "open"
    backend.up = True
    deadline = time.monotonic() + 5
    while breaker.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not breaker.is_open
    assert breaker.call("get_session", "s", 1) == {"sid": "s"}
    assert breaker.state == "ok"


def test_a_success_resets_the_failure_count():
    backend = FlakyBackend()
    breaker = CircuitBreaker(backend, threshold=2)
    backend.up = False
    with pytest.raises(Level2Unavailable):
        breaker.call("get_session", "s", 1)
    backend.up = True
    breaker.call("get_session", "s", 1)
    backend.up = False
    with pytest.raises(Level2Unavailable):
        breaker.call("get_session", "s", 1)
    assert not breaker.is_open
