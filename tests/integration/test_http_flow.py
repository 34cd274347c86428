"""The customer uploads, the agent reads: the foundation's HTTP contract over a real server."""

from __future__ import annotations

import gzip
import hashlib
from urllib.parse import parse_qs

import requests

from tests.integration.conftest import MAX_SIZE
from tests.support.resources import CSS, WOFF2, png

SITE = "https://site.example"
PNG = png(seed=1)
SPEC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Access-Control-Allow-Origin": "*",
    "Referrer-Policy": "no-referrer",
    "X-Cobrowse-Source": "cache",
}


def assert_rewritten(served: str, token: str) -> None:
    """The sample sheet as the agent gets it: every URL points back here for this token."""
    targets = [parse_qs(part.split('"')[0])
               for part in served.split('"/_cobrowse/resources?')[1:]]
    assert [(t["url"][0], t["as"][0], t["token"][0]) for t in targets] == [
        (f"{SITE}/css/theme.css", "style", token),
        (f"{SITE}/img/bg.png", "image", token),
        (f"{SITE}/css/logo.svg", "image", token),
    ]
    assert "no-repeat;" in served and served.count("url(") == 2


def batch_upload(cobrowse, session, parts):
    files = [(url, (url.rsplit("/", 1)[-1], body, ctype)) for url, body, ctype in parts]
    return requests.post(f"{cobrowse.api}/resources", files=files, timeout=10,
                         headers={"X-Cobrowse-Token": session["upload_token"]})


def test_upload_raw_and_batch_then_agent_reads_identical_bytes(cobrowse):
    session = cobrowse.new_session()
    assert len(session["code"]) == 9 and session["code"].isdigit()

    raw = cobrowse.upload(session, f"{SITE}/img/a.png", PNG, "image/png")
    assert raw.status_code == 201, raw.text
    assert raw.json() == {"stored": [{"url": f"{SITE}/img/a.png", "sha256": hashlib.sha256(PNG).hexdigest(),
                                      "size": len(PNG), "content_type": "image/png"}], "rejected": []}

    batch = batch_upload(cobrowse, session, [(f"{SITE}/css/site.css", CSS, "text/css"),
                                             (f"{SITE}/fonts/f.woff2", WOFF2, "font/woff2")])
    assert batch.status_code == 201, batch.text
    assert [s["url"] for s in batch.json()["stored"]] == [f"{SITE}/css/site.css", f"{SITE}/fonts/f.woff2"]
    assert batch.json()["rejected"] == []

    for url, body, ctype in [(f"{SITE}/img/a.png", PNG, "image/png"),
                             (f"{SITE}/css/site.css", CSS, "text/css; charset=utf-8"),
                             (f"{SITE}/fonts/f.woff2", WOFF2, "font/woff2")]:
        got = cobrowse.fetch(session["view_token"], url)
        assert got.status_code == 200, got.text
        if ctype.startswith("text/css"):
            assert_rewritten(got.text, session["view_token"])
        else:
            assert got.content == body
        assert got.headers["Content-Type"] == ctype
        for name, value in SPEC_HEADERS.items():
            assert got.headers[name] == value
        assert got.headers["Cache-Control"].startswith("private, max-age=")
        assert got.headers["X-Cobrowse-Cache"] == "L1"
        etag = got.headers["ETag"]
        again = requests.get(got.url, headers={"If-None-Match": etag}, timeout=10)
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
        changed = requests.get(got.url, headers={"If-None-Match": '"other"'}, timeout=10)
        assert changed.status_code == 200 and changed.content == got.content

    head = requests.head(cobrowse.fetch(session["view_token"], f"{SITE}/img/a.png").url, timeout=10)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == str(len(PNG))


def test_url_identity_is_the_browser_serialisation(cobrowse):
    session = cobrowse.new_session()
    assert cobrowse.upload(session, "https://Site.example:443/a.png#frag", PNG, "image/png").status_code == 201
    got = cobrowse.fetch(session["view_token"], "https://site.example/a.png")
    assert got.status_code == 200 and got.content == PNG


