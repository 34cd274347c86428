"""The performance figures of SPEC section 9, measured side by side, printed as one table.

    python -m benchmarks.run                 # every figure (about 2-3 minutes)
    python -m benchmarks.run --quick         # shorter samples, fewer sizes (< 40 s)
    python -m benchmarks.run --only upload   # one figure (by name or number; comma-separated)
    python -m benchmarks.run --scale         # the scale notes instead (see benchmarks/scale.py)

Needs redis-server (``apt-get install -y redis-server``); the benchmark starts its own on a free
loopback port. Figure 7 also needs wrk (``apt-get install -y wrk``) and the ``bench`` extra
(``pip install -e '.[bench]'``: WhiteNoise).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks.harness import (
    REPO,
    KiB,
    MiB,
    RedisServer,
    Timer,
    body_of,
    call,
    caller,
    create_session,
    fmt_bytes,
    fmt_ns,
    free_port,
    machine,
    make_environ,
    middleware,
    not_found_app,
    once_each,
    print_table,
    request,
    resource_query,
    size_label,
    start_response,
    upload,
)


@dataclass
class Row:
    figure: str
    ours: str
    comparison: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None  # None: not run

    def cells(self) -> list[str]:
        met = "not run" if self.met is None else ("yes" if self.met else "NO")
        return [self.figure, self.ours, self.comparison, self.ratio, self.target, met]


def not_run(figure: str, target: str, why: str) -> Row:
    return Row(figure, f"not run: {why}", target=target)


@dataclass
class Context:
    timer: Timer  # wall time: figures that wait on Redis or sockets
    cpu_timer: Timer  # in-process figures: wall time too, unless --cpu
    redis: RedisServer
    quick: bool
    tmp: str
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        return [1 * KiB, 100 * KiB]


def ratio_row(figure: str, ours: float, theirs: float, ratio: float, theirs_name: str, limit: float) -> Row:
    shown = f"{ratio:.3f}×" if limit < 1.1 else f"{ratio:.2f}×"  # 1.024 must not print as "1.02"
    return Row(figure, fmt_ns(ours), f"{fmt_ns(theirs)} {theirs_name}", shown, f"≤ {limit:g}×", ratio <= limit)


# --- 1 and 2: level-1 hit vs WhiteNoise, and vs the floor -----------------------------------------


def l1_fixture(ctx: Context) -> dict[int, dict[str, Any]]:
    """One middleware with one session holding a resource of each size, hit once (so prepared)."""
    if "l1" in ctx._cache:
        return ctx._cache["l1"]
    mw = middleware(ctx.redis.url)
    session = create_session(mw)
    out = {}
    for size in ctx.sizes:
        url = f"https://site.example/assets/logo-{size}.png"
        upload(mw, session, url, body_of(size))
        environ = make_environ("/_cobrowse/resources", resource_query(url, session["view_token"], "image"))
        answer = request(mw, "GET", "/_cobrowse/resources", environ["QUERY_STRING"])
        assert answer.status == 200 and answer.headers["X-Cobrowse-Cache"] == "L1", answer.headers
        assert len(answer.body) == size
        out[size] = {"mw": mw, "environ": environ, "headers": list(answer.headers.items()), "body": answer.body}
    ctx._cache["l1"] = out
    return out


def fig_l1_whitenoise(ctx: Context) -> list[Row]:
    try:
        from whitenoise import WhiteNoise
    except ImportError:
        return [not_run("1. L1 hit vs WhiteNoise", "≤ 0.5×", "whitenoise missing (pip install -e '.[bench]')")]
    root = os.path.join(ctx.tmp, "whitenoise")
    os.makedirs(root, exist_ok=True)
    rows = []
    for size, fx in l1_fixture(ctx).items():
        with open(os.path.join(root, f"logo-{size}.png"), "wb") as f:
            f.write(fx["body"])
    wn = WhiteNoise(not_found_app, root=root, prefix="/static/", autorefresh=False)
    for size, fx in l1_fixture(ctx).items():
        wn_environ = make_environ(f"/static/logo-{size}.png")
        answer = request(wn, "GET", wn_environ["PATH_INFO"])
        assert answer.status == 200 and answer.body == fx["body"]
        ours, theirs, ratio = ctx.cpu_timer.compare(caller(fx["mw"], fx["environ"]), caller(wn, wn_environ))
        rows.append(ratio_row(f"1. L1 hit {size_label(size)} vs WhiteNoise", ours, theirs, ratio, "WhiteNoise", 0.5))
    return rows


def bare_app(headers: list[tuple[str, str]], body: bytes) -> Callable[..., list[bytes]]:
    """The floor: a WSGI app answering prebuilt headers and body, nothing else."""
    def floor(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]
    return floor


def fig_l1_floor(ctx: Context) -> list[Row]:
    rows = []
    for size, fx in l1_fixture(ctx).items():
        floor = bare_app(fx["headers"], fx["body"])
        ours, theirs, ratio = ctx.cpu_timer.compare(caller(fx["mw"], fx["environ"]), caller(floor, fx["environ"]))
        rows.append(ratio_row(f"2. L1 hit {size_label(size)} vs bare WSGI app", ours, theirs, ratio, "floor", 5))
    return rows


# --- 3: a request outside the prefix --------------------------------------------------------------


def fig_outside_prefix(ctx: Context) -> list[Row]:
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index() -> str:
        return "hello"

    wrapped = middleware(ctx.redis.url, app=app)
    environ = make_environ("/")
    assert request(wrapped, "GET", "/").body == b"hello"
    # The difference sought (~1 %) is far below the noise of one sample: many short samples, so
    # that the median of the pair ratios can settle.
    timer = dataclasses.replace(ctx.cpu_timer, samples=ctx.cpu_timer.samples * 8,
                                sample_ns=ctx.cpu_timer.sample_ns // 4)
    ours, theirs, ratio = timer.compare(caller(wrapped, environ), caller(app, environ))
    return [ratio_row("3. outside the prefix, Flask wrapped vs not", ours, theirs, ratio, "Flask alone", 1.02)]


# --- 4: level-2 hit in a process that has never seen the session ----------------------------------


def fig_l2_cold(ctx: Context) -> list[Row]:
    """Instance A creates many sessions and uploads one resource to each; a separate instance B
    (its own level 1 and session cache, as another process) reads each exactly once, so every
    timed read is B's first sight of that session: token check, session record from Redis,
    resource from Redis, promotion to level 1."""
    import redis

    rows = []
    a, b = middleware(ctx.redis.url), middleware(ctx.redis.url)
    raw = redis.Redis.from_url(ctx.redis.url)
    for size in ctx.sizes:
        per_sample = 100 if size <= 4 * KiB else 40
        needed = per_sample * (ctx.timer.samples + 1)  # +1: warm-up
        environs = []
        for i in range(needed):
            session = create_session(a)
            url = f"https://site.example/assets/{i}.png"
            upload(a, session, url, body_of(size, i))
            environs.append(make_environ("/_cobrowse/resources", resource_query(url, session["view_token"], "image")))
        raw.set(f"bench:raw:{size}", body_of(size, 10**9))
        # Warm-up: loads B's Lua scripts and connections on sessions we will not time.
        for environ in environs[:per_sample]:
            call(b, environ)
        entries_before = len(b.store.local)
        ours, theirs, ratio = ctx.timer.compare(
            once_each(b, environs[per_sample:]), partial(raw.get, f"bench:raw:{size}"), iterations=(per_sample, 2000))
        # Every timed read must have been a level-2 hit, promoted into B's level 1.
        promoted = len(b.store.local) - entries_before
        assert promoted == per_sample * ctx.timer.samples, f"{promoted} promotions, expected one per timed read"
        rows.append(ratio_row(f"4. cold L2 hit {size_label(size)} vs redis GET", ours, theirs, ratio,
                              "GET", 1.5))
    ctx.redis.flush()
    return rows


# --- 5: a 1 MiB upload ----------------------------------------------------------------------------


def fig_upload(ctx: Context) -> list[Row]:
    import hashlib

    import redis

    size = 1 * MiB
    mw = middleware(ctx.redis.url, session_max_bytes=1 << 50)
    session = create_session(mw)
    body = body_of(size)
    template = make_environ("/_cobrowse/resources", method="POST", body=body, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": "https://site.example/big.png",
        "Content-Type": "image/png"})

    def ours() -> None:
        environ = template.copy()
        environ["wsgi.input"] = io.BytesIO(body)
        for _ in mw(environ, start_response):
            pass

    raw = redis.Redis.from_url(ctx.redis.url)

    def floor() -> None:
        digest = hashlib.sha256(body).hexdigest()
        raw.set("bench:floor:" + digest, body, px=3_600_000)

    upload(mw, session, "https://site.example/big.png", body)  # checks the request is accepted
    o, t, ratio = ctx.timer.compare(ours, floor)
    ctx.redis.flush()
    return [ratio_row("5. upload 1 MiB vs SHA-256 + redis SET", o, t, ratio, "floor", 2)]


# --- 6: single flight -----------------------------------------------------------------------------


class _Origin(ThreadingHTTPServer):
    """A stylesheet origin that counts requests and answers slowly, so agents overlap."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OriginHandler)
        self.count = 0
        self.lock = threading.Lock()


