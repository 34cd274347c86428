"""Fixtures shared by every kind of test: a real redis-server, and the skip-or-fail rule.

A test that needs an external program (redis-server, Chromium) is skipped when it is missing,
unless the environment says it is required (``COBROWSE_REQUIRE_REDIS=1`` ...): then it fails, so
that CI can never pass by skipping everything.
"""

from __future__ import annotations

import os
import shutil
import signal
from typing import Iterator

import pytest
import redis
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor


def require_or_skip(env_var: str, reason: str) -> None:
    """Skip the current test because of ``reason``; fail it instead when ``env_var`` is ``1``."""
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason} ({env_var}=1 says it is required)", pytrace=False)
    pytest.skip(reason)


# pytest-redis starts one redis-server per test session on a free port (port=None: any free port).
_redis_executor = factories.redis_proc(port=None)


class RedisServer:
    """The suite's own redis-server, which fault tests may stop, restart, freeze and thaw."""

    def __init__(self, executor: RedisExecutor) -> None:
        self.executor = executor
        self.host: str = executor.host
        self.port: int = executor.port
        self.url = f"redis://{self.host}:{self.port}/0"
        self._paused = False

    def stop(self) -> None:
        """Shut the server down (clients then get connection refused)."""
        self.resume()  # a frozen process would never act on SIGTERM
        if self.executor.running():
            self.executor.stop()

    def start(self) -> None:
        """Start it again on the same port, and wait until it accepts connections."""
        if not self.executor.running():
            self.executor.start()

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections are accepted by the kernel but never answered."""
        os.kill(self.executor.process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Thaw a frozen server (SIGCONT)."""
        if self._paused:
            os.kill(self.executor.process.pid, signal.SIGCONT)
            self._paused = False

    def flush(self) -> None:
        """Empty every database."""
        with redis.Redis(host=self.host, port=self.port, socket_timeout=5) as client:
            client.flushall()


@pytest.fixture(scope="session")
def _redis_server_once(request: pytest.FixtureRequest) -> RedisServer:
    """The session's redis-server, or skip/fail (per ``COBROWSE_REQUIRE_REDIS``) without one."""
    executable = request.config.getoption("redis_exec") or request.config.getini("redis_exec")
    if not executable or not shutil.which(executable):
        require_or_skip("COBROWSE_REQUIRE_REDIS", "redis-server is not installed")
    try:
        executor = request.getfixturevalue("_redis_executor")
    except Exception as exc:  # noqa: BLE001 - any start-up failure means "no Redis here"
        require_or_skip("COBROWSE_REQUIRE_REDIS", f"redis-server could not start: {exc}")
    return RedisServer(executor)


@pytest.fixture
def redis_server(_redis_server_once: RedisServer) -> Iterator[RedisServer]:
    """A running, empty redis-server; whatever a test did to it is undone afterwards."""
    server = _redis_server_once
    server.resume()
    server.start()
    server.flush()
    yield server
    server.resume()
    server.start()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of a freshly flushed database of the suite's redis-server."""
    return redis_server.url
