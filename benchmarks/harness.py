"""What every benchmark shares: the WSGI call harness, the timer, a private redis-server, helpers.

The harness calls a WSGI app the way a server would and as cheaply as possible, identically for
the app under test and for its comparison: copy a prebuilt environ, call the app with a no-op
``start_response``, iterate the body to the end and close it.

Timing: a *sample* runs the call ``iterations`` times back to back and divides by ``iterations``
(``time.perf_counter_ns``); the figure is the median of several samples taken after a warm-up.
Two things being compared are sampled alternately (A B, B A, A B, ...) so that drift (CPU clock,
other load) hits both alike, and their ratio is the median of the per-pair ratios.
"""

from __future__ import annotations

import gc
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A fixed token-signing key, so several processes (gunicorn workers) accept one session's tokens.
SECRET_KEY = "benchmark-secret-key-0123456789abcdef"
KiB = 1024
MiB = 1024 * 1024


# --- the WSGI call harness ------------------------------------------------------------------------


def _write(data: bytes) -> None:  # the legacy write() callable; nobody here uses it
    pass


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
    """One request: environ copy, start_response, the whole body iterated, then closed."""
    body = app(environ.copy(), start_response)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def caller(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Callable[[], None]:
    return partial(call, app, environ)


def once_each(app: Callable[..., Iterable[bytes]], environs: list[dict[str, Any]]) -> Callable[[], None]:
    """A request that takes the next of ``environs`` each time (for reads that must be first
    reads); raises StopIteration when they are used up."""
    remaining = iter(environs)
    return lambda: call(app, next(remaining))


def make_environ(path: str, query: str = "", method: str = "GET", headers: dict[str, str] | None = None,
                 body: bytes = b"") -> dict[str, Any]:
    """An environ as a WSGI server builds it for a browser request (typical browser headers)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "HTTP_ACCEPT": "*/*",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.5",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body or method in ("POST", "PUT"):
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return environ


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(app: Callable[..., Iterable[bytes]], method: str, path: str, query: str = "",
            headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
    """A request for set-up and checks (not timed): returns status, headers and body."""
    seen: dict[str, Any] = {}

    def capture(status: str, hdrs: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = status, hdrs
        return _write

    result = app(make_environ(path, query, method, headers, body), capture)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return Answer(int(seen["status"].split()[0]), dict(seen["headers"]), data)


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Timer:
    """Samples and sample length; ``--quick`` uses fewer and shorter ones."""

    samples: int = 15
    sample_ns: int = 20_000_000  # aim for ~20 ms of calls per sample
    warmup_ns: int = 50_000_000
    #: Wall time by default. ``--cpu`` gives the in-process figures this thread's CPU time instead
    #: (user + system, so WhiteNoise's open/read count), which other processes cannot inflate.
    clock: Callable[[], int] = time.perf_counter_ns

    def with_samples(self, samples: int) -> Timer:
        return Timer(samples, self.sample_ns, self.warmup_ns, self.clock)

    def iterations_for(self, fn: Callable[[], None]) -> int:
        """How many calls make one sample of about ``sample_ns`` (warms up on the way)."""
        count, start = 0, self.clock()
        while (elapsed := self.clock() - start) < self.warmup_ns or count < 3:
            fn()
            count += 1
        return max(1, int(self.sample_ns * count / max(elapsed, 1)))

    def sample(self, fn: Callable[[], None], iterations: int) -> float:
        """Nanoseconds per call over ``iterations`` back-to-back calls (GC paused, as timeit)."""
        clock = self.clock
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = clock()
            for _ in range(iterations):
                fn()
            return (clock() - start) / iterations
        finally:
            if gc_was_enabled:
                gc.enable()

    def measure(self, fn: Callable[[], None], iterations: int | None = None) -> float:
        """Median nanoseconds per call."""
        if iterations is None:
            iterations = self.iterations_for(fn)
        gc.collect()
        return statistics.median(self.sample(fn, iterations) for _ in range(self.samples))

    def compare(self, ours: Callable[[], None], theirs: Callable[[], None],
                iterations: tuple[int, int] | None = None) -> tuple[float, float, float]:
        """(median ns of ours, median ns of theirs, median of per-pair ratios), sampled alternately."""
        if iterations is None:
            iterations = (self.iterations_for(ours), self.iterations_for(theirs))
        gc.collect()
        a: list[float] = []
        b: list[float] = []
        for i in range(self.samples):
            if i % 2:
                b.append(self.sample(theirs, iterations[1]))
                a.append(self.sample(ours, iterations[0]))
            else:
                a.append(self.sample(ours, iterations[0]))
                b.append(self.sample(theirs, iterations[1]))
        ratio = statistics.median(x / y for x, y in zip(a, b))
        return statistics.median(a), statistics.median(b), ratio


def fmt_ns(ns: float) -> str:
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def fmt_bytes(n: float) -> str:
    if abs(n) >= MiB:
        return f"{n / MiB:.1f} MiB"
    if abs(n) >= KiB:
        return f"{n / KiB:.1f} KiB"
    return f"{n:.0f} B"


def size_label(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n // KiB} KiB"


# --- a private redis-server -----------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface (never 6379)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


def redis_server_binary() -> str | None:
    fallback = "/usr/bin/redis-server"
    return shutil.which("redis-server") or (fallback if os.path.exists(fallback) else None)


class RedisServer:
    """Our own redis-server on a free loopback port, no persistence; stopped on exit."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install -y redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        self.client().flushall()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the middleware under test --------------------------------------------------------------------


def not_found_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The trivial app wrapped by the middleware (and by WhiteNoise)."""
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


def middleware(redis_url: str, app: Callable[..., Iterable[bytes]] = not_found_app, **overrides: Any) -> Any:
    from middleware import ResourceSyncMiddleware, Settings

    settings = Settings(secret_key=SECRET_KEY, redis_url=redis_url, **overrides)
    return ResourceSyncMiddleware(app, settings)


def create_session(mw: Any, css_server: bool = True) -> dict[str, Any]:
    answer = request(mw, "POST", "/_cobrowse/sessions", headers={"Content-Type": "application/json"},
                     body=json.dumps({"css": {"server": css_server}}).encode())
    assert answer.status == 201, answer
    return answer.json()


def upload(mw: Any, session: dict[str, Any], url: str, body: bytes, content_type: str = "image/png") -> None:
    answer = request(mw, "POST", "/_cobrowse/resources", body=body, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url, "Content-Type": content_type})
    assert answer.status == 201, answer


def resource_query(url: str, token: str, as_: str | None = None) -> str:
    from urllib.parse import urlencode

    params = {"url": url, "token": token}
    if as_:
        params["as"] = as_
    return urlencode(params)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def body_of(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ with ``seed`` (so each is a distinct blob). They start with the
    PNG signature, since uploads are sniffed and we upload them as ``image/png``."""
    head = PNG_SIGNATURE + seed.to_bytes(8, "big")
    return (head + bytes(range(256)) * (size // 256 + 1))[:size]


# --- the machine ----------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    binary = redis_server_binary()
    redis_version = "not installed"
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        redis_version = next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())
    wrk = shutil.which("wrk")
    versions = []
    for dist in ("werkzeug", "flask", "redis", "cachetools", "whitenoise", "gunicorn"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = " -- BUSY: other work is running, expect noisy figures" if load > 0.5 * (usable or 1) else ""
    return [
        f"CPU: {cpu}, {cores} cores ({usable} usable); load average {load:.2f} at start{busy}",
        f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"redis-server {redis_version}; wrk {'at ' + wrk if wrk else 'missing'}",
        ", ".join(versions),
    ]


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
