"""The sample site's second origin: public resources on another port (or host), no login.

It exists so that every row of the decision table (SPEC 5) can be seen on one page
(``static_test_site/origins.html``):

* ``/cors/badge.png`` answers with CORS headers (the requesting origin echoed, credentials
  allowed, ``Vary: Origin``): the customer's browser can read it, so it is uploaded and the agent
  gets it from the cache;
* ``/plain/stamp.png`` and ``/plain/remote.css`` (which uses ``/plain/remote-bg.png``) have no
  CORS headers: the customer's browser cannot read them, so the agent gets them through
  server-side sync when this host is in ``allowedExternalDomains`` (and, being on loopback, in
  ``allowedPrivateNetworks``; ``image`` in ``[proxy] types`` for the image), and directly (302)
  otherwise.

The images are drawn in memory, deterministically, like the large public image. Run it on its own
with ``python -m reference_app.second_origin [--port 8001]``; the sample pages find it at the
address the reference app is told (``SECOND_ORIGIN``), by default the site's own host on the
next port.
"""

from __future__ import annotations

import argparse
import functools
import sys

from flask import Flask, Response, abort, request

from .images import encode_png

CSS = b"""/* Served by the second origin without CORS headers: the customer's browser cannot read it. */
.remote {
  width: 48px;
  height: 48px;
  background: url(remote-bg.png) no-repeat;
}
"""


def _checker(size: int, cell: int, a: tuple[int, int, int], b: tuple[int, int, int]) -> bytes:
    return bytes(
        channel
        for y in range(size)
        for x in range(size)
        for channel in (a if (x // cell + y // cell) % 2 == 0 else b)
    )


def _rings(size: int, a: tuple[int, int, int], b: tuple[int, int, int]) -> bytes:
    half = size / 2
    return bytes(
        channel
        for y in range(size)
        for x in range(size)
        for channel in (a if int(((x - half) ** 2 + (y - half) ** 2) ** 0.5) // 4 % 2 == 0 else b)
    )


@functools.cache
def images() -> dict[str, bytes]:
    teal, white, red, ink = (20, 140, 150), (255, 255, 255), (200, 60, 60), (40, 40, 60)
    return {
        "cors/badge.png": encode_png(48, 48, _checker(48, 6, teal, white)),
        "plain/stamp.png": encode_png(48, 48, _rings(48, red, white)),
        "plain/remote-bg.png": encode_png(48, 48, _checker(48, 12, ink, (250, 230, 120))),
    }


def create_second_origin() -> Flask:
    app = Flask(__name__, static_folder=None)

    def send(body: bytes, content_type: str) -> Response:
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "public, max-age=60"
        response.add_etag()
        return response.make_conditional(request)

    @app.get("/cors/<path:name>")
    def with_cors(name: str) -> Response:
        body = images().get(f"cors/{name}")
        if body is None:
            abort(404)
        response = send(body, "image/png")
        origin = request.headers.get("Origin")
        # Echo the origin (never "*") so that a read with credentials is allowed too.
        response.headers["Access-Control-Allow-Origin"] = origin or "*"
        if origin:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    @app.get("/plain/<path:name>")
    def without_cors(name: str) -> Response:
        if name == "remote.css":
            return send(CSS, "text/css; charset=utf-8")
        body = images().get(f"plain/{name}")
        if body is None:
            abort(404)
        return send(body, "image/png")

    @app.get("/")
    def index() -> Response:
        return Response("The sample site's second origin: /cors/badge.png, /plain/stamp.png, "
                        "/plain/remote.css.\n", content_type="text/plain; charset=utf-8")

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reference_app.second_origin",
                                     description="Serve the sample site's second origin.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--parent", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    import logging
    import os
    import signal
    import threading
    import time

    from werkzeug.serving import make_server

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = make_server(args.host, args.port, create_second_origin(), threaded=True)
    except OSError as error:
        print(f"second origin: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    # SIGTERM (from cobrowse-server as it stops) ends it as quietly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    if args.parent:
        def watch_parent() -> None:  # cobrowse-server killed outright: do not linger
            while os.getppid() == args.parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=watch_parent, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
