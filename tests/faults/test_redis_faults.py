"""Level 2 (a real redis-server) fails under live traffic: killed, frozen, restarted empty, out of
memory, slow. SPEC 7: level 2 failing never fails a request, keeps answers within normal latency,
is reported on /health and /metrics, and is used again once back, without a restart.

Each test runs :class:`~tests.faults.conftest.Traffic` (four client threads of uploads, reads,
checks, new sessions) before, during and after the fault, and asserts that every request got the
answer level 1 or the fallbacks give, each within one second. Level 2 being used again is proven
by a new upload landing in Redis (``cb:b:<sha256>``) and by a second middleware instance, with an
empty level 1 of its own (another worker, in effect), reading it from level 2.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Self

import pytest
import redis
import requests
from werkzeug.test import Client

from middleware import ResourceSyncMiddleware
from middleware.sessions import REVALIDATE_AFTER
from tests.conftest import RedisServer
from tests.faults.conftest import (
    SITE,
    Traffic,
    assert_all_answered,
    forget_dump,
    health,
    image_body,
    kill,
    metric,
    metrics,
    redis_client,
    wait_for,
)
from tests.integration.conftest import Cobrowse, make_settings
from tests.support.servers import plain_app, serve_in_thread

#: How long each fault lasts once the server has noticed it.
HOLD = 1.5
QUOTA = 1024 * 1024 * 1024


@pytest.fixture
def cb(redis_server: RedisServer, tmp_path) -> Iterator[Cobrowse]:
    # A quota no test traffic reaches: these tests are about level 2, not limits.
    middleware = ResourceSyncMiddleware(plain_app, make_settings(tmp_path, redis_server.url),
                                        session_max_bytes=QUOTA)
    with serve_in_thread(middleware) as base:
        yield Cobrowse(base, middleware)


@dataclass
class Observer:
    """Samples /health and /metrics every 0.1 s from a thread of its own."""

    cb: Cobrowse
    samples: list[tuple[float, str, float]] = field(default_factory=list)  # (time, status, level2_up)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        def run() -> None:
            while not self._stop.wait(0.1):
                try:
                    status = health(self.cb)["status"]
                    up = metric(metrics(self.cb), "cobrowse_level2_up")
                except requests.RequestException:
                    status, up = "unanswered", -1.0
                self.samples.append((time.monotonic(), status, up))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def between(self, start: float, end: float) -> list[tuple[str, float]]:
        return [(status, up) for t, status, up in self.samples if start <= t <= end]


def assert_level2_used_again(cb: Cobrowse, server: RedisServer, session: dict, tmp_path) -> None:
    """A new upload lands in Redis, and a process with an empty level 1 reads it from level 2.

    A process re-reads (and, if level 2 lost it, re-writes) a session record at most once a
    second (README), so the upload comes a little over a second after the session's last use."""
    time.sleep(REVALIDATE_AFTER + 0.05)
    body = image_body(random.Random(99))
    url = f"{SITE}/after-recovery.png"
    assert cb.upload(session, url, body, "image/png").status_code == 201
    with redis_client(server) as client:
        assert client.get(f"cb:b:{hashlib.sha256(body).hexdigest()}") == body
    got = read_elsewhere(server, tmp_path / "other", session, url)
    assert got.status_code == 200 and got.get_data() == body, got.get_data()[:200]
    assert got.headers["X-Cobrowse-Cache"] == "L2"
    assert metric(metrics(cb), "cobrowse_level2_up") == 1.0


def read_elsewhere(server: RedisServer, folder, session: dict, url: str):
    """``url`` read by another middleware instance (its own, empty level 1: another worker).

    Retried for a few seconds: that instance's first level-2 calls may time out (200 ms) on a
    busy machine, which it rightly answers as "unknown session" (403) rather than waiting."""
    other = ResourceSyncMiddleware(plain_app, make_settings(folder, server.url))
    client = Client(other)
    answers = []

    def read() -> bool:
        answers.append(client.get("/_cobrowse/resources",
                                   query_string={"url": url, "token": session["view_token"]}))
        return answers[-1].status_code == 200

    wait_for(read, timeout=5, interval=0.2)
    return answers[-1]