def test_roles_and_sessions_are_kept_apart(cobrowse):
    mine, theirs = cobrowse.new_session(), cobrowse.new_session()
    url = f"{SITE}/private.png"
    assert cobrowse.upload(mine, url, PNG, "image/png").status_code == 201

    # the upload token cannot read
    assert cobrowse.fetch(mine["upload_token"], url).status_code == 403
    # the view token cannot upload
    assert cobrowse.upload({"upload_token": mine["view_token"]}, url, PNG, "image/png").status_code == 403
    # another session's valid view token gets no copy: rule 4, direct load
    other = cobrowse.fetch(theirs["view_token"], url)
    assert other.status_code == 302 and other.headers["Location"] == url
    assert other.headers["X-Cobrowse-Source"] == "direct" and other.content == b""
    # a forged token is refused
    forged = mine["view_token"][:-2] + ("AA" if not mine["view_token"].endswith("AA") else "BB")
    assert cobrowse.fetch(forged, url).status_code == 403
    assert cobrowse.fetch("", url).status_code == 403


def test_same_url_different_bytes_per_session(cobrowse):
    a, b = cobrowse.new_session(), cobrowse.new_session()
    url = f"{SITE}/logo.png"
    cobrowse.upload(a, url, png(seed=10), "image/png")
    cobrowse.upload(b, url, png(seed=20), "image/png")
    assert cobrowse.fetch(a["view_token"], url).content == png(seed=10)
    assert cobrowse.fetch(b["view_token"], url).content == png(seed=20)


def test_over_max_size_is_413_and_nothing_is_stored(cobrowse):
    session = cobrowse.new_session()
    url = f"{SITE}/huge.png"
    big = PNG + b"\x00" * MAX_SIZE
    answer = cobrowse.upload(session, url, big, "image/png")
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert cobrowse.fetch(session["view_token"], url).status_code == 302

    # the same limit while streaming a chunked body with no Content-Length
    answer = requests.post(f"{cobrowse.api}/resources", data=iter([PNG, b"\x00" * MAX_SIZE]), timeout=10,
                           headers={"X-Cobrowse-Token": session["upload_token"],
                                    "X-Cobrowse-Url": url, "Content-Type": "image/png"})
    assert answer.status_code == 413
    assert cobrowse.fetch(session["view_token"], url).status_code == 302
    status = requests.get(f"{cobrowse.api}/sessions/current", params={"token": session["view_token"]}, timeout=10)
    assert status.json()["resources"] == []


def test_disallowed_type_is_415(cobrowse):
    session = cobrowse.new_session()
    for ctype in ["text/html", "application/javascript", "image/svg", ""]:
        answer = cobrowse.upload(session, f"{SITE}/x", b"<script>1</script>", ctype)
        assert answer.status_code == 415, ctype
        assert answer.json()["error"] == "unsupported_type"


def test_batch_reports_every_part_and_422_when_none_stored(cobrowse):
    session = cobrowse.new_session()
    mixed = batch_upload(cobrowse, session, [
        (f"{SITE}/ok.png", PNG, "image/png"),
        (f"{SITE}/page.html", b"<html>", "text/html"),
        ("javascript:alert(1)", PNG, "image/png"),
        (f"{SITE}/big.png", b"\x00" * (MAX_SIZE + 1), "image/png"),
    ])
    assert mixed.status_code == 201
    assert [s["url"] for s in mixed.json()["stored"]] == [f"{SITE}/ok.png"]
    assert [r["error"] for r in mixed.json()["rejected"]] == ["unsupported_type", "bad_url", "too_large"]

    none = batch_upload(cobrowse, session, [(f"{SITE}/page.html", b"<html>", "text/html")])
    assert none.status_code == 422 and none.json()["stored"] == []
    assert cobrowse.fetch(session["view_token"], f"{SITE}/big.png").status_code == 302


