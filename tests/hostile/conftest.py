"""Hostile-input fixtures: the middleware on a real socket over a real Redis, raw HTTP, and the
checks every hostile request must pass (the spec's error JSON; a store that is still consistent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from middleware import ResourceSyncMiddleware
from tests.conftest import RedisServer
from tests.integration.conftest import Cobrowse, make_settings
from tests.support.resources import png
from tests.support.servers import plain_app, serve_in_thread

SITE = "https://site.example"
PNG = png(seed=3)


@pytest.fixture(autouse=True)
def quiet_request_log() -> Iterator[None]:
    """The threaded test servers log every request, and hostile ones loudly."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def cb(_redis_server_once: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cobrowse]:
    """The middleware over the suite's redis-server (max_size 64 KiB, quota 512 KiB a session).

    One per module, for speed: every test makes sessions of its own, so none sees another's data.
    It rests on the same session-wide server as ``redis_url`` (so it fails, not skips, when
    ``COBROWSE_REQUIRE_REDIS=1`` and there is no Redis).
    """
    _redis_server_once.resume()
    _redis_server_once.start()
    middleware = ResourceSyncMiddleware(
        plain_app, make_settings(tmp_path_factory.mktemp("hostile"), _redis_server_once.url))
    with serve_in_thread(middleware) as base:
        yield Cobrowse(base, middleware)


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    """The spec's error answer: ``status``, JSON ``{"error", "message"}`` and nothing else."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json"
    assert "Traceback" not in response.text
    payload = response.json()
    assert set(payload) == {"error", "message"}, payload
    assert isinstance(payload["error"], str) and isinstance(payload["message"], str)
    if code is not None:
        assert payload["error"] == code, payload
    return payload


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"hostile-boundary",
              final: bool = True) -> bytes:
    """A multipart body from raw (header block, body) pairs, each framed by ``boundary``."""
    out = b"".join(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + body + b"\r\n"
                   for head, body in parts)
    return out + (b"--" + boundary + b"--\r\n" if final else b"")


def part(url: str, content_type: str = "image/png") -> bytes:
    """A normal part header block for the resource ``url``."""
    return (f'Content-Disposition: form-data; name="{url}"; filename="f"\r\n'
            f"Content-Type: {content_type}").encode()


def post_batch(cb: Cobrowse, session: dict, body: bytes,
               boundary: str = "hostile-boundary") -> requests.Response:
    return requests.post(f"{cb.api}/resources", data=body, timeout=10, headers={
        "X-Cobrowse-Token": session["upload_token"],
        "Content-Type": f"multipart/form-data; boundary={boundary}"})


def status_of(cb: Cobrowse, session: dict) -> dict:
    got = requests.get(f"{cb.api}/sessions/current", params={"token": session["view_token"]}, timeout=10)
    assert got.status_code == 200, got.text
    return got.json()


def assert_consistent(cb: Cobrowse, session: dict, expected: dict[str, bytes]) -> None:
    """The session stores exactly ``expected`` (url -> bytes), whole: its status lists each with
    the right hash and size, each reads back identical, and level 1 and level 2 hold those bytes."""
    listed = {r["url"]: r for r in status_of(cb, session)["resources"]}
    assert set(listed) == set(expected), (sorted(listed), sorted(expected))
    store = cb.middleware.store
    for url, body in expected.items():
        sha = hashlib.sha256(body).hexdigest()
        assert listed[url]["sha256"] == sha and listed[url]["size"] == len(body), url
        got = cb.fetch(session["view_token"], url)
        assert got.status_code == 200, url
        if not listed[url]["type"].startswith("text/css"):
            assert got.content == body, url
        found = store.get(session["session"], url)
        assert found is not None and hashlib.sha256(found[0].body).hexdigest() == sha
        from_level2 = store.level2.call("get_resource", session["session"], url, 60)
        assert from_level2 is not None and hashlib.sha256(from_level2[1]).hexdigest() == sha


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float


def raw_request(base: str, head: bytes, body: bytes = b"", *, half_close: bool = False,
                wait: float = 5.0) -> RawAnswer:
    """Send exactly ``head`` + ``body`` on a new connection and read one answer.

    ``half_close``: shut down our sending side after the body (the server then sees the end of
    the stream, as when a client gives up). Raises TimeoutError if no full answer comes within
    ``wait`` seconds: that is a hang.
    """
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        raw_head, _, rest = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        length = int(headers.get("content-length", "0") or 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return RawAnswer(status, headers, rest[:length], time.monotonic() - started)


def error_json(answer: RawAnswer) -> dict:
    payload = json.loads(answer.body)
    assert set(payload) == {"error", "message"}, payload
    return payload
