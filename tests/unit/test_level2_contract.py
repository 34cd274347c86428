"""The level-2 contract (``middleware/store/base.py``), one set of tests for every backend.

Each contract test runs against fakeredis, the suite's real redis-server and the embedded SQLite
store. TTL behaviour is checked by waiting out short TTLs (the same for all backends); on Redis the
TTLs are also read back with PTTL. Backend-specific tests (eviction, reopening, outages) follow.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest
import redis

from middleware.store.base import Level2, ResourceMeta
from middleware.store.embedded import EmbeddedLevel2
from middleware.store.redis import RedisLevel2

LONG = 600.0  # a TTL no test outlives
MiB = 1024 * 1024


@dataclass
class Backend:
    store: Level2
    client: redis.Redis | None  # for the Redis backends: a raw client to inspect keys and TTLs


def _fakeredis() -> Backend:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())  # its own server: no shared state
    return Backend(RedisLevel2.from_client(client), client)


@pytest.fixture(params=["fakeredis", "redis", "embedded"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend, empty."""
    if request.param == "fakeredis":
        return _fakeredis()
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        # A generous timeout: these tests are about semantics, not about a loaded CI machine.
        return Backend(RedisLevel2(url, timeout=2.0), redis.Redis.from_url(url))
    return Backend(EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=64 * MiB), None)


@pytest.fixture(params=["fakeredis", "redis"])
def redis_backend(request: pytest.FixtureRequest) -> Backend:
    """The Redis backends only, whose TTLs can be read back."""
    if request.param == "fakeredis":
        return _fakeredis()
    url = request.getfixturevalue("redis_url")
    return Backend(RedisLevel2(url, timeout=2.0), redis.Redis.from_url(url))


def meta_of(body: bytes, content_type: str = "image/png") -> ResourceMeta:
    return ResourceMeta(hashlib.sha256(body).hexdigest(), len(body), content_type)


def put(store: Level2, sid: str, url: str, body: bytes, ttl: float = LONG) -> ResourceMeta:
    meta = meta_of(body)
    store.put_resource(sid, url, meta, body, ttl)
    return meta


# --- resources ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00a\x00b\x00\xff", os.urandom(MiB), "h\u00e9llo \u2603".encode("utf-8")],
    ids=["empty", "nuls", "1MiB", "utf8"],
)
def test_put_then_get_returns_the_exact_bytes(backend: Backend, body: bytes) -> None:
    meta = put(backend.store, "s1", "https://site.example/a.png", body)

    found = backend.store.get_resource("s1", "https://site.example/a.png", LONG)

    assert found == (meta, body)
    assert type(found[1]) is bytes


def test_get_of_unknown_session_or_url_is_none(backend: Backend) -> None:
    put(backend.store, "s1", "https://site.example/a.png", b"png")

    assert backend.store.get_resource("s1", "https://site.example/other.png", LONG) is None
    assert backend.store.get_resource("s2", "https://site.example/a.png", LONG) is None


def test_sessions_see_their_own_bytes_for_the_same_url(backend: Backend) -> None:
    url = "https://site.example/logo.png"
    put(backend.store, "s1", url, b"one")
    put(backend.store, "s2", url, b"two")

    assert backend.store.get_resource("s1", url, LONG)[1] == b"one"
    assert backend.store.get_resource("s2", url, LONG)[1] == b"two"


def test_index_naming_an_expired_blob_is_none(backend: Backend) -> None:
    # s2 stores the same bytes with a short TTL, now the blob's TTL; s1's index outlives it.
    meta = put(backend.store, "s1", "https://site.example/a.css", b"body{}")
    put(backend.store, "s2", "https://site.example/b.css", b"body{}", ttl=0.2)
    time.sleep(0.4)

    assert backend.store.get_resource("s1", "https://site.example/a.css", LONG) is None
    assert backend.store.link_resource("s1", "https://site.example/c.css", meta.sha256, 60) is None
    assert "https://site.example/c.css" not in backend.store.list_resources("s1")


