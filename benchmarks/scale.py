"""Scale notes (``python -m benchmarks.run --scale``): how each path's cost grows with

- the body size (1 KiB, 100 KiB, 1 MiB),
- the number of sessions live in the process (1, 100, 10 000),
- the number of resources in one session (1, 100, 1000).

Every cell is the median time of one request through the middleware's WSGI call (the harness of
``benchmarks.harness``), on the benchmark's own redis-server. Requests that may only be made once
(a cold read) are made on many pre-uploaded sessions or URLs, each read exactly once.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from benchmarks.harness import (
    KiB,
    MiB,
    Timer,
    body_of,
    call,
    caller,
    create_session,
    fmt_ns,
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

if TYPE_CHECKING:
    from benchmarks.run import Context


def _cycle(app: Any, environs: list[dict[str, Any]]) -> Callable[[], None]:
    """A request that goes round ``environs`` (one after the other, for ever); each is requested
    once first, so that what is built on an entry's first hit is not timed."""
    for environ in environs:
        call(app, environ)
    ring = itertools.cycle(environs)
    return lambda: call(app, next(ring))


def _poster(app: Any, environ: dict[str, Any], body: bytes) -> Callable[[], None]:
    """A POST with a fresh ``wsgi.input`` each time."""
    def post() -> None:
        env = environ.copy()
        env["wsgi.input"] = io.BytesIO(body)
        for _ in app(env, start_response):
            pass
    return post


def _posts_round(app: Any, uploads: list[tuple[dict[str, Any], bytes]]) -> Callable[[], None]:
    """A POST that goes round ``uploads`` (environ, body), a fresh ``wsgi.input`` each time."""
    ring = itertools.cycle(uploads)

    def post() -> None:
        environ, body = next(ring)
        _poster(app, environ, body)()
    return post


def _upload_environ(session: dict[str, Any], url: str, body: bytes) -> dict[str, Any]:
    return make_environ("/_cobrowse/resources", method="POST", body=body, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url, "Content-Type": "image/png"})


def _view(url: str, session: dict[str, Any]) -> dict[str, Any]:
    return make_environ("/_cobrowse/resources", resource_query(url, session["view_token"], "image"))


# --- body size ------------------------------------------------------------------------------------


def by_body_size(ctx: Context, timer: Timer) -> None:
    import redis
    from whitenoise import WhiteNoise

    sizes = [1 * KiB, 100 * KiB, 1 * MiB]
    rows: dict[str, list[str]] = {name: [] for name in (
        "L1 hit", "L2 hit, session already known here", "L2 hit, session never seen here (cold)",
        "upload (raw POST)", "ref: WhiteNoise, same file", "ref: one redis GET of the blob")}
    root = ctx.tmp
    raw = redis.Redis.from_url(ctx.redis.url)
    for size in sizes:
        body = body_of(size)
        per_sample = 40 if size < MiB else 10
        needed = per_sample * (timer.samples + 1)
        a = middleware(ctx.redis.url, local_max_bytes=64 * MiB, session_max_bytes=1 << 50)
        b = middleware(ctx.redis.url, local_max_bytes=64 * MiB)
        session = create_session(a)
        url = "https://site.example/assets/one.png"
        upload(a, session, url, body)
        rows["L1 hit"].append(fmt_ns(timer.measure(caller(a, _view(url, session)))))

        # Session known to B (it served one of its URLs), each timed URL read once.
        urls = [f"https://site.example/assets/{i}.png" for i in range(needed)]
        for u in urls:
            upload(a, session, u, body)  # same bytes: one blob in Redis, many index entries
        call(b, _view(url, session))
        environs = [_view(u, session) for u in urls]
        warm, timed = environs[:per_sample], environs[per_sample:]
        for e in warm:
            call(b, e)
        rows["L2 hit, session already known here"].append(
            fmt_ns(timer.measure(once_each(b, timed), iterations=per_sample)))

        # Cold: a new session per read, B has never seen any of them.
        c = middleware(ctx.redis.url, local_max_bytes=64 * MiB)
        environs = []
        for _ in range(needed):
            s = create_session(a)
            upload(a, s, url, body)
            environs.append(_view(url, s))
        for e in environs[:per_sample]:
            call(c, e)
        rows["L2 hit, session never seen here (cold)"].append(
            fmt_ns(timer.measure(once_each(c, environs[per_sample:]), iterations=per_sample)))

        rows["upload (raw POST)"].append(fmt_ns(timer.measure(
            _poster(a, _upload_environ(session, "https://site.example/assets/up.png", body), body))))

        with open(f"{root}/scale-{size}.png", "wb") as f:
            f.write(body)
        wn = WhiteNoise(not_found_app, root=root, prefix="/static/", autorefresh=False)
        rows["ref: WhiteNoise, same file"].append(
            fmt_ns(timer.measure(caller(wn, make_environ(f"/static/scale-{size}.png")))))
        raw.set("bench:scale", body)
        rows["ref: one redis GET of the blob"].append(fmt_ns(timer.measure(lambda: raw.get("bench:scale"))))
        ctx.redis.flush()
    print("Cost per request vs body size")
    print_table(["path", *map(size_label, sizes)], [[name, *cells] for name, cells in rows.items()])
    print()


