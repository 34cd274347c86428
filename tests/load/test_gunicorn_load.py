"""Load and integrity under gunicorn (3 workers x 4 threads, gthread) over a real Redis.

A bounded load from the test process: 8 client threads, 20 sessions, 3000 requests mixing raw and
batch uploads (random bodies from 1 B to 200 KiB), checks (which link content across workers),
reads of what was uploaded (often from another worker, so through level 2) and reads of what never
was. Asserted:

- zero 5xx, and every answer the one the spec gives;
- every byte read back is verified against the SHA-256 of what was uploaded;
- level 1 stays within ``local.max_bytes`` in every worker (``/health`` from several workers, at
  the end and during the load), and each worker's resident memory grows by no more than
  ``local.max_bytes`` x 1.5 + 30 MB over the run (sampled throughout from /proc: Linux, as CI).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.servers import REPO, free_port

WORKERS, THREADS = 3, 4
LOCAL_MAX_BYTES = 4 * 1024 * 1024
RSS_GROWTH_BOUND = LOCAL_MAX_BYTES * 1.5 + 30 * 1024 * 1024
CLIENTS, SESSIONS, REQUESTS = 8, 20, 3000
MAX_BODY = 200 * 1024
SECRET = "load-test-secret-0123456789abcdef0123"
SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a", "font/woff2": b"wOF2",
              "image/jpeg": b"\xff\xd8\xff"}
CSS_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789{}:;#. \n"


@dataclass
class Server:
    base: str
    process: subprocess.Popen

    @property
    def api(self) -> str:
        return f"{self.base}/_cobrowse"

    def workers(self) -> list[int]:
        """The worker processes' ids (the arbiter's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


@pytest.fixture
def server(redis_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COBROWSE_REDIS_URL": redis_url,
           "COBROWSE_COBROWSE_SECRET_KEY": SECRET, "COBROWSE_CACHE_LOCAL_MAX_BYTES": str(LOCAL_MAX_BYTES),
           "COBROWSE_RESOURCES_MAX_SIZE": "256KB", "COBROWSE_RESOURCES_SESSION_MAX_BYTES": "1GB",
           "COBROWSE_CACHE_EMBEDDED_PATH": str(tmp_path / "unused")}
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--threads", str(THREADS),
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
         "--log-level", "warning", "--timeout", "60", "tests.load.load_app:app"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if requests.get(f"{running.api}/health", timeout=2).status_code == 200 \
                        and len(running.workers()) == WORKERS:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def random_body(rng: random.Random) -> tuple[bytes, str]:
    """A body of 1 B to 200 KiB (log-uniform, with a share of large ones) and its content type.

    Tiny bodies are plain CSS (which is served back byte for byte: ASCII without url()), others
    random bytes behind an image or font signature (so the upload sniffer accepts them)."""
    if rng.random() < 0.3:
        size = rng.randint(50 * 1024, MAX_BODY)
    else:
        size = int(math.exp(rng.uniform(0, math.log(MAX_BODY))))
    if size < 16 or rng.random() < 0.1:
        return bytes(rng.choice(CSS_ALPHABET) for _ in range(min(size, 4096))), "text/css"
    content_type = rng.choice(sorted(SIGNATURES))
    signature = SIGNATURES[content_type]
    return signature + rng.randbytes(max(0, size - len(signature))), content_type


