"""Two processes, one level 2: what one process stored, the other serves (Redis and embedded)."""

from __future__ import annotations

import time

import requests

from tests.integration.conftest import SECRET
from tests.support.resources import CSS, png
from tests.support.servers import serve_in_process

SITE = "https://site.example"


def _upload_through_a_read_through_b(env: dict[str, str]) -> None:
    body = png(seed=7)
    with serve_in_process(env) as a, serve_in_process(env) as b:
        session = requests.post(f"{a}/_cobrowse/sessions", timeout=10).json()
        for url, data, ctype in [(f"{SITE}/a.png", body, "image/png"), (f"{SITE}/s.css", CSS, "text/css")]:
            stored = requests.post(f"{a}/_cobrowse/resources", data=data, timeout=10, headers={
                "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url, "Content-Type": ctype})
            assert stored.status_code == 201, stored.text

            got = requests.get(f"{b}/_cobrowse/resources", params={"url": url, "token": session["view_token"]},
                               timeout=10, allow_redirects=False)
            assert got.status_code == 200, got.text
            if ctype == "text/css":  # served rewritten: its URLs point back at B for this token
                assert b"no-repeat" in got.content and got.content.count(b'"/_cobrowse/resources?url=') == 3
            else:
                assert got.content == data
            assert got.headers["X-Cobrowse-Cache"] == "L2"  # B never saw it: it came from level 2
            again = requests.get(got.url, timeout=10)
            assert again.headers["X-Cobrowse-Cache"] == "L1"  # and was promoted

        # B knows the session by its join code too, and its ending reaches A
        joined = requests.post(f"{b}/_cobrowse/sessions/join", json={"code": session["code"]}, timeout=10)
        assert joined.status_code == 200
        assert requests.delete(f"{b}/_cobrowse/sessions/current", timeout=10,
                               headers={"X-Cobrowse-Token": session["upload_token"]}).status_code == 204
        time.sleep(1.1)  # A re-reads a session record at most this stale
        gone = requests.get(f"{a}/_cobrowse/resources", params={"url": f"{SITE}/a.png",
                            "token": session["view_token"]}, timeout=10, allow_redirects=False)
        assert gone.status_code == 403


def test_two_processes_share_redis(redis_url, tmp_path):
    _upload_through_a_read_through_b({"COBROWSE_REDIS_URL": redis_url, "COBROWSE_COBROWSE_SECRET_KEY": SECRET,
                                      "COBROWSE_CACHE_EMBEDDED_PATH": str(tmp_path / "unused")})


def test_two_processes_share_the_embedded_store(tmp_path):
    _upload_through_a_read_through_b({"COBROWSE_REDIS_URL": "", "COBROWSE_COBROWSE_SECRET_KEY": SECRET,
                                      "COBROWSE_CACHE_EMBEDDED_PATH": str(tmp_path / "shared")})