def test_a_read_slides_the_ttl(backend: Backend) -> None:
    url = "https://site.example/a.png"
    put(backend.store, "s1", url, b"png", ttl=0.6)
    time.sleep(0.35)
    assert backend.store.get_resource("s1", url, 0.6) is not None
    time.sleep(0.35)  # 0.7 s after the upload: alive only because the read refreshed it
    assert backend.store.get_resource("s1", url, 0.6) is not None
    time.sleep(0.8)
    assert backend.store.get_resource("s1", url, 0.6) is None


def test_a_touch_slides_the_ttl_without_a_read(backend: Backend) -> None:
    url = "https://site.example/a.png"
    meta = put(backend.store, "s1", url, b"png", ttl=0.6)
    time.sleep(0.35)
    backend.store.touch_resource("s1", meta.sha256, 0.6)
    time.sleep(0.35)  # 0.7 s after the upload: alive only because the touch refreshed it
    assert backend.store.get_resource("s1", url, 0.6) is not None
    time.sleep(0.8)
    assert backend.store.get_resource("s1", url, 0.6) is None


def test_session_and_resource_in_one_call(backend: Backend) -> None:
    store = backend.store
    assert store.create_session("s1", {"created": "1.0", "ended": "0"}, "123456789", LONG)
    meta = put(store, "s1", "https://site.example/a.png", b"\x00png")
    fields, found = store.get_session_and_resource("s1", "https://site.example/a.png", LONG, LONG)
    assert fields is not None and fields["created"] == "1.0"
    assert found == (meta, b"\x00png")
    fields, found = store.get_session_and_resource("s1", "https://site.example/none.png", LONG, LONG)
    assert fields is not None and found is None
    assert store.get_session_and_resource("nobody", "https://site.example/a.png", LONG, LONG) == (None, None)


def test_the_combined_read_survives_a_redis_that_forgot_its_scripts(redis_backend: Backend) -> None:
    store, client = redis_backend.store, redis_backend.client
    meta = put(store, "s1", "https://site.example/a.png", b"png")
    client.script_flush()
    assert store.get_session_and_resource("s1", "https://site.example/a.png", LONG, LONG) == (None, (meta, b"png"))


def test_ttls_are_set_and_refreshed_on_read(redis_backend: Backend) -> None:
    store, client = redis_backend.store, redis_backend.client
    meta = put(store, "s1", "https://site.example/a.png", b"png", ttl=100)
    keys = [f"cb:b:{meta.sha256}", "cb:i:s1", "cb:h:s1"]
    assert all(90_000 < client.pttl(key) <= 100_000 for key in keys)

    for key in keys:
        client.pexpire(key, 5_000)
    assert store.get_resource("s1", "https://site.example/a.png", 100) is not None

    assert all(90_000 < client.pttl(key) <= 100_000 for key in keys)


def test_link_points_a_url_at_what_this_session_uploaded(backend: Backend) -> None:
    meta = put(backend.store, "s1", "https://site.example/a.png", b"png bytes")

    linked = backend.store.link_resource("s1", "https://cdn.example/a.png?v=2", meta.sha256, LONG)

    assert linked == meta
    found = backend.store.get_resource("s1", "https://cdn.example/a.png?v=2", LONG)
    assert found == (meta, b"png bytes")


def test_link_never_grants_another_sessions_upload(backend: Backend) -> None:
    meta = put(backend.store, "s1", "https://site.example/secret.png", b"secret")

    store = backend.store
    assert store.link_resource("s2", "https://site.example/secret.png", meta.sha256, LONG) is None
    assert store.link_resource("s1", "https://x.example/", "0" * 64, LONG) is None  # unknown hash
    assert backend.store.list_resources("s2") == {}
    assert backend.store.get_resource("s2", "https://site.example/secret.png", LONG) is None


def test_list_resources_names_every_url(backend: Backend) -> None:
    a = put(backend.store, "s1", "https://site.example/a.png", b"a")
    b = put(backend.store, "s1", "https://site.example/b.css", b"b")
    backend.store.link_resource("s1", "https://site.example/a2.png", a.sha256, LONG)
    put(backend.store, "s2", "https://site.example/c.png", b"c")

    assert backend.store.list_resources("s1") == {
        "https://site.example/a.png": a,
        "https://site.example/b.css": b,
        "https://site.example/a2.png": a,
    }


