"""The WSGI app the load test runs under gunicorn: the middleware around a plain app, settings
from the environment (COBROWSE_* variables, as a deployment sets them).

Every worker builds its own instance at import (no ``--preload``): each has its own level 1 and
all share Redis, accepting each other's tokens through the fixed secret key the test passes.
Each answer carries ``X-Worker-Pid`` so the test can tell which worker gave it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from middleware import ResourceSyncMiddleware, Settings
from tests.support.servers import plain_app

_middleware = ResourceSyncMiddleware(plain_app, Settings.from_file())
_PID = ("X-Worker-Pid", str(os.getpid()))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, _PID], exc_info)

    return _middleware(environ, start)
