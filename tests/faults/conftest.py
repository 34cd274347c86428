"""Fault-test helpers: timed client traffic that checks every answer, and Prometheus/Redis probes.

:class:`Traffic` runs several client threads against a running server, mixing what customers and
agents do (uploads, reads of what was uploaded, reads of what never was, checks, new sessions,
health), and records for every request whether its answer was the one the product promises and
how long it took. A fault test starts it, breaks something, repairs it, stops it, and asserts that
every recorded request was right and quick.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import RedisServer
from tests.integration.conftest import Cobrowse

SITE = "https://site.example"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: No request may take longer than this, whatever level 2 is doing (the brief's generous bound).
REQUEST_BOUND = 1.0


@pytest.fixture(autouse=True)
def quiet_request_log():
    """The threaded test servers log every request; fault tests make thousands."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def image_body(rng: random.Random, low: int = 16, high: int = 32 * 1024) -> bytes:
    """Random bytes behind a PNG signature (so the upload sniffer accepts them as an image)."""
    return PNG_SIGNATURE + rng.randbytes(rng.randint(low, high))


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample ``name`` in a Prometheus text page."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not in /metrics"
    return float(match.group(1))


def health(cb: Cobrowse) -> dict:
    return requests.get(f"{cb.api}/health", timeout=5).json()


def metrics(cb: Cobrowse) -> str:
    return requests.get(f"{cb.api}/metrics", timeout=5).text


def redis_client(server: RedisServer) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, socket_timeout=5)


def forget_dump(server: RedisServer) -> None:
    """Make the next start of ``server`` begin empty: no save on shutdown, no dump to load."""
    with redis_client(server) as client:
        client.config_set("save", "")
        folder = client.config_get("dir")["dir"]
        name = client.config_get("dbfilename")["dbfilename"]
    Path(folder, name).unlink(missing_ok=True)


def kill(server: RedisServer) -> None:
    """SIGKILL the redis-server: no shutdown, no save, every connection reset."""
    server.resume()
    server.executor.stop(stop_signal=signal.SIGKILL, expected_returncode=-signal.SIGKILL)


@dataclass
class Outcome:
    """One request: what it was, what came back, how long it took, and whether that was right."""

    op: str
    status: int
    elapsed: float
    ok: bool
    detail: str = ""


@dataclass
class Known:
    """A resource the server acknowledged (201): it must be served, byte for byte, from then on."""

    session: dict
    url: str
    body: bytes


