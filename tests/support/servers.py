"""Run WSGI apps on real sockets for the integration tests: in a thread, or in another process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests
from werkzeug.serving import make_server

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_app(environ, start_response):
    """The app being wrapped: answers every path it gets, so pass-through is visible."""
    body = f"app saw {environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on a free port; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def serve_in_process(env: dict[str, str]) -> Iterator[str]:
    """Run ``tests/support/serve.py`` in its own interpreter (its own level 1), settings from env."""
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.serve", str(port)], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{base}/_cobrowse/health", timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    raise RuntimeError(f"test server did not start:\n{output}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
