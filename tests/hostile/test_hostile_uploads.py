"""Hostile uploads through a real server over a real Redis (SPEC 4, 6): broken multipart, bad URLs,
documents dressed as images or stylesheets, SVG with script, a quota that runs out mid-batch, and
two sessions racing for one URL. Each gets the spec's answer and leaves the store consistent:
what was acknowledged is stored whole and reads back identical, nothing else is stored.
"""

from __future__ import annotations

import hashlib

import pytest
import requests

from middleware.uploads import MAX_PART_HEADER_BYTES, MAX_PARTS
from middleware.urls import MAX_URL_LENGTH
from tests.hostile.conftest import (
    PNG,
    SITE,
    assert_consistent,
    assert_error,
    multipart,
    part,
    post_batch,
    status_of,
)
from tests.integration.conftest import SESSION_MAX_BYTES
from tests.support.resources import WOFF2, png

HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
                   b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>")


# --- malformed and truncated multipart ----------------------------------------------------------


def test_missing_final_boundary_keeps_only_the_whole_parts(cb):
    """Cut off mid-part: 400; the part that arrived whole before the cut stays stored, whole;
    the cut one is not stored at all."""
    session = cb.new_session()
    body = multipart([(part(f"{SITE}/whole.png"), PNG)]) [:-len(b"--hostile-boundary--\r\n")]
    body += b"--hostile-boundary\r\n" + part(f"{SITE}/cut.png") + b"\r\n\r\n" + PNG[:20]
    assert_error(post_batch(cb, session, body), 400, "bad_request")
    assert_consistent(cb, session, {f"{SITE}/whole.png": PNG})


@pytest.mark.parametrize("body", [
    b"garbage, no boundary anywhere",
    b"",
    b"--other-boundary\r\n" + part(f"{SITE}/a.png") + b"\r\n\r\nxx\r\n--other-boundary--\r\n",
    b"--hostile-boundary\r\n" + part(f"{SITE}/a.png"),  # headers never end
    b"--hostile-boundary\r\n\r\n\r\nbody\r\n--hostile-boundary--\r\n",  # no headers at all
    b"--hostile-boundary\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n--hostile-boundary--\r\n",
    b"--hostile-boundary\r\nContent-Disposition: form-data; name=\"\xff\xfe\"\r\n\r\nx\r\n--hostile-boundary--",
], ids=["garbage", "empty", "other boundary", "unterminated headers", "no headers",
        "no Content-Disposition", "non-UTF-8 header"])
def test_malformed_multipart_is_400_and_stores_nothing(cb, body):
    session = cb.new_session()
    assert_error(post_batch(cb, session, body), 400, "bad_request")
    assert_consistent(cb, session, {})