def test_check_returns_exactly_the_missing_urls_and_links_the_rest(cobrowse):
    session, other = cobrowse.new_session(), cobrowse.new_session()
    cobrowse.upload(session, f"{SITE}/a.png", PNG, "image/png")
    cobrowse.upload(other, f"{SITE}/theirs.png", png(seed=99), "image/png")
    sha = hashlib.sha256(PNG).hexdigest()
    their_sha = hashlib.sha256(png(seed=99)).hexdigest()
    listed = [
        {"url": f"{SITE}/a.png", "sha256": sha},            # stored already
        {"url": f"{SITE}/copy-of-a.png", "sha256": sha},    # same bytes, new URL: linked
        {"url": f"{SITE}/new.png", "sha256": "0" * 64},     # unknown: missing
        {"url": f"{SITE}/a.png?v=2", "sha256": "1" * 64},   # another URL, unknown bytes: missing
        {"url": f"{SITE}/stolen.png", "sha256": their_sha},  # another session's bytes: never linked
    ]
    answer = requests.post(f"{cobrowse.api}/resources/check", json={"resources": listed}, timeout=10,
                           headers={"X-Cobrowse-Token": session["upload_token"]})
    assert answer.status_code == 200
    assert answer.json() == {"missing": [f"{SITE}/new.png", f"{SITE}/a.png?v=2", f"{SITE}/stolen.png"]}
    linked = cobrowse.fetch(session["view_token"], f"{SITE}/copy-of-a.png")
    assert linked.status_code == 200 and linked.content == PNG
    assert cobrowse.fetch(session["view_token"], f"{SITE}/stolen.png").status_code == 302

    bad = requests.post(f"{cobrowse.api}/resources/check", json={"nope": []}, timeout=10,
                        headers={"X-Cobrowse-Token": session["upload_token"]})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


def test_session_join_status_and_end(cobrowse):
    session = cobrowse.new_session(enableStaticResourceService=True, css={"server": False},
                                   page="https://site.example/", charset="Shift_JIS")
    joined = requests.post(f"{cobrowse.api}/sessions/join", json={"code": session["code"]}, timeout=10)
    assert joined.status_code == 200 and joined.json()["session"] == session["session"]
    view = joined.json()["view_token"]
    cobrowse.upload(session, f"{SITE}/a.png", PNG, "image/png")

    status = requests.get(f"{cobrowse.api}/sessions/current", params={"token": view}, timeout=10).json()
    assert status["settings"] == {"enableStaticResourceService": True, "css": {"server": False}}
    assert status["page"] == "https://site.example/" and status["charset"] == "shift_jis"
    assert status["resources"] == [{"url": f"{SITE}/a.png", "sha256": hashlib.sha256(PNG).hexdigest(),
                                    "size": len(PNG), "type": "image/png", "tier": "L1"}]

    assert requests.delete(f"{cobrowse.api}/sessions/current", timeout=10,
                           headers={"X-Cobrowse-Token": session["view_token"]}).status_code == 403
    ended = requests.delete(f"{cobrowse.api}/sessions/current", timeout=10,
                            headers={"X-Cobrowse-Token": session["upload_token"]})
    assert ended.status_code == 204
    assert cobrowse.fetch(view, f"{SITE}/a.png").status_code == 403
    assert cobrowse.upload(session, f"{SITE}/b.png", PNG, "image/png").status_code == 403
    again = requests.post(f"{cobrowse.api}/sessions/join", json={"code": session["code"]}, timeout=10)
    assert again.status_code == 404


def test_wrong_join_codes_are_rate_limited(cobrowse):
    cobrowse.new_session()
    statuses = [requests.post(f"{cobrowse.api}/sessions/join", json={"code": f"{n:09d}"}, timeout=10).status_code
                for n in range(12)]
    assert statuses[:10] == [404] * 10  # a random code of 10^9 is (almost surely) wrong
    assert statuses[10:] == [429, 429]
    assert requests.post(f"{cobrowse.api}/sessions/join", json={"code": "12"}, timeout=10).status_code in (400, 429)