class _OriginHandler(BaseHTTPRequestHandler):
    server: _Origin

    def do_GET(self) -> None:  # the http.server API names it so
        with self.server.lock:
            self.server.count += 1
        time.sleep(0.3)
        body = b"body { color: #123456 }\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def fig_single_flight(ctx: Context) -> list[Row]:
    figure, target = "6. 50 agents, one uncached stylesheet", "exactly 1 fetch"
    origin = _Origin()
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        port = origin.server_address[1]
        mw = middleware(ctx.redis.url, allowed_external_domains=[f"127.0.0.1:{port}"],
                        allowed_private_networks=["127.0.0.1/32"])
        if getattr(mw.resources, "fetcher", None) is None:
            return [not_run(figure, target, "server-side sync not built yet")]
        session = create_session(mw, css_server=True)
        url = f"http://127.0.0.1:{port}/theme.css?run={uuid.uuid4().hex}"  # never cached before
        query = resource_query(url, session["view_token"], "style")
        barrier = threading.Barrier(50)
        answers: list[Any] = []

        def agent() -> None:
            barrier.wait()
            answers.append(request(mw, "GET", "/_cobrowse/resources", query))

        threads = [threading.Thread(target=agent) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        proxied = sum(1 for a in answers if a.status == 200 and a.headers.get("X-Cobrowse-Source") == "proxy")
        fetches = origin.count
        return [Row(figure, f"{fetches} origin fetch{'es' if fetches != 1 else ''}",
                    f"{proxied}/50 answered 200 by proxy", "—", target, fetches == 1 and proxied == 50)]
    finally:
        origin.shutdown()
        origin.server_close()


# --- 7: under gunicorn, requests per second -------------------------------------------------------


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet, whatever the error
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer 200") from None
            time.sleep(0.1)


def _wrk(url: str, seconds: float) -> tuple[float, int]:
    """(requests per second, requests made); raises if any response was not 2xx/3xx."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds:g}s", url], capture_output=True, text=True,
                         check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, int(re.search(r"(\d+) requests in", out).group(1))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a gunicorn master and its workers (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [pid, *map(int, f.read().split())]
        total = 0
        for p in pids:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


def _gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4", "--worker-class", "gthread",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "5",
         f"benchmarks.gunicorn_apps:{app}"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fig_gunicorn(ctx: Context) -> list[Row]:
    target = "≥ 1.0×"
    if shutil.which("wrk") is None:
        return [not_run("7. gunicorn req/s vs WhiteNoise", target, "wrk missing (apt-get install -y wrk)")]
    try:
        import whitenoise  # noqa: F401
    except ImportError:
        return [not_run("7. gunicorn req/s vs WhiteNoise", target, "whitenoise missing")]
    sizes = [1 * KiB] if ctx.quick else ctx.sizes
    # Short runs, alternated, many of them: other load on the machine drifts; pairs cancel it.
    runs, seconds = (2, 2) if ctx.quick else (5, 2)
    root = os.path.join(ctx.tmp, "gunicorn-static")
    os.makedirs(root, exist_ok=True)
    # Upload with a middleware of this process; the workers read the session and bytes from Redis.
    mw = middleware(ctx.redis.url)
    session = create_session(mw)
    paths = {}
    for size in sizes:
        url = f"https://site.example/assets/hero-{size}.png"
        upload(mw, session, url, body_of(size))
        with open(os.path.join(root, f"hero-{size}.png"), "wb") as f:
            f.write(body_of(size))
        paths[size] = {"ours": "/_cobrowse/resources?" + resource_query(url, session["view_token"], "image"),
                       "whitenoise": f"/static/hero-{size}.png"}
    env = {**os.environ, "BENCH_REDIS_URL": ctx.redis.url, "BENCH_STATIC_ROOT": root,
           "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ports = {"ours": free_port(), "whitenoise": free_port()}
    servers = {name: _gunicorn(name, port, env) for name, port in ports.items()}
    rows = []
    try:
        for name, port in ports.items():
            base = f"http://127.0.0.1:{port}"
            for size in sizes:
                _wait_http(base + paths[size][name])
                for _ in range(40):  # new connections: let every worker see the request once
                    urllib.request.urlopen(base + paths[size][name], timeout=5).read()
        for size in sizes:
            results: dict[str, list[float]] = {"ours": [], "whitenoise": []}
            cpu: dict[str, list[float]] = {"ours": [], "whitenoise": []}  # server CPU µs per request
            for name, port in ports.items():
                _wrk(f"http://127.0.0.1:{port}{paths[size][name]}", 1)  # warm-up, every worker busy
            for i in range(runs):
                for name in (("ours", "whitenoise") if i % 2 == 0 else ("whitenoise", "ours")):
                    before = _cpu_seconds(servers[name].pid)
                    rps, count = _wrk(f"http://127.0.0.1:{ports[name]}{paths[size][name]}", seconds)
                    results[name].append(rps)
                    cpu[name].append((_cpu_seconds(servers[name].pid) - before) * 1e6 / count)
            ours, theirs = statistics.median(results["ours"]), statistics.median(results["whitenoise"])
            ratio = statistics.median(o / t for o, t in zip(results["ours"], results["whitenoise"]))
            ours_cpu, theirs_cpu = statistics.median(cpu["ours"]), statistics.median(cpu["whitenoise"])
            rows.append(Row(f"7. gunicorn 2×4 gthread, {size_label(size)}, req/s",
                            f"{ours:,.0f}/s ({ours_cpu:.0f} µs CPU/req)",
                            f"{theirs:,.0f}/s ({theirs_cpu:.0f} µs CPU/req) WhiteNoise",
                            f"{ratio:.2f}×", target, ratio >= 1.0))
    finally:
        for proc in servers.values():
            proc.terminate()
        for proc in servers.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    ctx.redis.flush()
    return rows


# --- 8: level-1 bound after 10,000 distinct uploads -----------------------------------------------


def fig_memory(ctx: Context) -> list[Row]:
    uploads, size, bound = 10_000, 8 * KiB, 32 * MiB
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory_probe", ctx.redis.url, str(uploads), str(size),
                          str(bound)], cwd=REPO, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    growth = r["rss_after"] - r["rss_before"]
    ctx.redis.flush()
    return [
        Row("8a. L1 accounted size after 10k × 8 KiB uploads", f"{fmt_bytes(r['accounted'])} ({r['entries']} entries)",
            f"{fmt_bytes(bound)} local_max_bytes", f"{r['accounted'] / bound:.2f}×", "≤ 1.0×",
            r["accounted"] <= bound),
        Row("8b. RSS growth after 10k × 8 KiB uploads", fmt_bytes(growth), f"{fmt_bytes(bound)} local_max_bytes",
            f"{growth / bound:.2f}×", "≤ 1.25×", growth <= 1.25 * bound),
    ]


# --- 9: Redis down --------------------------------------------------------------------------------


def fig_redis_down(ctx: Context) -> list[Row]:
    """Two instances, one on the live Redis and one on a dead port whose breaker is open; the same
    level-1 hit on each, sampled alternately. The dead one's session and resource live in its
    level 1 only, as they do in a process whose Redis went away."""
    size = 1 * KiB
    up = middleware(ctx.redis.url)
    down = middleware(f"redis://127.0.0.1:{free_port()}/0")
    environs = {}
    for name, mw in (("up", up), ("down", down)):
        session = create_session(mw)
        url = "https://site.example/assets/icon.png"
        upload(mw, session, url, body_of(size))
        environs[name] = make_environ("/_cobrowse/resources", resource_query(url, session["view_token"], "image"))
    for i in range(10):  # misses go to level 2: a few failures open the breaker
        if down.level2.is_open:
            break
        request(down, "GET", "/_cobrowse/resources", resource_query(f"https://x.example/{i}", "t", "image"))
    assert down.level2.is_open, "the breaker did not open"
    for name, mw in (("up", up), ("down", down)):
        answer = request(mw, "GET", "/_cobrowse/resources", environs[name]["QUERY_STRING"])
        assert answer.status == 200 and answer.headers["X-Cobrowse-Cache"] == "L1", (name, answer)
    # Steady state: past the first second, every hit's session check would ask level 2 (up: once
    # a second; down: the open breaker refuses at once), so time that, not the first second.
    time.sleep(1.2)
    o, t, ratio = ctx.cpu_timer.compare(caller(down, environs["down"]), caller(up, environs["up"]))
    return [ratio_row("9. L1 hit 1 KiB, Redis down (breaker open) vs up", o, t, ratio, "Redis up", 1.2)]


FIGURES: dict[str, Callable[[Context], list[Row]]] = {
    "l1-whitenoise": fig_l1_whitenoise,
    "l1-floor": fig_l1_floor,
    "outside-prefix": fig_outside_prefix,
    "l2-cold": fig_l2_cold,
    "upload": fig_upload,
    "single-flight": fig_single_flight,
    "gunicorn": fig_gunicorn,
    "memory": fig_memory,
    "redis-down": fig_redis_down,
}


def select(only: str | None) -> list[str]:
    if not only:
        return list(FIGURES)
    names = list(FIGURES)
    chosen = []
    for item in only.split(","):
        item = item.strip()
        if item.isdigit() and 1 <= int(item) <= len(names):
            chosen.append(names[int(item) - 1])
        elif item in FIGURES:
            chosen.append(item)
        else:
            raise SystemExit(f"unknown figure {item!r}; choose from: {', '.join(names)} (or 1-{len(names)})")
    return chosen


def describe(exc: Exception) -> str:
    """An error in one line; for a failed subprocess, the last line it wrote to stderr."""
    if isinstance(exc, subprocess.CalledProcessError):
        lines = (exc.stderr or "").strip().splitlines()
        return f"exit {exc.returncode}" + (f": {lines[-1]}" if lines else "")
    return str(exc)


def run_figures(args: argparse.Namespace, timer: Timer, cpu_timer: Timer, redis_server: RedisServer) -> None:
    with tempfile.TemporaryDirectory(prefix="cobrowse-bench-") as tmp:
        ctx = Context(timer, cpu_timer, redis_server, args.quick, tmp)
        if args.scale:
            from benchmarks.scale import run_scale

            run_scale(ctx)
        else:
            rows: list[Row] = []
            for name in select(args.only):
                try:
                    rows.extend(FIGURES[name](ctx))
                except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
                    rows.append(Row(name, f"ERROR: {type(exc).__name__}: {describe(exc)[:160]}", met=False))
            print_table(["figure", "ours", "comparison", "ratio", "target", "met"], [r.cells() for r in rows])
            missed = [r.figure for r in rows if r.met is False]
            print()
            print(f"missed: {', '.join(missed) if missed else 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter samples and fewer sizes (< 40 s)")
    parser.add_argument("--only", metavar="NAME", help=f"figures to run: {', '.join(FIGURES)} or 1-9")
    parser.add_argument("--scale", action="store_true", help="print the scale notes instead")
    parser.add_argument("--cpu", action="store_true",
                        help="time the in-process figures (1, 2, 3, 9) by thread CPU time, not wall time: "
                             "for a busy machine, where other processes inflate wall time")
    args = parser.parse_args(argv)
    # Figure 9 opens a breaker on purpose; its warning would only clutter the table.
    logging.getLogger("cobrowse").setLevel(logging.ERROR)

    for line in machine():
        print(line)
    print()
    timer = Timer(samples=7, sample_ns=8_000_000, warmup_ns=20_000_000) if args.quick else Timer()
    cpu_timer = dataclasses.replace(timer, clock=time.thread_time_ns) if args.cpu else timer
    if args.cpu:
        print("--cpu: figures 1, 2, 3 and 9 are timed in thread CPU time, the others in wall time\n")
    started = time.monotonic()
    redis_server = RedisServer()
    try:
        run_figures(args, timer, cpu_timer, redis_server)
    finally:
        redis_server.stop()
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
