"""Our own files: the customer script and the agent viewer."""

import requests


def test_our_static_files_are_served(cobrowse):
    for path, ctype in [("/cobrowse.js", "application/javascript"), ("/agent", "text/html"),
                        ("/static/agent.js", "application/javascript")]:
        got = requests.get(cobrowse.api + path, timeout=10)
        assert got.status_code == 200 and got.headers["Content-Type"].startswith(ctype), path
        assert got.headers["ETag"] and got.content