def run_fault(cb: Cobrowse, server: RedisServer, tmp_path, inject: Callable[[], None],
              repair: Callable[[], None], *, persistent: bool = True) -> Traffic:
    """Traffic before, during and after a fault; the common assertions of every case.

    ``persistent``: the fault lasts until repaired, so /health must say ``degraded`` and
    ``cobrowse_level2_up`` be 0 in every sample from the moment it is noticed until the repair.
    Otherwise (short stalls) it must be seen at least once.
    """
    traffic = Traffic(cb, seed=zlib.crc32(inject.__name__.encode()) % 1000)
    traffic.prime()
    errors_before = metric(metrics(cb), "cobrowse_level2_errors_total")
    assert health(cb)["status"] == "ok"
    with Observer(cb) as observer:
        traffic.start()
        time.sleep(0.3)
        inject()
        try:
            noticed = wait_for(lambda: health(cb)["status"] == "degraded", timeout=5)
            assert noticed, "/health never said degraded while level 2 was failing"
            noticed_at = time.monotonic()
            time.sleep(HOLD)
            held_until = time.monotonic()
        finally:
            repair()
        assert wait_for(lambda: health(cb)["status"] == "ok", timeout=10), "level 2 never came back"
        time.sleep(0.5)  # traffic on a recovered level 2 too
        outcomes = traffic.stop()

    print(f"\n{inject.__name__}: {len(outcomes)} requests, slowest {max(o.elapsed for o in outcomes):.3f}s")
    assert_all_answered(outcomes)
    during = observer.between(noticed_at + 0.3, held_until)  # the breaker has opened by then
    assert during, "no /health samples during the fault"
    if persistent:
        assert all(status == "degraded" and up == 0.0 for status, up in during), during
    else:
        assert ("degraded", 0.0) in during, during
    page = metrics(cb)
    assert metric(page, "cobrowse_level2_errors_total") > errors_before
    assert health(cb)["tiers"]["L2"]["status"] == "ok"
    assert_level2_used_again(cb, server, traffic.sessions[0], tmp_path)
    return traffic


def test_redis_killed_mid_traffic(cb, redis_server, tmp_path):
    """SIGKILL under load: connections reset, then refused; restart later, with no data."""
    during: dict[str, dict] = {}

    def killed() -> None:
        forget_dump(redis_server)
        kill(redis_server)

    def restarted() -> None:
        # A session created while level 2 is dead lives in level 1 ...
        during["session"] = cb.new_session()
        redis_server.start()

    traffic = run_fault(cb, redis_server, tmp_path, killed, restarted)
    # ... and reaches level 2 once it is back (at its next use), for every process to see.
    time.sleep(REVALIDATE_AFTER + 0.05)  # sessions re-read level 2 at most once a second
    session = during["session"]
    body = image_body(random.Random(7))
    assert cb.upload(session, f"{SITE}/late.png", body, "image/png").status_code == 201
    got = read_elsewhere(redis_server, tmp_path / "late", session, f"{SITE}/late.png")
    assert got.status_code == 200 and got.get_data() == body
    assert len(traffic.outcomes) > 100


def test_redis_frozen_mid_traffic(cb, redis_server, tmp_path):
    """SIGSTOP: the kernel accepts connections, nothing answers; each call pays its timeout
    until the breaker opens, and no request waits on Redis after that."""
    run_fault(cb, redis_server, tmp_path, redis_server.pause, redis_server.resume)