@dataclass
class Load:
    """The client side: what was acknowledged, what every request got."""

    server: Server
    sessions: list[dict]
    known: dict[int, dict[str, bytes]] = field(default_factory=dict)  # session index -> url -> body
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    verified_bytes: int = 0
    verified_reads: int = 0
    health: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, L1 bytes, max_bytes)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)

    def record(self, op: str, response: requests.Response) -> None:
        with self.lock:
            self.statuses[(op, response.status_code)] += 1
        if response.status_code >= 500:
            self.fail(f"{op}: {response.status_code} {response.text[:200]}")

    def next_url(self, kind: str) -> str:
        with self.lock:
            self.counter += 1
            return f"https://site.example/{kind}/{self.counter}"

    def remember(self, which: int, url: str, body: bytes) -> None:
        with self.lock:
            self.known.setdefault(which, {})[url] = body

    def pick_known(self, rng: random.Random) -> tuple[int, str, bytes] | None:
        with self.lock:
            candidates = [w for w in self.known if self.known[w]]
            if not candidates:
                return None
            which = rng.choice(candidates)
            url = rng.choice(list(self.known[which]))
            return which, url, self.known[which][url]

    # --- operations ---------------------------------------------------------------------------

    def upload(self, rng: random.Random) -> None:
        which = rng.randrange(len(self.sessions))
        body, content_type = random_body(rng)
        url = self.next_url("raw")
        got = requests.post(f"{self.server.api}/resources", data=body, timeout=30, headers={
            "X-Cobrowse-Token": self.sessions[which]["upload_token"], "X-Cobrowse-Url": url,
            "Content-Type": content_type})
        self.record("upload", got)
        if got.status_code != 201 or got.json()["stored"][0]["sha256"] != hashlib.sha256(body).hexdigest():
            self.fail(f"upload {url}: {got.status_code} {got.text[:200]}")
            return
        self.remember(which, url, body)

    def batch(self, rng: random.Random) -> None:
        which = rng.randrange(len(self.sessions))
        parts = {self.next_url("batch"): random_body(rng) for _ in range(rng.randint(2, 5))}
        files = [(url, ("resource", body, content_type)) for url, (body, content_type) in parts.items()]
        got = requests.post(f"{self.server.api}/resources", files=files, timeout=30,
                            headers={"X-Cobrowse-Token": self.sessions[which]["upload_token"]})
        self.record("batch", got)
        stored = {s["url"]: s["sha256"] for s in got.json().get("stored", [])} if got.status_code == 201 else {}
        expected = {url: hashlib.sha256(body).hexdigest() for url, (body, _) in parts.items()}
        if stored != expected:
            self.fail(f"batch: {got.status_code} {got.text[:300]}")
            return
        for url, (body, _) in parts.items():
            self.remember(which, url, body)

    def check(self, rng: random.Random) -> None:
        """Known content of this session is not missing; the same bytes under a new URL are
        linked without upload (then served, from whichever worker); unknown hashes are missing."""
        picked = self.pick_known(rng)
        if picked is None:
            return
        which, url, body = picked
        sha = hashlib.sha256(body).hexdigest()
        alias, unknown = self.next_url("alias"), self.next_url("unknown")
        entries = [{"url": url, "sha256": sha}, {"url": alias, "sha256": sha},
                   {"url": unknown, "sha256": hashlib.sha256(unknown.encode()).hexdigest()}]
        got = requests.post(f"{self.server.api}/resources/check", json={"resources": entries}, timeout=30,
                            headers={"X-Cobrowse-Token": self.sessions[which]["upload_token"]})
        self.record("check", got)
        if got.status_code != 200 or got.json() != {"missing": [unknown]}:
            self.fail(f"check: {got.status_code} {got.text[:200]}")
            return
        self.remember(which, alias, body)

    def read(self, rng: random.Random) -> None:
        picked = self.pick_known(rng)
        if picked is None:
            return
        which, url, body = picked
        got = requests.get(f"{self.server.api}/resources", timeout=30, params={
            "url": url, "token": self.sessions[which]["view_token"], "as": rng.choice(["image", "style", "font"])})
        self.record("read", got)
        if got.status_code != 200 or hashlib.sha256(got.content).hexdigest() != hashlib.sha256(body).hexdigest():
            self.fail(f"read {url}: {got.status_code}, {len(got.content)} bytes, expected {len(body)}")
            return
        with self.lock:
            self.verified_reads += 1
            self.verified_bytes += len(body)

    def read_unknown(self, rng: random.Random) -> None:
        which = rng.randrange(len(self.sessions))
        url = self.next_url("never")
        got = requests.get(f"{self.server.api}/resources", timeout=30, allow_redirects=False,
                           params={"url": url, "token": self.sessions[which]["view_token"]})
        self.record("read-unknown", got)
        if got.status_code != 302 or got.headers["Location"] != url:
            self.fail(f"read-unknown: {got.status_code}")

    def sample_health(self, rng: random.Random | None = None) -> None:
        got = requests.get(f"{self.server.api}/health", timeout=30)
        self.record("health", got)
        tiers = got.json()["tiers"]
        with self.lock:
            self.health.append((int(got.headers["X-Worker-Pid"]), tiers["L1"]["bytes"], tiers["L1"]["max_bytes"]))
        if got.json()["status"] != "ok":
            self.fail(f"health: {got.text[:200]}")

    def client(self, seed: int, count: int) -> None:
        rng = random.Random(seed)
        ops = [(self.upload, 28), (self.batch, 8), (self.check, 14), (self.read, 40),
               (self.read_unknown, 5), (self.sample_health, 5)]
        for _ in range(count):
            (op, _), = rng.choices(ops, [w for _, w in ops])
            try:
                op(rng)
            except requests.RequestException as exc:
                self.fail(f"{op.__name__}: {exc!r}")


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_load_integrity_and_memory_bound(server):
    sessions = [requests.post(f"{server.api}/sessions", json={}, timeout=10).json() for _ in range(SESSIONS)]
    load = Load(server, sessions)
    # Warm every worker (imports, first allocations) before measuring its memory.
    for n in range(60):
        load.client(10_000 + n, 1)
        load.sample_health()
    workers = server.workers()
    assert len(workers) == WORKERS
    baseline = {pid: rss(pid) for pid in workers}
    peak = dict(baseline)
    stop = threading.Event()

    def sample_memory() -> None:
        while not stop.wait(0.2):
            for pid in workers:
                peak[pid] = max(peak[pid], rss(pid))

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.monotonic()
    per_client = (REQUESTS - sum(load.statuses.values())) // CLIENTS
    threads = [threading.Thread(target=load.client, args=(seed, per_client)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    for _ in range(30):  # several workers' view of level 1, after the load
        load.sample_health()
    stop.set()
    sampler.join(5)

    total = sum(load.statuses.values())
    print(f"\nload: {total} requests in {elapsed:.1f}s, {load.verified_reads} reads verified "
          f"({load.verified_bytes / 2**20:.1f} MiB), statuses {dict(load.statuses)}")
    assert total >= REQUESTS - CLIENTS
    assert not load.failures, f"{len(load.failures)} failures, e.g. {load.failures[:5]}"
    assert not any(status >= 500 for _, status in load.statuses)
    assert load.verified_reads >= 300

    # Level 1 within its bound in every worker that answered, and actually in use.
    pids = {pid for pid, _, _ in load.health}
    assert len(pids) >= 2, "the health samples all came from one worker"
    assert all(l1 <= max_bytes == LOCAL_MAX_BYTES for _, l1, max_bytes in load.health), load.health
    assert max(l1 for _, l1, _ in load.health) > LOCAL_MAX_BYTES // 2, "level 1 was never filled"

    # Resident memory: growth over the warmed-up baseline stays within the generous bound.
    growth = {pid: peak[pid] - baseline[pid] for pid in baseline}
    print("RSS growth per worker (MiB):", {pid: round(g / 2**20, 1) for pid, g in growth.items()})
    assert all(g <= RSS_GROWTH_BOUND for g in growth.values()), growth
    assert sorted(server.workers()) == sorted(workers), "a worker died (and was replaced) during the load"