def test_a_part_without_a_name_is_refused_as_bad_url(cb):
    """``Content-Disposition: form-data`` with no name: that part is refused, the rest stored."""
    session = cb.new_session()
    body = multipart([(b"Content-Disposition: form-data\r\nContent-Type: image/png", PNG),
                      (part(f"{SITE}/named.png"), PNG)])
    answer = post_batch(cb, session, body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["rejected"] == [{"url": "", "error": "bad_url"}]
    assert_consistent(cb, session, {f"{SITE}/named.png": PNG})


def test_the_boundary_inside_headers_and_bodies_does_not_split_parts(cb):
    """The boundary string in a header value, and in a body where it is not at a line start,
    is just data: the parts arrive whole."""
    session = cb.new_session()
    tricky = PNG + b"--hostile-boundary" + b"\x00--hostile-boundary--"
    head = (f'Content-Disposition: form-data; name="{SITE}/tricky.png"\r\n'
            'Content-Type: image/png; note="--hostile-boundary"').encode()
    answer = post_batch(cb, session, multipart([(head, tricky)]))
    assert answer.status_code == 201, answer.text
    assert_consistent(cb, session, {f"{SITE}/tricky.png": tricky})


def test_nested_multipart_is_an_unsupported_type(cb):
    session = cb.new_session()
    inner = multipart([(part(f"{SITE}/inner.png"), PNG)], boundary=b"inner")
    body = multipart([(part(f"{SITE}/outer", "multipart/mixed; boundary=inner"), inner),
                      (part(f"{SITE}/ok.png"), PNG)])
    answer = post_batch(cb, session, body)
    assert answer.status_code == 201
    assert answer.json()["rejected"] == [{"url": f"{SITE}/outer", "error": "unsupported_type"}]
    assert_consistent(cb, session, {f"{SITE}/ok.png": PNG})


def test_a_part_header_block_over_the_limit_is_400(cb):
    """Part headers are held in memory until they end: 16 KiB of them at most (the limit is
    checked per read chunk, so anything up to the limit passes and far beyond it never does)."""
    session = cb.new_session()
    fits = part(f"{SITE}/fits.png") + b"\r\nX-Pad: " + b"p" * (MAX_PART_HEADER_BYTES - 512)
    assert post_batch(cb, session, multipart([(fits, PNG)])).status_code == 201
    huge = part(f"{SITE}/huge.png") + b"\r\nX-Pad: " + b"p" * (2 * 1024 * 1024)
    assert_error(post_batch(cb, session, multipart([(huge, PNG)])), 400, "bad_request")
    assert_consistent(cb, session, {f"{SITE}/fits.png": PNG})


def test_more_parts_than_allowed_is_413_after_the_allowed_ones(cb):
    session = cb.new_session()
    tiny = b"\x89PNG\r\n\x1a\n"
    parts = [(part(f"{SITE}/p/{i}.png"), tiny) for i in range(MAX_PARTS + 5)]
    assert_error(post_batch(cb, session, multipart(parts)), 413, "too_large")
    listed = status_of(cb, session)["resources"]
    assert len(listed) == MAX_PARTS  # the first thousand, each whole
    assert {r["sha256"] for r in listed} == {hashlib.sha256(tiny).hexdigest()}


def test_a_huge_boundary_and_odd_boundaries_never_fail_the_server(cb):
    session = cb.new_session()
    for boundary in ["x" * 5000, "a.b+c(d)*e?[f]", "---", " spaced "]:
        body = multipart([(part(f"{SITE}/b.png"), PNG)], boundary=boundary.strip().encode())
        answer = post_batch(cb, session, body, boundary=f'"{boundary.strip()}"')
        assert answer.status_code in (201, 400), (boundary[:20], answer.text)
    answer = requests.post(f"{cb.api}/resources", data=b"x", timeout=10, headers={
        "X-Cobrowse-Token": session["upload_token"], "Content-Type": "multipart/form-data"})
    assert_error(answer, 400, "bad_request")


# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:image/png;base64,AAAA", "file:///etc/passwd", "ftp://site.example/a.png",
    "blob:https://site.example/1234", "/relative.png", "//site.example/a.png", "https://",
    "http://", "about:blank", "ws://site.example/a.png", "https://site.example/a\x00.png",
    "https://site.example/" + "a" * MAX_URL_LENGTH,
], ids=lambda u: u[:30])
def test_non_http_or_absurd_urls_are_refused(cb, url):
    session = cb.new_session()
    answer = requests.post(f"{cb.api}/resources", data=PNG, timeout=10, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url.encode("utf-8"),
        "Content-Type": "image/png"})
    assert_error(answer, 400, "bad_url")
    batch = post_batch(cb, session, multipart([(part(url), PNG)]))
    assert batch.status_code == 422 and batch.json()["rejected"] == [
        {"url": url[:2048], "error": "bad_url"}]
    check = requests.post(f"{cb.api}/resources/check", timeout=10, json={
        "resources": [{"url": url, "sha256": "0" * 64}]},
        headers={"X-Cobrowse-Token": session["upload_token"]})
    assert_error(check, 400, "bad_url")
    got = requests.get(f"{cb.api}/resources", params={"url": url, "token": session["view_token"]},
                       timeout=10, allow_redirects=False)
    assert_error(got, 400, "bad_url")
    assert_consistent(cb, session, {})


def test_the_longest_url_allowed_works(cb):
    session = cb.new_session()
    url = f"{SITE}/" + "a" * (MAX_URL_LENGTH - len(SITE) - 1)
    assert len(url) == MAX_URL_LENGTH
    assert cb.upload(session, url, PNG, "image/png").status_code == 201
    assert_consistent(cb, session, {url: PNG})


@pytest.mark.parametrize("raw", ["https://site.example/a\r\nSet-Cookie: x=1", "https://site.example/a\nb.png",
                                 "https://site.example/a\rb.png", "https://site.example/\tb.png"])