# --- sessions live in the process -----------------------------------------------------------------


def by_sessions(ctx: Context, timer: Timer) -> None:
    counts = [1, 100, 10_000]
    rows: dict[str, list[str]] = {name: [] for name in (
        "L1 hit, requests spread over all sessions", "upload 1 KiB, spread over all sessions",
        "create a session")}
    body = body_of(1 * KiB)
    for count in counts:
        mw = middleware(ctx.redis.url)
        sessions = [create_session(mw) for _ in range(count)]
        url = "https://site.example/assets/icon.png"
        for s in sessions:
            upload(mw, s, url, body)
        rows["L1 hit, requests spread over all sessions"].append(
            fmt_ns(timer.measure(_cycle(mw, [_view(url, s) for s in sessions]))))
        posts = [(_upload_environ(s, url, body), body) for s in sessions]
        rows["upload 1 KiB, spread over all sessions"].append(fmt_ns(timer.measure(_posts_round(mw, posts))))
        create = make_environ("/_cobrowse/sessions", method="POST", body=b"{}",
                              headers={"Content-Type": "application/json"})
        rows["create a session"].append(fmt_ns(timer.measure(_poster(mw, create, b"{}"))))
        ctx.redis.flush()
    print("Cost per request vs sessions live in the process (each with one 1 KiB resource)")
    print_table(["path", *(f"{n:,} sessions" for n in counts)], [[name, *cells] for name, cells in rows.items()])
    print()


# --- resources per session ------------------------------------------------------------------------


def by_resources(ctx: Context, timer: Timer) -> None:
    counts = [1, 100, 1000]
    rows: dict[str, list[str]] = {name: [] for name in (
        "L1 hit, spread over the session's resources", "upload 1 KiB (replacing one of them)",
        "check listing all n, all held", "check listing n new ones (none held)",
        "GET /sessions/current (status of all n)")}
    for count in counts:
        mw = middleware(ctx.redis.url)
        session = create_session(mw)
        urls = [f"https://site.example/assets/{i}.png" for i in range(count)]
        bodies = [body_of(KiB, i) for i in range(count)]
        for u, b in zip(urls, bodies):
            upload(mw, session, u, b)
        rows["L1 hit, spread over the session's resources"].append(
            fmt_ns(timer.measure(_cycle(mw, [_view(u, session) for u in urls]))))
        posts = [(_upload_environ(session, u, b), b) for u, b in zip(urls, bodies)]
        rows["upload 1 KiB (replacing one of them)"].append(fmt_ns(timer.measure(_posts_round(mw, posts))))
        token = {"X-Cobrowse-Token": session["upload_token"], "Content-Type": "application/json"}
        held = json.dumps({"resources": [{"url": u, "sha256": hashlib.sha256(b).hexdigest()}
                                         for u, b in zip(urls, bodies)]}).encode()
        fresh = json.dumps({"resources": [{"url": u + "?v=2", "sha256": hashlib.sha256(b"new" + b).hexdigest()}
                                          for u, b in zip(urls, bodies)]}).encode()
        for name, payload in (("check listing all n, all held", held), ("check listing n new ones (none held)", fresh)):
            environ = make_environ("/_cobrowse/resources/check", method="POST", body=payload, headers=token)
            answer = request(mw, "POST", "/_cobrowse/resources/check", body=payload, headers=token)
            assert answer.status == 200 and len(answer.json()["missing"]) == (0 if payload is held else count)
            rows[name].append(fmt_ns(timer.measure(_poster(mw, environ, payload))))
        status = make_environ("/_cobrowse/sessions/current", f"token={session['view_token']}")
        rows["GET /sessions/current (status of all n)"].append(fmt_ns(timer.measure(caller(mw, status))))
        ctx.redis.flush()
    print("Cost per request vs resources in one session (1 KiB each)")
    print_table(["path", *(f"{n:,} resources" for n in counts)], [[name, *cells] for name, cells in rows.items()])
    print()


def run_scale(ctx: Context) -> None:
    timer = ctx.timer.with_samples(5 if ctx.quick else 9)
    print(f"Scale notes: median time per request, {timer.samples} samples each\n")
    by_body_size(ctx, timer)
    by_sessions(ctx, timer)
    by_resources(ctx, timer)
