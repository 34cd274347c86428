"""Single flight and the negative cache (SPEC 6: many agents, one origin fetch)."""

from __future__ import annotations

import threading
import time

import pytest

from middleware.fetch.flight import NegativeCache, SingleFlight


def _run_together(count: int, target) -> list[threading.Thread]:  # type: ignore[no-untyped-def]
    """Start ``count`` threads that call ``target(i)`` at (nearly) the same moment."""
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def test_fifty_callers_one_execution() -> None:
    flight = SingleFlight()
    calls = 0
    release = threading.Event()
    results: list[object] = []

    def fetch() -> bytes:
        nonlocal calls
        calls += 1
        release.wait(5)  # hold the flight open until every caller has joined it
        return b"a{color:red}"

    entered = threading.Semaphore(0)

    def call(i: int) -> None:
        entered.release()
        results.append(flight.do("u", fetch))

    threads = _run_together(50, call)
    for _ in range(50):
        assert entered.acquire(timeout=5)
    time.sleep(0.2)  # from calling do() to waiting in it takes microseconds; give it plenty
    release.set()
    _join(threads)
    assert calls == 1
    assert results == [b"a{color:red}"] * 50


def test_an_exception_reaches_every_caller() -> None:
    flight = SingleFlight()
    calls = 0
    release = threading.Event()
    errors: list[BaseException] = []

    def fetch() -> bytes:
        nonlocal calls
        calls += 1
        release.wait(5)
        raise ConnectionError("origin down")

    entered = threading.Semaphore(0)

    def call(i: int) -> None:
        entered.release()
        try:
            flight.do("u", fetch)
        except ConnectionError as exc:
            errors.append(exc)

    threads = _run_together(20, call)
    for _ in range(20):
        assert entered.acquire(timeout=5)
    time.sleep(0.2)
    release.set()
    _join(threads)
    assert calls == 1
    assert len(errors) == 20 and all(str(e) == "origin down" for e in errors)


def test_different_keys_run_independently() -> None:
    flight = SingleFlight()
    started: set[str] = set()
    both_started = threading.Event()
    lock = threading.Lock()

    def fetch(key: str) -> str:
        with lock:
            started.add(key)
            if len(started) == 2:
                both_started.set()
        # Each waits for the other: this only finishes if the two keys run at the same time.
        assert both_started.wait(5)
        return key.upper()

    results: dict[str, str] = {}

    def call(i: int) -> None:
        key = "ab"[i]
        results[key] = flight.do(key, lambda: fetch(key))

    _join(_run_together(2, call))
    assert results == {"a": "A", "b": "B"}


def test_after_a_flight_lands_the_next_call_runs_again() -> None:
    flight = SingleFlight()
    assert flight.do("k", lambda: 1) == 1
    assert flight.do("k", lambda: 2) == 2  # nothing cached: that is the caches' job
    with pytest.raises(ValueError):
        flight.do("k", lambda: int("x"))
    assert flight.do("k", lambda: 3) == 3  # a failure does not stick either


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_negative_cache_remembers_then_expires() -> None:
    clock = FakeClock()
    cache = NegativeCache(ttl=60, timer=clock)
    assert cache.failed("http://cdn.example/a.css") is None
    cache.remember("http://cdn.example/a.css", "status:503")
    clock.now += 59
    assert cache.failed("http://cdn.example/a.css") == "status:503"
    assert cache.failed("http://cdn.example/b.css") is None
    clock.now += 2
    assert cache.failed("http://cdn.example/a.css") is None


def test_negative_cache_is_bounded_and_forgets_on_request() -> None:
    cache = NegativeCache(ttl=60, maxsize=3)
    for i in range(10):
        cache.remember(i, "dns")
    assert sum(cache.failed(i) is not None for i in range(10)) == 3
    cache.forget(9)
    assert cache.failed(9) is None


def test_negative_cache_is_thread_safe() -> None:
    cache = NegativeCache(ttl=60, maxsize=100)
    errors: list[BaseException] = []

    def hammer(i: int) -> None:
        try:
            for j in range(500):
                cache.remember((i, j), "timeout")
                cache.failed((i, j - 1))
        except BaseException as exc:  # noqa: BLE001 - any race shows up as an error here
            errors.append(exc)

    _join(_run_together(8, hammer))
    assert errors == []