def test_control_characters_in_urls_are_refused_everywhere(cb, raw):
    """CR, LF and tab in a URL: a query parameter, a check entry, a part name. Never stored, never
    echoed into a header (a 302's Location)."""
    session = cb.new_session()
    got = requests.get(f"{cb.api}/resources", params={"url": raw, "token": session["view_token"]},
                       timeout=10, allow_redirects=False)
    assert_error(got, 400, "bad_url")
    assert "Set-Cookie" not in got.headers and "Location" not in got.headers
    check = requests.post(f"{cb.api}/resources/check", timeout=10, json={
        "resources": [{"url": raw, "sha256": "0" * 64}]},
        headers={"X-Cobrowse-Token": session["upload_token"]})
    assert_error(check, 400, "bad_url")
    # In a part name the line break ends the header line: whatever is left is not a clean URL
    # of ours, or is refused outright. Either way nothing under the CR/LF name is stored.
    head = f'Content-Disposition: form-data; name="{raw}"\r\nContent-Type: image/png'.encode()
    answer = post_batch(cb, session, multipart([(head, PNG)]))
    assert answer.status_code in (400, 422), answer.text
    for entry in status_of(cb, session)["resources"]:
        assert not any(c in entry["url"] for c in "\r\n\t")
    assert_consistent(cb, session, {})


def test_percent_encoded_crlf_stays_encoded_and_harmless(cb):
    session = cb.new_session()
    url = "https://site.example/a%0D%0ASet-Cookie:%20x=1.png"
    assert cb.upload(session, url, PNG, "image/png").status_code == 201
    other = cb.new_session()
    got = cb.fetch(other["view_token"], url)  # not this session's: a direct load
    assert got.status_code == 302 and got.headers["Location"] == url
    assert "Set-Cookie" not in got.headers
    assert_consistent(cb, session, {url: PNG})


# --- documents dressed as resources --------------------------------------------------------------