def test_errors_are_json_and_other_paths_pass_through(cobrowse):
    for method, path, status in [("GET", "/_cobrowse/nope", 404), ("PUT", "/_cobrowse/resources", 405),
                                 ("GET", "/_cobrowse/sessions", 405), ("POST", "/_cobrowse/sessions/join", 400)]:
        answer = requests.request(method, cobrowse.base + path, data=b"{", timeout=10)
        assert answer.status_code == status, path
        assert set(answer.json()) == {"error", "message"}
        assert "Traceback" not in answer.text
    passed = requests.post(f"{cobrowse.base}/_cobrowsefoo/x?y=1", data=b"body", timeout=10)
    assert passed.status_code == 200 and passed.text == "app saw POST /_cobrowsefoo/x"
    root = requests.get(f"{cobrowse.base}/", timeout=10)
    assert root.text == "app saw GET /"


def test_bad_resource_urls_are_400(cobrowse):
    session = cobrowse.new_session()
    for url in ["", "/relative.png", "javascript:alert(1)", "ftp://x.example/a"]:
        answer = cobrowse.fetch(session["view_token"], url)
        assert answer.status_code == 400 and answer.json()["error"] == "bad_url"


def test_health_and_metrics(cobrowse):
    session = cobrowse.new_session()
    cobrowse.upload(session, f"{SITE}/a.png", PNG, "image/png")
    cobrowse.fetch(session["view_token"], f"{SITE}/a.png")
    cobrowse.fetch(session["view_token"], f"{SITE}/missing.png")
    cobrowse.upload(session, f"{SITE}/x.html", b"<p>", "text/html")
    health = requests.get(f"{cobrowse.api}/health", timeout=10).json()
    assert health["status"] == "ok" and health["tiers"]["L2"]["status"] == "ok"
    assert health["tiers"]["L1"]["bytes"] > len(PNG)
    metrics = requests.get(f"{cobrowse.api}/metrics", timeout=10)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.text
    assert 'cobrowse_cache_hits_total{tier="L1"} 1.0' in text
    assert 'cobrowse_fallbacks_total{kind="direct"} 1.0' in text
    assert 'cobrowse_rejections_total{reason="unsupported_type"} 1.0' in text
    assert f"cobrowse_stored_bytes_total {float(len(PNG))}" in text
    assert 'cobrowse_requests_total{endpoint="resources"}' in text


def test_compressible_types_get_a_gzip_variant_with_its_own_etag(cobrowse):
    session = cobrowse.new_session()
    svg = b'<svg xmlns="http://www.w3.org/2000/svg">' + b'<rect width="1" height="1"/>' * 100 + b"</svg>"
    cobrowse.upload(session, f"{SITE}/icon.svg", svg, "image/svg+xml")
    url = cobrowse.fetch(session["view_token"], f"{SITE}/icon.svg").url
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    packed = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    raw = packed.raw.read(decode_content=False)
    assert plain.content == svg and "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip" and len(raw) < len(svg) // 2
    assert gzip.decompress(raw) == svg
    assert plain.headers["Vary"] == packed.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["ETag"] != packed.headers["ETag"]
    refused = requests.get(url, headers={"Accept-Encoding": "gzip;q=0"}, timeout=10)
    assert "Content-Encoding" not in refused.headers
    revalidated = requests.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]},
                               timeout=10)
    assert revalidated.status_code == 304


def test_remembered_answers_never_outlive_a_change(cobrowse):
    """The level-1 fast path: a re-upload, an end and the counters all take effect at once."""
    session = cobrowse.new_session()
    url = f"{SITE}/changing.png"
    cobrowse.upload(session, url, png(seed=1), "image/png")
    for _ in range(3):  # the second and third are answered by the fast path
        assert cobrowse.fetch(session["view_token"], url).content == png(seed=1)
    cobrowse.upload(session, url, png(seed=2), "image/png")
    assert cobrowse.fetch(session["view_token"], url).content == png(seed=2)
    head = requests.head(cobrowse.fetch(session["view_token"], url).url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    metrics = requests.get(f"{cobrowse.api}/metrics", timeout=10).text
    assert 'cobrowse_cache_hits_total{tier="L1"} 6.0' in metrics
    requests.delete(f"{cobrowse.api}/sessions/current", headers={"X-Cobrowse-Token": session["upload_token"]},
                    timeout=10)
    assert cobrowse.fetch(session["view_token"], url).status_code == 403
