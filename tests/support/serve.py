"""``python -m tests.support.serve PORT``: the plain app wrapped by the middleware, settings from
the environment (COBROWSE_* variables), served by werkzeug. Used for multi-process tests."""

import sys

from werkzeug.serving import run_simple

from middleware import ResourceSyncMiddleware, Settings
from tests.support.servers import plain_app

if __name__ == "__main__":
    app = ResourceSyncMiddleware(plain_app, Settings.from_file())
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