@dataclass
class Traffic:
    """Client threads mixing customer and agent requests against ``cb``, every answer checked.

    Only answers the product promises whatever level 2 does are expected: an acknowledged upload
    is served (level 1 holds it in this single process), an upload is accepted, a URL nobody
    uploaded is a direct load (302), a check lists exactly what this process does not hold.
    """

    cb: Cobrowse
    threads: int = 4
    seed: int = 0
    sessions: list[dict] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _counter: int = 0

    def prime(self, sessions: int = 3, per_session: int = 3) -> None:
        """Sessions and uploads made while everything is healthy."""
        rng = random.Random(self.seed)
        for _ in range(sessions):
            self.sessions.append(self.cb.new_session())
        for session in self.sessions:
            for _ in range(per_session):
                self._upload(rng, session, requests)

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(self.seed * 100 + n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)
        assert not any(w.is_alive() for w in self._workers), "a traffic thread is stuck"
        return self.outcomes

    # --- the client ---------------------------------------------------------------------------

    def _next_url(self, kind: str = "img") -> str:
        with self._lock:
            self._counter += 1
            return f"{SITE}/{kind}/{self.seed}-{self._counter}.png"

    def _record(self, op: str, started: float, status: int, ok: bool, detail: str = "") -> None:
        outcome = Outcome(op, status, time.monotonic() - started, ok, detail)
        with self._lock:
            self.outcomes.append(outcome)

    def _upload(self, rng: random.Random, session: dict, http) -> None:
        url, body = self._next_url(), image_body(rng)
        started = time.monotonic()
        got = http.post(f"{self.cb.api}/resources", data=body, timeout=5, headers={
            "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url,
            "Content-Type": "image/png"})
        stored = got.json().get("stored") if got.status_code == 201 else None
        ok = bool(stored) and stored[0]["sha256"] == hashlib.sha256(body).hexdigest()
        self._record("upload", started, got.status_code, ok, got.text[:200])
        if ok:
            with self._lock:
                self.known.append(Known(session, url, body))

    def _read_known(self, rng: random.Random, http) -> None:
        with self._lock:
            if not self.known:
                return
            item = rng.choice(self.known)
        started = time.monotonic()
        got = http.get(f"{self.cb.api}/resources", timeout=5, allow_redirects=False,
                       params={"url": item.url, "token": item.session["view_token"], "as": "image"})
        ok = got.status_code == 200 and got.content == item.body
        self._record("read", started, got.status_code, ok, item.url)

    def _read_unknown(self, rng: random.Random, http) -> None:
        session, url = rng.choice(self.sessions), self._next_url("never")
        started = time.monotonic()
        got = http.get(f"{self.cb.api}/resources", timeout=5, allow_redirects=False,
                       params={"url": url, "token": session["view_token"], "as": "image"})
        ok = got.status_code == 302 and got.headers.get("Location") == url
        self._record("read-unknown", started, got.status_code, ok)

    def _check(self, rng: random.Random, http) -> None:
        with self._lock:
            if not self.known:
                return
            item = rng.choice(self.known)
        unknown = self._next_url("check")
        entries = [{"url": item.url, "sha256": hashlib.sha256(item.body).hexdigest()},
                   {"url": unknown, "sha256": "0" * 64}]
        started = time.monotonic()
        got = http.post(f"{self.cb.api}/resources/check", json={"resources": entries}, timeout=5,
                        headers={"X-Cobrowse-Token": item.session["upload_token"]})
        ok = got.status_code == 200 and got.json() == {"missing": [unknown]}
        self._record("check", started, got.status_code, ok, got.text[:200])

    def _new_session(self, http) -> None:
        started = time.monotonic()
        got = http.post(f"{self.cb.api}/sessions", json={}, timeout=5)
        ok = got.status_code == 201 and len(got.json().get("code", "")) == 9
        self._record("session", started, got.status_code, ok)

    def _health(self, http) -> None:
        started = time.monotonic()
        got = http.get(f"{self.cb.api}/health", timeout=5)
        ok = got.status_code == 200 and got.json()["status"] in ("ok", "degraded")
        self._record("health", started, got.status_code, ok)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        http = requests.Session()
        ops = [
            (40, lambda: self._read_known(rng, http)),
            (20, lambda: self._upload(rng, rng.choice(self.sessions), http)),
            (10, lambda: self._read_unknown(rng, http)),
            (15, lambda: self._check(rng, http)),
            (5, lambda: self._new_session(http)),
            (5, lambda: self._health(http)),
        ]
        weights = [w for w, _ in ops]
        while not self._stop.is_set():
            (_, op), = rng.choices(ops, weights)
            try:
                op()
            except requests.RequestException as exc:  # a timeout or a reset is a failure too
                self._record("error", time.monotonic(), 0, False, repr(exc))
            time.sleep(0.005)  # leave the server's threads some air on two cores


def assert_all_answered(outcomes: list[Outcome], bound: float = REQUEST_BOUND) -> None:
    """Every request got the promised answer, none took longer than ``bound`` seconds."""
    assert len(outcomes) >= 50, f"too little traffic to prove anything: {len(outcomes)}"
    wrong = [o for o in outcomes if not o.ok]
    assert not wrong, f"{len(wrong)} wrong answers of {len(outcomes)}, e.g. {wrong[:3]}"
    slow = sorted((o for o in outcomes if o.elapsed >= bound), key=lambda o: -o.elapsed)
    assert not slow, f"{len(slow)} requests took {bound}s or more, e.g. {slow[:3]}"

