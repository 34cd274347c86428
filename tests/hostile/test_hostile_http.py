"""Hostile HTTP framing, sent byte for byte on raw sockets to a real server: a Content-Length that
lies either way or is missing or nonsense, chunked bodies that lie, header values that are absurdly
long or folded over lines. The server must answer (the spec's JSON) or let go within a bound, never
hang or fail, and store only what it acknowledged, whole.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import pytest
import requests

from tests.hostile.conftest import (
    PNG,
    SITE,
    RawAnswer,
    assert_consistent,
    error_json,
    multipart,
    part,
    raw_request,
    status_of,
)

#: A hostile request must be answered within this (nothing in it should take more than a moment).
BOUND = 2.0


def head(cb, path: str, headers: dict[str, str | bytes], method: bytes = b"POST") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: " + cb.base.removeprefix("http://").encode()]
    for name, value in headers.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def upload_head(cb, session: dict, url: str, length: str | None, content_type: str = "image/png",
                **extra: str | bytes) -> bytes:
    headers: dict[str, str | bytes] = {"X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url,
                                       "Content-Type": content_type, "Connection": "close", **extra}
    if length is not None:
        headers["Content-Length"] = length
    return head(cb, "/_cobrowse/resources", headers)


def assert_answered(answer: RawAnswer, *statuses: int) -> dict:
    assert answer.status in statuses, (answer.status, answer.body[:200])
    assert answer.elapsed < BOUND, f"answered after {answer.elapsed:.2f}s"
    assert b"Traceback" not in answer.body
    return error_json(answer) if answer.status >= 400 else {}


def test_content_length_shorter_than_the_body_stores_exactly_what_it_declared(cb):
    """The server reads Content-Length bytes and no more: the stored object is those bytes, with
    their hash (the rest of the stream is not part of this request)."""
    session = cb.new_session()
    url = f"{SITE}/short-declared.png"
    answer = raw_request(cb.base, upload_head(cb, session, url, "24"), PNG)
    assert_answered(answer, 201)
    stored = __import__("json").loads(answer.body)["stored"][0]
    assert stored["size"] == 24 and stored["sha256"] == hashlib.sha256(PNG[:24]).hexdigest()
    assert_consistent(cb, session, {url: PNG[:24]})


@pytest.mark.parametrize("kind", ["raw", "batch", "check", "sessions", "snapshot"])
def test_content_length_longer_than_the_body_then_eof_is_400(cb, kind):
    """The client promises 10 000 bytes, sends the start of its body and ends its side: 400,
    within the bound, nothing stored."""
    session = cb.new_session()
    token = session["upload_token"]
    path, content_type, body = {
        "raw": ("/_cobrowse/resources", "image/png", PNG),
        "batch": ("/_cobrowse/resources", "multipart/form-data; boundary=hostile-boundary",
                  multipart([(part(f"{SITE}/cut.png"), PNG)])[:150]),
        "check": ("/_cobrowse/resources/check", "application/json", b'{"resources": [{"url": "https://si'),
        "sessions": ("/_cobrowse/sessions", "application/json", b'{"css": {"server": tr'),
        "snapshot": ("/_cobrowse/snapshot", "application/json", b'{"url": "https://site.example/", "html": "<p'),
    }[kind]
    raw_head = head(cb, path, {"X-Cobrowse-Token": token, "X-Cobrowse-Url": f"{SITE}/cut.png",
                               "Content-Type": content_type, "Content-Length": "10000",
                               "Connection": "close"})
    answer = raw_request(cb.base, raw_head, body, half_close=True)
    payload = assert_answered(answer, 400)
    assert payload["error"] == "bad_request"
    assert_consistent(cb, session, {})


def test_content_length_longer_than_the_body_with_the_connection_held_open(cb):
    """A client that promises more than it sends and then just waits (slowloris) holds one
    server thread until it gives up or the WSGI server's timeout cuts it, but it does not hold
    the server: other customers and agents are answered meanwhile. When it gives up, nothing of
    its body is stored."""
    session = cb.new_session()
    url = f"{SITE}/held.png"
    sock = socket.create_connection(tuple(cb.base.removeprefix("http://").split(":")), timeout=10)  # type: ignore[arg-type]
    try:
        sock.sendall(upload_head(cb, session, url, "100000") + PNG)
        time.sleep(0.2)
        for i in range(5):
            started = time.monotonic()
            other = cb.upload(session, f"{SITE}/meanwhile-{i}.png", PNG, "image/png")
            assert other.status_code == 201 and time.monotonic() - started < 1.0
            assert cb.fetch(session["view_token"], f"{SITE}/meanwhile-{i}.png").status_code == 200
    finally:
        sock.close()
    time.sleep(0.3)
    assert_consistent(cb, session, {f"{SITE}/meanwhile-{i}.png": PNG for i in range(5)})


def test_no_content_length_and_no_chunking_means_an_empty_body(cb):
    """Without Content-Length or chunked framing a request has no body (RFC 9112): an empty
    image is refused (415), an empty JSON body is 400, nothing is stored, nobody waits."""
    session = cb.new_session()
    answer = raw_request(cb.base, upload_head(cb, session, f"{SITE}/nolength.png", None), PNG)
    assert_answered(answer, 415)
    check = head(cb, "/_cobrowse/resources/check", {"X-Cobrowse-Token": session["upload_token"],
                                                    "Content-Type": "application/json", "Connection": "close"})
    assert_answered(raw_request(cb.base, check, b'{"resources": []}'), 400)
    assert_consistent(cb, session, {})


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "0x10", "99999999999999999999999", "", "12, 12"])
def test_nonsense_content_length_is_answered_not_crashed(cb, length):
    session = cb.new_session()
    url = f"{SITE}/nonsense.png"
    answer = raw_request(cb.base, upload_head(cb, session, url, length), PNG, half_close=True)
    assert_answered(answer, 400, 413, 415)
    assert_consistent(cb, session, {})


@pytest.mark.parametrize("chunks", [
    b"ffff\r\n" + PNG,  # promises 64 KiB, sends 81 bytes, then EOF
    b"zz\r\n" + PNG + b"\r\n0\r\n\r\n",  # not a chunk size
    b"10\r\n" + PNG[:16] + b"XX5\r\n",  # no CRLF after the chunk
    b"-5\r\nabc\r\n0\r\n\r\n",
], ids=["short chunk", "bad size", "bad framing", "negative size"])
def test_lying_chunked_bodies_are_answered_not_crashed(cb, chunks):
    session = cb.new_session()
    raw_head = upload_head(cb, session, f"{SITE}/chunked.png", None, **{"Transfer-Encoding": "chunked"})
    answer = raw_request(cb.base, raw_head, chunks, half_close=True)
    assert_answered(answer, 400, 413, 415)
    assert_consistent(cb, session, {})


def test_a_good_chunked_upload_still_works(cb):
    session = cb.new_session()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (PNG[:30], PNG[30:])) + b"0\r\n\r\n"
    raw_head = upload_head(cb, session, f"{SITE}/chunked-ok.png", None, **{"Transfer-Encoding": "chunked"})
    assert_answered(raw_request(cb.base, raw_head, chunks), 201)
    assert_consistent(cb, session, {f"{SITE}/chunked-ok.png": PNG})


def test_absurdly_long_header_values_are_refused_quickly(cb):
    """60 KB header values (just under what the WSGI server itself accepts per line): each is
    refused by its own limit, and quickly."""
    session = cb.new_session()
    huge_url = f"{SITE}/" + "u" * 60_000
    assert error_json(assert_ok := raw_request(cb.base, upload_head(cb, session, huge_url, str(len(PNG))), PNG))["error"] == "bad_url"
    assert assert_ok.status == 400 and assert_ok.elapsed < BOUND
    long_type = "image/png; " + "a=b; " * 12_000
    answer = raw_request(cb.base, upload_head(cb, session, f"{SITE}/t.png", str(len(PNG)), long_type), PNG)
    assert answer.status == 400 and answer.elapsed < BOUND  # a malformed header, not a type question
    assert error_json(answer)["error"] == "bad_request"
    forged = dict(session, upload_token="A" * 60_000)
    answer = raw_request(cb.base, upload_head(cb, forged, f"{SITE}/t.png", str(len(PNG))), PNG)
    assert answer.status == 403 and error_json(answer)["error"] == "forbidden"
    got = requests.get(f"{cb.api}/resources", timeout=10,
                       params={"url": f"{SITE}/" + "q" * 30_000, "token": session["view_token"]})
    assert got.status_code == 400 and got.json()["error"] == "bad_url"
    assert_consistent(cb, session, {})


@pytest.mark.parametrize("value", [
    b"https://site.example/a\r\n b.png",  # obs-fold: a continuation line
    b"https://site.example/a\r\n\tb.png",
    b"https://site.example/a\nX-Injected: 1",  # a bare LF
    b"https://site.example/a\rb.png",  # a bare CR
])
def test_line_breaks_inside_the_url_header_never_reach_the_store(cb, value):
    session = cb.new_session()
    answer = raw_request(cb.base, upload_head(cb, session, value, str(len(PNG))), PNG)  # type: ignore[arg-type]
    assert answer.elapsed < BOUND and answer.status < 500
    for entry in status_of(cb, session)["resources"]:
        assert not any(c in entry["url"] for c in "\r\n\t"), entry
        assert entry["url"] == "https://site.example/a" or "X-Injected" not in entry["url"]


def test_many_hostile_connections_at_once_leave_the_server_answering(cb):
    """Twenty connections that each promise a body and send half of it, all at once: the server
    keeps answering others, and each of them gets its 400 when it gives up."""
    session = cb.new_session()
    answers: list[RawAnswer] = []

    def liar(n: int) -> None:
        answers.append(raw_request(cb.base, upload_head(cb, session, f"{SITE}/liar{n}.png", "5000"),
                                   PNG, half_close=True))

    threads = [threading.Thread(target=liar, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    assert cb.upload(session, f"{SITE}/honest.png", PNG, "image/png").status_code == 201
    assert time.monotonic() - started < 1.0
    for thread in threads:
        thread.join(10)
    assert len(answers) == 20 and all(a.status == 400 for a in answers), [a.status for a in answers]
    assert_consistent(cb, session, {f"{SITE}/honest.png": PNG})


HOSTILE_JSON = [
    b"[" * 100_000,  # nesting deep enough to exhaust the parser's recursion
    b'{"resources": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"a": 1e999999, "b": NaN, "c": -Infinity}',
    b'{"resources": [], "resources": 7}',  # a duplicate key: the last one wins
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b'{"code": "\xff\xfe"}',  # invalid UTF-8
    b'"just a string"', b"null", b"[]", b"0",
    b'{"resources": [{"url": "https://site.example/a", "sha256": "' + b"a" * 10_000 + b'"}]}',
    b" " * (1024 * 1024) + b"{}",  # over the 1 MiB JSON limit, though mostly blank
]


@pytest.mark.parametrize("path", ["/_cobrowse/resources/check", "/_cobrowse/sessions",
                                  "/_cobrowse/sessions/join", "/_cobrowse/snapshot"])
def test_hostile_json_bodies_are_answered_with_the_spec_shape(cb, path):
    session = cb.new_session()
    for body in HOSTILE_JSON:
        started = time.monotonic()
        got = requests.post(f"{cb.base}{path}", data=body, timeout=10, headers={
            "X-Cobrowse-Token": session["upload_token"], "Content-Type": "application/json"})
        assert time.monotonic() - started < BOUND
        assert got.status_code in (200, 201, 400, 404, 413), (path, body[:30], got.status_code, got.text[:200])
        if got.status_code >= 400:
            payload = got.json()
            assert set(payload) == {"error", "message"} and "Traceback" not in got.text
    assert_consistent(cb, session, {})
