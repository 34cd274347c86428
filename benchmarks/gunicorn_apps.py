"""The two WSGI apps of figure 7, for gunicorn (``benchmarks.gunicorn_apps:ours`` / ``:whitenoise``).

Configured by the environment the benchmark passes to gunicorn:

- ``BENCH_REDIS_URL``    the benchmark's redis-server (level 2, shared by every worker);
- ``BENCH_STATIC_ROOT``  the folder WhiteNoise serves under ``/static/``.

Every worker builds its own instance at import (no ``--preload``), as in production: each has its
own level 1, and all of them read the session and the resource the benchmark uploaded beforehand
from Redis, accepting its tokens because they share the benchmark's fixed secret key.
"""

from __future__ import annotations

import os

from benchmarks.harness import SECRET_KEY, not_found_app
from middleware import ResourceSyncMiddleware, Settings


def _ours():
    settings = Settings(secret_key=SECRET_KEY, redis_url=os.environ["BENCH_REDIS_URL"])
    return ResourceSyncMiddleware(not_found_app, settings)


def _whitenoise():
    from whitenoise import WhiteNoise

    return WhiteNoise(not_found_app, root=os.environ["BENCH_STATIC_ROOT"], prefix="/static/", autorefresh=False)


def __getattr__(name: str):  # build only the app gunicorn asks for
    if name == "ours":
        app = _ours()
    elif name == "whitenoise":
        app = _whitenoise()
    else:
        raise AttributeError(name)
    globals()[name] = app
    return app