def test_redis_out_of_memory(cb, redis_server, tmp_path):
    """maxmemory below what Redis holds, noeviction: every write is refused with OOM, reads and
    PING still work. We decide /health must say ``degraded`` (and ``cobrowse_level2_up`` 0) for
    as long as writes are refused: uploads and sessions then live only in the level 1 of the
    process that took them, which is exactly what ``degraded`` tells an operator. A PING-only
    probe would report ``ok`` and close the breaker against a level 2 that cannot store."""
    filler = "cb-test:filler"

    def out_of_memory() -> None:
        with redis_client(redis_server) as client:
            client.set(filler, b"\x00" * (2 * 1024 * 1024))
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", "1mb")
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                client.set("cb-test:probe", b"1")

    def memory_back() -> None:
        with redis_client(redis_server) as client:
            client.config_set("maxmemory", "0")
            client.delete(filler)

    # Quiet first (no writes at all): the breaker's probe and /health must still see that level 2
    # cannot store. A PING answers PONG under OOM, so they must try a write.
    try:
        out_of_memory()
        for _ in range(3):
            cb.new_session()  # writes that fail: the breaker opens
        time.sleep(3 * 0.5)  # several probe periods
        for _ in range(5):
            assert health(cb)["status"] == "degraded", "OOM: level 2 refuses writes, /health says ok"
            assert metric(metrics(cb), "cobrowse_level2_up") == 0.0
            time.sleep(0.2)
    finally:
        memory_back()
    assert wait_for(lambda: health(cb)["status"] == "ok", timeout=10)
    # Then under traffic, as every other fault.
    try:
        run_fault(cb, redis_server, tmp_path, out_of_memory, memory_back)
    finally:
        memory_back()


def test_redis_restarted_empty(cb, redis_server, tmp_path):
    """Redis restarts with nothing in it, while traffic runs. The process that holds sessions and
    resources in level 1 keeps serving them and writes its sessions back to level 2 at their next
    use; what only level 2 held is gone, and is answered by the fallback (302), never an error."""
    traffic = Traffic(cb, seed=11)
    traffic.prime()
    # A resource that only level 2 holds (uploaded through another process).
    other_upload = ResourceSyncMiddleware(plain_app, make_settings(tmp_path / "w2", redis_server.url))
    session = traffic.sessions[0]
    lost = image_body(random.Random(3))
    answer = Client(other_upload).post("/_cobrowse/resources", data=lost, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": f"{SITE}/lost.png",
        "Content-Type": "image/png"})
    assert answer.status_code == 201
    assert cb.fetch(session["view_token"], f"{SITE}/lost.png").status_code == 200  # via level 2

    traffic.start()
    time.sleep(0.3)
    forget_dump(redis_server)
    redis_server.stop()
    redis_server.start()
    with redis_client(redis_server) as client:
        assert client.dbsize() <= 2  # empty, give or take what traffic wrote since the start
    time.sleep(1.5)
    outcomes = traffic.stop()
    print(f"\nrestarted empty: {len(outcomes)} requests, slowest {max(o.elapsed for o in outcomes):.3f}s")
    assert_all_answered(outcomes)
    assert wait_for(lambda: health(cb)["status"] == "ok", timeout=10)

    # Level 1 of this process had promoted lost.png when it was read: still served here ...
    assert cb.fetch(session["view_token"], f"{SITE}/lost.png").status_code == 200
    # ... but a process with an empty level 1 finds nothing: the fallback, not an error.
    time.sleep(REVALIDATE_AFTER + 0.05)
    cb.fetch(session["view_token"], f"{SITE}/never.png")  # touch: the session is written back
    fresh = ResourceSyncMiddleware(plain_app, make_settings(tmp_path / "w3", redis_server.url))
    got = Client(fresh).get("/_cobrowse/resources",
                            query_string={"url": f"{SITE}/lost.png", "token": session["view_token"]})
    assert got.status_code == 302 and got.headers["Location"] == f"{SITE}/lost.png"
    assert_level2_used_again(cb, redis_server, session, tmp_path)


def test_redis_slow(cb, redis_server, tmp_path):
    """Redis stalls every command for 0.8 s (``CLIENT PAUSE 800 ALL``, three times in a row, as
    a slow disk or a long-running command would): calls time out at 200 ms, the breaker opens,
    and no request waits for the stall."""

    def stalls() -> None:
        def pause_three_times() -> None:
            with redis_client(redis_server) as client:
                for _ in range(3):
                    client.execute_command("CLIENT", "PAUSE", 800, "ALL")
                    time.sleep(0.9)

        threading.Thread(target=pause_three_times, daemon=True).start()

    def let_it_finish() -> None:
        time.sleep(0.3)

    run_fault(cb, redis_server, tmp_path, stalls, let_it_finish, persistent=False)
