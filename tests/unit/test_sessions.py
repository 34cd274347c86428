"""Session lifecycle across processes sharing one level 2 (fakeredis here; real Redis in integration)."""

import time

import fakeredis
import pytest

from middleware.responses import HttpError
from middleware.sessions import SessionManager
from middleware.store.breaker import CircuitBreaker
from middleware.store.redis import RedisLevel2
from middleware.tokens import TokenSigner

SIGNER = TokenSigner(b"s" * 32)


def manager(client, ttl=60.0) -> SessionManager:
    """One process's session manager over the shared fake Redis."""
    return SessionManager(CircuitBreaker(RedisLevel2.from_client(client)), SIGNER, ttl, 1000)


def age(m: SessionManager, sid: str) -> None:
    """Make this process's copy old enough to be re-read from level 2."""
    m._sessions[sid].checked_at -= 10


def test_another_process_sees_a_session_end_recorded_as_a_bare_tombstone():
    client = fakeredis.FakeRedis()
    a, b = manager(client), manager(client)
    session, answer = a.create(True, True, "", "")
    assert b.authenticate(answer["view_token"], "view").sid == session.sid
    client.flushall()            # level 2 loses the record (restarted empty) ...
    a.end(session)               # ... then A ends the session: only a tombstone is written
    assert client.hget(f"cb:s:{session.sid}", "ended") == b"1"
    age(b, session.sid)
    with pytest.raises(HttpError) as refused:
        b.authenticate(answer["view_token"], "view")
    assert refused.value.status == 403


def test_a_record_lost_by_level2_is_put_back_by_a_process_that_holds_it():
    client = fakeredis.FakeRedis()
    a, b = manager(client), manager(client)
    session, answer = a.create(True, False, "https://s.example/", "utf-8")
    client.flushall()
    age(a, session.sid)
    assert a.authenticate(answer["upload_token"], "upload") is session
    # B never saw it, and now learns it from level 2 again, options included
    seen = b.authenticate(answer["view_token"], "view")
    assert seen.sid == session.sid and seen.css_server is False
    assert b.join(session.code, "10.0.0.1")["session"] == session.sid


def test_idle_sessions_expire_and_tokens_stop():
    client = fakeredis.FakeRedis()
    m = manager(client, ttl=0.2)
    session, answer = m.create(True, True, "", "")
    m.authenticate(answer["view_token"], "view")
    time.sleep(0.35)
    with pytest.raises(HttpError):
        m.authenticate(answer["view_token"], "view")


def test_quota_is_shared_through_level2():
    client = fakeredis.FakeRedis()
    a, b = manager(client), manager(client)
    session, answer = a.create(True, True, "", "")
    seen_by_b = b.authenticate(answer["upload_token"], "upload")
    assert a.reserve_bytes(session, 600)
    assert not b.reserve_bytes(seen_by_b, 600)  # 1200 > 1000 although B itself used nothing
    assert b.reserve_bytes(seen_by_b, 400)