def test_nothing_read_back_is_unpickled(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    body = pickle.dumps({"evil": ["a pickle", 1]})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("level 2 must never unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    backend.store.create_session("s1", {"note": body.decode("latin-1")}, "111111111", LONG)
    put(backend.store, "s1", "https://site.example/p.bin", body)

    assert backend.store.get_resource("s1", "https://site.example/p.bin", LONG)[1] == body
    assert backend.store.get_session("s1", LONG)["note"] == body.decode("latin-1")


# --- sessions -------------------------------------------------------------------------------


def test_session_round_trip_and_join_code(backend: Backend) -> None:
    fields = {"page": "https://site.example/caf\u00e9?a=1 2", "css_server": "1"}

    assert backend.store.create_session("s1", fields, "123456789", LONG) is True

    assert backend.store.get_session("s1", LONG) == {**fields, "code": "123456789"}
    assert backend.store.session_for_code("123456789") == "s1"
    assert backend.store.get_session("nobody", LONG) is None
    assert backend.store.session_for_code("000000000") is None


def test_update_session_sets_fields_of_a_live_record_only(backend: Backend) -> None:
    backend.store.create_session("s1", {"page": "a"}, "123456789", LONG)

    backend.store.update_session("s1", {"page": "b", "charset": "Shift_JIS"})
    backend.store.update_session("gone", {"page": "x"})

    expected = {"page": "b", "charset": "Shift_JIS", "code": "123456789"}
    assert backend.store.get_session("s1", LONG) == expected
    assert backend.store.get_session("gone", LONG) is None


def test_a_taken_code_is_refused_and_nothing_is_written(backend: Backend) -> None:
    assert backend.store.create_session("s1", {"page": "a"}, "123456789", LONG)

    assert backend.store.create_session("s2", {"page": "b"}, "123456789", LONG) is False

    assert backend.store.get_session("s2", LONG) is None
    assert backend.store.session_for_code("123456789") == "s1"
    backend.store.end_session("s1", LONG)  # an ended session frees its code
    assert backend.store.create_session("s2", {"page": "b"}, "123456789", LONG) is True


def test_end_session_leaves_a_tombstone_and_drops_code_and_resources(backend: Backend) -> None:
    backend.store.create_session("s1", {"page": "a"}, "123456789", LONG)
    put(backend.store, "s1", "https://site.example/a.png", b"png")

    backend.store.end_session("s1", 0.5)

    assert backend.store.get_session("s1", LONG)["ended"] == "1"
    assert backend.store.session_for_code("123456789") is None
    assert backend.store.list_resources("s1") == {}
    assert backend.store.get_resource("s1", "https://site.example/a.png", LONG) is None
    time.sleep(0.3)
    assert backend.store.get_session("s1", LONG)["ended"] == "1"  # reading must not extend it
    time.sleep(0.4)
    assert backend.store.get_session("s1", LONG) is None


def test_end_session_of_an_unknown_record_still_records_the_end(backend: Backend) -> None:
    # Another process may hold the session in its level 1; the tombstone is how it learns.
    backend.store.end_session("s1", LONG)

    assert backend.store.get_session("s1", LONG) == {"ended": "1"}


def test_session_and_code_ttl_slide_on_read(backend: Backend) -> None:
    backend.store.create_session("s1", {"page": "a"}, "123456789", 0.6)
    time.sleep(0.35)
    assert backend.store.get_session("s1", 0.6) is not None
    time.sleep(0.35)  # 0.7 s after creation: alive only because the read refreshed both
    assert backend.store.session_for_code("123456789") == "s1"
    assert backend.store.get_session("s1", 0.6) is not None
    time.sleep(0.8)
    assert backend.store.get_session("s1", 0.6) is None
    assert backend.store.session_for_code("123456789") is None


def test_session_ttls_in_redis(redis_backend: Backend) -> None:
    store, client = redis_backend.store, redis_backend.client
    store.create_session("s1", {"page": "a"}, "123456789", 100)
    client.pexpire("cb:s:s1", 5_000)
    client.pexpire("cb:c:123456789", 5_000)

    store.get_session("s1", 100)

    assert 90_000 < client.pttl("cb:s:s1") <= 100_000
    assert 90_000 < client.pttl("cb:c:123456789") <= 100_000
    store.end_session("s1", 10)
    assert 0 < client.pttl("cb:s:s1") <= 10_000
    assert not client.exists("cb:c:123456789", "cb:i:s1", "cb:h:s1")


def test_count_attempt_counts_within_its_window(backend: Backend) -> None:
    assert [backend.store.count_attempt("join:10.0.0.1", 0.5) for _ in range(3)] == [1, 2, 3]
    assert backend.store.count_attempt("join:10.0.0.2", 0.5) == 1
    time.sleep(0.7)
    assert backend.store.count_attempt("join:10.0.0.1", 0.5) == 1


def test_count_attempt_window_does_not_slide(backend: Backend) -> None:
    backend.store.count_attempt("k", 0.6)
    time.sleep(0.4)
    assert backend.store.count_attempt("k", 0.6) == 2
    time.sleep(0.4)  # 0.8 s after the first attempt: the window has closed despite the second
    assert backend.store.count_attempt("k", 0.6) == 1


def test_reserve_bytes_up_to_the_limit_exactly(backend: Backend) -> None:
    backend.store.create_session("s1", {}, "123456789", LONG)

    assert backend.store.reserve_bytes("s1", 60, 100) is True
    assert backend.store.reserve_bytes("s1", 41, 100) is False
    assert backend.store.get_session("s1", LONG)["bytes"] == "60"
    assert backend.store.reserve_bytes("s1", 40, 100) is True
    assert backend.store.reserve_bytes("s1", 1, 100) is False
    assert backend.store.get_session("s1", LONG)["bytes"] == "100"


def test_reserve_bytes_without_a_record_counts_zero_and_creates_nothing(backend: Backend) -> None:
    assert backend.store.reserve_bytes("s1", 100, 100) is True
    assert backend.store.reserve_bytes("s1", 101, 100) is False
    assert backend.store.get_session("s1", LONG) is None


def test_ping_answers(backend: Backend) -> None:
    backend.store.ping()
    assert backend.store.name in {"redis", "embedded"}


# --- embedded only --------------------------------------------------------------------------


def test_embedded_evicts_least_recently_used_beyond_max_bytes(tmp_path: Path) -> None:
    store = EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=3000)
    urls = [f"https://site.example/{name}.png" for name in "abcd"]
    for url in urls[:3]:
        put(store, "s1", url, os.urandom(1000))
        time.sleep(0.01)  # distinct access times
    assert store.get_resource("s1", urls[0], LONG) is not None  # a is now the most recent
    time.sleep(0.01)

    put(store, "s1", urls[3], os.urandom(1000))

    present = [store.get_resource("s1", url, LONG) is not None for url in urls]
    assert present == [True, False, True, True]  # b, the least recently used, went
    assert store.stored_bytes() == 3000


def test_embedded_data_survives_reopening(tmp_path: Path) -> None:
    first = EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=MiB)
    meta = put(first, "s1", "https://site.example/a.png", b"kept")
    first.create_session("s1", {"page": "a"}, "123456789", LONG)

    second = EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=MiB)

    assert second.get_resource("s1", "https://site.example/a.png", LONG) == (meta, b"kept")
    assert second.session_for_code("123456789") == "s1"


def test_embedded_folder_is_private(tmp_path: Path) -> None:
    EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=MiB)

    assert stat.S_IMODE(os.stat(tmp_path / "level2").st_mode) & 0o077 == 0


# --- real Redis only ------------------------------------------------------------------------


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_an_unreachable_redis_fails_each_call_fast(redis_server, outage: str) -> None:
    store = RedisLevel2(redis_server.url, timeout=0.2)
    store.ping()  # a pooled connection exists before the outage, as in a running server
    if outage == "stopped":
        redis_server.stop()
    else:
        redis_server.pause()

    calls = [
        store.ping,
        lambda: store.get_resource("s1", "https://site.example/a.png", LONG),
        lambda: put(store, "s1", "https://site.example/a.png", b"png"),
        lambda: store.get_session("s1", LONG),
        lambda: store.count_attempt("k", 10),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(redis.RedisError):
            call()
        assert time.monotonic() - started < 1.0

    redis_server.resume()
    redis_server.start()
    store.ping()  # and it recovers once the server is back, without a new client
