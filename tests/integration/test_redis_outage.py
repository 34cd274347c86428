"""Redis stops while the server runs: level 1 keeps serving, uploads go on, /health says so;
Redis comes back: level 2 is used again without a restart."""

from __future__ import annotations

import hashlib
import time

import pytest
import redis
import requests

from middleware import ResourceSyncMiddleware
from tests.integration.conftest import Cobrowse, make_settings
from tests.support.resources import png
from tests.support.servers import plain_app, serve_in_thread

SITE = "https://site.example"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_redis_down_then_back(fault, redis_server, tmp_path):
    """``stopped``: connections are refused; ``frozen`` (SIGSTOP): connections hang."""
    down, back = ((redis_server.stop, redis_server.start) if fault == "stopped"
                  else (redis_server.pause, redis_server.resume))
    middleware = ResourceSyncMiddleware(plain_app, make_settings(tmp_path, redis_server.url))
    with serve_in_thread(middleware) as base:
        cb = Cobrowse(base, middleware)
        session = cb.new_session()
        before = png(seed=1)
        assert cb.upload(session, f"{SITE}/before.png", before, "image/png").status_code == 201

        down()
        try:
            # in level 1 already: still served, and no request hangs on the dead server
            for _ in range(10):
                started = time.monotonic()
                got = cb.fetch(session["view_token"], f"{SITE}/before.png")
                assert got.status_code == 200 and got.content == before
                assert time.monotonic() - started < 1.0
            # new uploads go to level 1 only, and are served
            during = png(seed=2)
            started = time.monotonic()
            assert cb.upload(session, f"{SITE}/during.png", during, "image/png").status_code == 201
            assert time.monotonic() - started < 1.0
            assert cb.fetch(session["view_token"], f"{SITE}/during.png").content == during
            # a new session still works on level 1
            assert cb.new_session()["code"]
            health = requests.get(f"{cb.api}/health", timeout=10).json()
            assert health["status"] == "degraded" and health["tiers"]["L2"]["status"] == "down"
            metrics = requests.get(f"{cb.api}/metrics", timeout=10).text
            assert "cobrowse_level2_up 0.0" in metrics
            assert "cobrowse_level2_errors_total 0.0" not in metrics
        finally:
            back()

        # back: the breaker's probe closes it and level 2 is written again
        assert wait_for(lambda: requests.get(f"{cb.api}/health", timeout=10).json()["status"] == "ok")
        after = png(seed=3)
        assert cb.upload(session, f"{SITE}/after.png", after, "image/png").status_code == 201
        client = redis.Redis.from_url(redis_server.url)
        assert client.get(f"cb:b:{hashlib.sha256(after).hexdigest()}") == after
        assert "cobrowse_level2_up 1.0" in requests.get(f"{cb.api}/metrics", timeout=10).text
