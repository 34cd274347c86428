"""Integration fixtures: the middleware over a plain app, on a real socket, over a real level 2."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from middleware import ResourceSyncMiddleware, Settings
from tests.support.servers import plain_app, serve_in_thread

SECRET = "integration-secret-0123456789abcdef"
MAX_SIZE = 64 * 1024
SESSION_MAX_BYTES = 512 * 1024


@dataclass
class Cobrowse:
    """A running server and the middleware inside it."""

    base: str
    middleware: ResourceSyncMiddleware

    @property
    def api(self) -> str:
        return f"{self.base}/_cobrowse"

    def new_session(self, **options) -> dict:
        answer = requests.post(f"{self.api}/sessions", json=options or None, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def upload(self, session: dict, url: str, body: bytes, content_type: str) -> requests.Response:
        return requests.post(f"{self.api}/resources", data=body, timeout=10, headers={
            "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url, "Content-Type": content_type})

    def fetch(self, token: str, url: str, **extra) -> requests.Response:
        return requests.get(f"{self.api}/resources", params={"url": url, "token": token, **extra},
                            allow_redirects=False, timeout=10)


def make_settings(tmp_path, redis_url: str = "", **overrides) -> Settings:
    return Settings(secret_key=SECRET, redis_url=redis_url, embedded_path=str(tmp_path / "l2"),
                    max_size=MAX_SIZE, session_max_bytes=SESSION_MAX_BYTES, **overrides)


@pytest.fixture(params=["redis", "embedded"])
def cobrowse(request, tmp_path):
    """The middleware on a real server, once over a real redis-server and once over the embedded store."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    middleware = ResourceSyncMiddleware(plain_app, make_settings(tmp_path, redis_url))
    with serve_in_thread(middleware) as base:
        yield Cobrowse(base, middleware)


@pytest.fixture
def cobrowse_redis(redis_url, tmp_path):
    """The middleware over a real redis-server only."""
    middleware = ResourceSyncMiddleware(plain_app, make_settings(tmp_path, redis_url))
    with serve_in_thread(middleware) as base:
        yield Cobrowse(base, middleware)