DISGUISES = [
    ("image/png", HTML_PAGE), ("image/png", b"<script>alert(1)</script>"),
    ("image/jpeg", b"  \n<HTML><body>x</body></HTML>"), ("image/gif", b"<iframe src=//evil>"),
    ("image/webp", b"<svg xmlns='http://www.w3.org/2000/svg'/>"), ("image/x-icon", b"<!-- -->x"),
    ("text/css", HTML_PAGE), ("text/css", b"\xef\xbb\xbf<html>"), ("text/css", b"<!-- a --> <body>"),
    ("text/css", b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'/>"),
    ("text/css", b"<meta http-equiv=refresh content='0;url=//evil'>"),
    ("text/css", "<script>1</script>".encode("utf-16")),
    ("image/svg+xml", HTML_PAGE), ("image/svg+xml", b"<html><svg/></html>"),
    ("image/svg+xml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><svg/></html>'),
    ("image/svg+xml", b"not xml at all"),
    ("font/woff2", HTML_PAGE), ("font/ttf", b"%PDF-1.7\n"), ("application/font-woff", b"<b>bold</b>"),
]


@pytest.mark.parametrize("content_type, body", DISGUISES, ids=[f"{t}:{b[:12]!r}" for t, b in DISGUISES])
def test_a_document_dressed_as_a_resource_is_415(cb, content_type, body):
    """The sniffer refuses what a browser would render as a document (raw: 415; batch: the part is
    ``unsupported_type``); nothing is stored and no quota is spent."""
    session = cb.new_session()
    answer = cb.upload(session, f"{SITE}/disguised", body, content_type)
    assert_error(answer, 415, "unsupported_type")
    batch = post_batch(cb, session, multipart([(part(f"{SITE}/disguised", content_type), body),
                                               (part(f"{SITE}/real.png"), PNG)]))
    assert batch.status_code == 201
    assert batch.json()["rejected"] == [{"url": f"{SITE}/disguised", "error": "unsupported_type"}]
    assert_consistent(cb, session, {f"{SITE}/real.png": PNG})
    # Only the real PNG counted against the quota.
    assert cb.middleware.sessions.live(session["session"]).bytes_used == len(PNG)


GENUINE = [
    ("image/png", png(seed=1)), ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ("image/gif", b"GIF89a\x01\x00\x01\x00"), ("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 x"),
    ("image/avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00"), ("image/bmp", b"BM\x00\x00"),
    ("image/x-icon", b"\x00\x00\x01\x00\x01\x00"), ("image/vnd.microsoft.icon", png(seed=2)),
    ("image/jpeg", png(seed=4)),  # mislabelled, as sites do: browsers decode it, so do we
    ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    ("image/svg+xml", (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- made by hand -->\n<!DOCTYPE svg PUBLIC '
                       b'"-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" '
                       b'[<!ENTITY e "x">]>\n<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>')),
    ("font/woff2", WOFF2), ("font/woff", b"wOFF\x00\x01"), ("font/otf", b"OTTO\x00"),
    ("font/ttf", b"\x00\x01\x00\x00\x00\x0f"), ("application/vnd.ms-fontobject", b"\x00" * 34 + b"LP\x00"),
    ("text/css", b""), ("text/css", b"<!-- body { color: red } -->"), ("text/css", b"a{b:c}"),
    ("text/css", b"/* <html> in a comment */ a{}"), ("text/css; charset=shift_jis", "a{content:'日本'}".encode("cp932")),
]


@pytest.mark.parametrize("content_type, body", GENUINE, ids=[f"{t}:{b[:10]!r}" for t, b in GENUINE])
def test_genuine_resources_pass_the_sniffer(cb, content_type, body):
    session = cb.new_session()
    answer = cb.upload(session, f"{SITE}/genuine", body, content_type)
    assert answer.status_code == 201, answer.text
    assert_consistent(cb, session, {f"{SITE}/genuine": body})


def test_svg_with_script_is_stored_but_can_never_run_where_served(cb):
    session = cb.new_session()
    url = f"{SITE}/evil.svg"
    assert cb.upload(session, url, SVG_WITH_SCRIPT, "image/svg+xml").status_code == 201
    got = cb.fetch(session["view_token"], url)
    assert got.status_code == 200 and got.content == SVG_WITH_SCRIPT
    assert got.headers["Content-Type"] == "image/svg+xml"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    csp = [d.strip() for d in got.headers["Content-Security-Policy"].split(";")]
    assert "sandbox" in csp and "default-src 'none'" in csp
    assert not any(d.startswith("script-src") for d in csp)
    revalidated = requests.get(got.url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
    assert revalidated.status_code == 304
    assert "sandbox" in revalidated.headers["Content-Security-Policy"]


# --- the quota, and two sessions on one URL -----------------------------------------------------


def test_quota_reached_mid_batch_refuses_the_rest_and_keeps_what_fit_whole(cb):
    session = cb.new_session()
    size = 60 * 1024
    bodies = {f"{SITE}/q/{i}.png": b"\x89PNG\r\n\x1a\n" + bytes([i]) * (size - 8) for i in range(12)}
    answer = post_batch(cb, session, multipart([(part(u), b) for u, b in bodies.items()]))
    assert answer.status_code == 201, answer.text
    fit = SESSION_MAX_BYTES // size
    stored = [s["url"] for s in answer.json()["stored"]]
    assert stored == list(bodies)[:fit]
    assert answer.json()["rejected"] == [{"url": u, "error": "quota_exceeded"} for u in list(bodies)[fit:]]
    assert_consistent(cb, session, {u: bodies[u] for u in stored})
    # The quota is spent: the next raw upload is refused the same way, and nothing changes.
    assert_error(cb.upload(session, f"{SITE}/one-more.png", bodies[stored[0]], "image/png"),
                 413, "quota_exceeded")
    assert_consistent(cb, session, {u: bodies[u] for u in stored})


def test_the_same_url_with_different_bytes_in_two_sessions(cb):
    a, b = cb.new_session(), cb.new_session()
    url = f"{SITE}/shared-name.png"
    body_a, body_b = png(seed=50), png(seed=60)
    assert cb.upload(a, url, body_a, "image/png").status_code == 201
    assert post_batch(cb, b, multipart([(part(url), body_b)])).status_code == 201
    assert_consistent(cb, a, {url: body_a})
    assert_consistent(cb, b, {url: body_b})
    # b cannot claim a's bytes by hash: check says b must upload them itself.
    check = requests.post(f"{cb.api}/resources/check", timeout=10, headers={"X-Cobrowse-Token": b["upload_token"]},
                          json={"resources": [{"url": f"{SITE}/other.png",
                                               "sha256": hashlib.sha256(body_a).hexdigest()}]})
    assert check.json() == {"missing": [f"{SITE}/other.png"]}
    assert cb.fetch(b["view_token"], f"{SITE}/other.png").status_code == 302
