"""A fuzz pass (Hypothesis) over every parameter a client controls: upload URLs, content types and
bodies, multipart framings, the query string of GET /resources, JSON bodies of check, join,
sessions and snapshot. Whatever comes in:

- never a 5xx, never "Traceback" in a body;
- every error is the spec's JSON shape ``{"error": str, "message": str}``;
- never a stored object whose hash does not match its bytes: every acknowledged upload, and in the
  end every resource any session lists, is read back from level 1 and from level 2 and hashed.

The middleware runs in-process (werkzeug's test client) over the embedded level-2 store, for speed.
Derandomized (a fixed sequence of examples, the same on every run) with no deadline, so CI cannot
flake on it; the whole file runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client, TestResponse

from middleware import ResourceSyncMiddleware, Settings
from middleware.uploads import ALLOWED_TYPES
from tests.support.servers import plain_app

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_SIZE = 16 * 1024
KNOWN_PATHS = {"/resources", "/resources/check", "/sessions", "/sessions/join", "/sessions/current",
               "/snapshot", "/health", "/metrics", "/agent", "/cobrowse.js", "/static/agent.js"}
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
              b"BM", b"\x00\x00\x01\x00", b"wOF2", b"wOFF", b"OTTO", b"\x00\x01\x00\x00",
              b"<svg xmlns='http://www.w3.org/2000/svg'>", b"<?xml version='1.0'?><svg>", b"a{b:c}",
              b"<!DOCTYPE html><html>", b"<script>", b"\xef\xbb\xbf<html>", b""]


class Fuzzed:
    """The middleware under fuzz, its sessions, and what it acknowledged storing."""

    def __init__(self, middleware: ResourceSyncMiddleware, client: Client, sessions: list[dict]) -> None:
        self.middleware = middleware
        self.client = client
        self.sessions = sessions
        self.stored: list[tuple[int, str]] = []  # (session index, url) acknowledged
        self.requests = 0

    def __repr__(self) -> str:  # Hypothesis prints the fixture in failure reports: keep it short
        return f"<Fuzzed: {self.requests} requests, {len(self.stored)} stored>"

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        """One request; ``headers`` go straight into the environ, as a server would put them
        (the test client refuses values with CR/LF, which real servers can deliver: obs-fold)."""
        self.requests += 1
        environ = {}
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        response = self.client.open(f"/_cobrowse{path}", method=method, environ_overrides=environ, **kwargs)
        check_answer(response, method)
        known = path if path in KNOWN_PATHS else "/<other>"
        event(f"{method} {known} -> {response.status_code}")  # see --hypothesis-show-statistics
        return response


@pytest.fixture(scope="module")
def fz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    settings_ = Settings(secret_key="fuzz-secret-0123456789abcdef0123456789",
                         embedded_path=str(tmp_path_factory.mktemp("fuzz-l2")),
                         max_size=MAX_SIZE, session_max_bytes=4 * 1024 * 1024,
                         allowed_external_domains=["allowed.invalid"])  # rule 3 wired, never reachable
    middleware = ResourceSyncMiddleware(plain_app, settings_)
    client = Client(middleware)
    sessions = [client.post("/_cobrowse/sessions", json={}).json for _ in range(3)]
    fuzzed = Fuzzed(middleware, client, sessions)
    yield fuzzed
    assert_every_stored_object_matches_its_hash(fuzzed)
    print(f"\nfuzz: {fuzzed.requests} requests")


def check_answer(response: TestResponse, method: str) -> None:
    """The invariants every answer keeps, whatever the request. (A batch's 422 is not an error
    object but the batch's own answer, listing every part; HEAD answers have no body.)"""
    body = response.get_data()
    assert response.status_code < 500, body[:300]
    assert b"Traceback" not in body
    if response.status_code == 422:
        assert set(json.loads(body)) == {"stored", "rejected"}
    elif response.status_code >= 400 and method != "HEAD":
        assert response.mimetype == "application/json", (response.status, body[:200])
        payload = json.loads(body)
        assert set(payload) == {"error", "message"}, payload
        assert isinstance(payload["error"], str) and isinstance(payload["message"], str)


def assert_stored_intact(fz: Fuzzed, sid: str, url: str, sha256: str | None = None) -> None:
    """Level 1 and level 2 hold bytes whose SHA-256 is the recorded one (and ``sha256``)."""
    found = fz.middleware.store.get(sid, url)
    assert found is not None, url
    entry = found[0]
    assert hashlib.sha256(entry.body).hexdigest() == entry.meta.sha256 and len(entry.body) == entry.meta.size
    if sha256 is not None:
        assert entry.meta.sha256 == sha256
    from_level2 = fz.middleware.store.level2.call("get_resource", sid, url, 3600)
    assert from_level2 is not None
    meta, body = from_level2
    assert hashlib.sha256(body).hexdigest() == meta.sha256 == entry.meta.sha256


def assert_every_stored_object_matches_its_hash(fz: Fuzzed) -> None:
    for session in fz.sessions:
        status = fz.client.get("/_cobrowse/sessions/current", query_string={"token": session["view_token"]})
        assert status.status_code == 200
        for resource in status.json["resources"]:
            assert_stored_intact(fz, session["session"], resource["url"], resource["sha256"])


def check_upload_answer(fz: Fuzzed, session: dict, response: TestResponse,
                        sent: list[tuple[str, bytes]] | None) -> None:
    """Every part the answer says was stored is stored whole; with ``sent`` (the parts as framed,
    when the framing was not damaged afterwards), with the hash of a part sent under that URL."""
    if response.status_code not in (201, 422):
        return
    answer = response.json
    assert set(answer) == {"stored", "rejected"}
    last = {entry["url"]: entry for entry in answer["stored"]}  # a later part may replace a URL
    for entry in answer["stored"]:
        assert_stored_intact(fz, session["session"], entry["url"], last[entry["url"]]["sha256"])
        candidates = {hashlib.sha256(body).hexdigest() for url, body in sent or () if url == entry["url"]}
        if candidates:  # the name was already normal: it is one of the bodies sent under it
            assert entry["sha256"] in candidates
    for entry in answer["rejected"]:
        assert entry["error"] in {"bad_url", "unsupported_type", "too_large", "quota_exceeded"}


# --- strategies -----------------------------------------------------------------------------------

texts = st.text(max_size=80)  # any code point, control characters included
#: URLs a customer's browser would send (ASCII and not), which the server must store exactly.
good_urls = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}{query}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["site.example", "Site.Example:443", "cdn.site.example:8443", "127.0.0.1", "[::1]",
                     "xn--nxasmq6b.example", "例え.example"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~%/!$&'()*+,;=:@é日 ", max_size=60),
    st.sampled_from(["", "?a=1", "?x=%20&y", "#frag", "?q=日本"]))
hostile_urls = st.one_of(
    texts,
    st.builds(lambda path: "https://site.example/" + path, texts),
    st.builds(lambda scheme, rest: f"{scheme}:{rest}",
              st.sampled_from(["ftp", "javascript", "data", "file", "blob", "h\ttp", "about"]), texts),
    st.integers(8100, 8300).map(lambda n: "https://site.example/" + "a" * n),
    st.sampled_from(["https://site.example/%0d%0a", "//site.example/a", "https://user:pw@site.example/",
                     "https://site.example/a\r\nSet-Cookie: x", "https://site.example/\x00",
                     " https://site.example/ ", "https://", "http://[::1", "https://a..b/"]),
)
urls = st.one_of(good_urls, good_urls, hostile_urls)
content_types = st.one_of(
    st.sampled_from(sorted(ALLOWED_TYPES)),
    st.sampled_from(["text/css; charset=shift_jis", "TEXT/CSS", "image/png; x=\"y\"", "text/html",
                     "multipart/form-data", "image/svg", "", "application/octet-stream",
                     "text/css; charset=" + "x" * 100, "image/png;" + " a=b;" * 200]),
    texts,
)
bodies = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda sig, rest: sig + rest, st.sampled_from(SIGNATURES), st.binary(max_size=512)),
    st.builds(lambda sig, n: sig + b"\x00" * n, st.sampled_from(SIGNATURES), st.integers(MAX_SIZE - 64, MAX_SIZE + 64)),
)
#: A content type with bytes that are what it says (so it is stored), tails of any bytes.
TYPED = [("image/png", b"\x89PNG\r\n\x1a\n"), ("image/jpeg", b"\xff\xd8\xff"), ("image/gif", b"GIF89a"),
         ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "), ("image/bmp", b"BM"), ("image/x-icon", b"\x00\x00\x01\x00"),
         ("image/avif", b"\x00\x00\x00\x1cftypavif"), ("font/woff2", b"wOF2"), ("font/ttf", b"\x00\x01\x00\x00"),
         ("application/vnd.ms-fontobject", b"\x00" * 34 + b"LP"), ("image/svg+xml", b"<svg>"),
         ("text/css", b""), ("text/css; charset=utf-8", b"a{}"), ("text/css; charset=shift_jis", b"")]
typed = st.builds(lambda pair, tail: (pair[0], pair[1] + tail), st.sampled_from(TYPED), st.binary(max_size=700))
typed_or_not = st.one_of(typed, typed, st.tuples(content_types, bodies))
session_index = st.integers(0, 2)


def latin1(text: str) -> str:
    """What a WSGI server hands the app for a header sent as UTF-8 bytes."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


# --- uploads --------------------------------------------------------------------------------------


@FUZZ
@given(which=session_index, url=urls, resource=typed_or_not)
def test_fuzz_raw_upload(fz, which, url, resource):
    content_type, body = resource
    session = fz.sessions[which]
    response = fz.call("POST", "/resources", data=body, headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": latin1(url),
        "Content-Type": latin1(content_type)})
    assert response.status_code in (201, 400, 413, 415), response.status
    if response.status_code == 201:
        (entry,) = response.json["stored"]
        assert entry["sha256"] == hashlib.sha256(body).hexdigest() and entry["size"] == len(body)
        assert_stored_intact(fz, session["session"], entry["url"], entry["sha256"])
        fz.stored.append((which, entry["url"]))


parts = st.lists(st.tuples(urls, typed_or_not, st.booleans()), min_size=0, max_size=5)
boundaries = st.text(alphabet="abcXYZ0123456789'()+_,-./:=? ", min_size=1, max_size=70).filter(
    lambda b: not b.endswith(" "))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[str, bytes, list[tuple[str, bytes]] | None]:
    """A multipart body, well formed or not: the boundary, the bytes, and the (url, body) parts
    framed in it (None when the framing was damaged afterwards, so bodies may differ)."""
    boundary = draw(boundaries)
    b = boundary.encode()
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    out = draw(st.sampled_from([b"", b"preamble" + eol]))
    sent: list[tuple[str, bytes]] | None = []
    for url, (ctype, body), as_file in draw(parts):
        name = url.replace('"', "%22")
        disposition = f'form-data; name="{name}"' + ('; filename="f"' if as_file else "")
        proper = f"Content-Disposition: {disposition}{eol.decode()}Content-Type: {ctype}"
        head = draw(st.sampled_from([
            proper, proper, proper, proper, proper, proper, proper, proper,
            f"Content-Disposition: {disposition}",
            f"Content-Type: {ctype}",  # no Content-Disposition
            f"content-disposition: {disposition}{eol.decode()}X-Other: --{boundary}",
        ])).encode("utf-8", "surrogatepass")
        out += b"--" + b + eol + head + eol + eol + body + eol
        sent.append((url, body))
    if draw(st.integers(0, 4)):
        out += b"--" + b + b"--" + eol
    if not draw(st.integers(0, 3)):  # damage it
        cut = draw(st.integers(0, max(0, len(out))))
        out = draw(st.sampled_from([out[:cut], out[:cut] + draw(st.binary(max_size=40)) + out[cut:]]))
        sent = None
    return boundary, out, sent


@FUZZ
@given(which=session_index, framed=multipart_bodies(), quote_boundary=st.booleans())
def test_fuzz_multipart_batch(fz, which, framed, quote_boundary):
    session = fz.sessions[which]
    boundary, body, sent = framed
    header_boundary = f'"{boundary}"' if quote_boundary else boundary
    response = fz.call("POST", "/resources", data=body, headers={
        "X-Cobrowse-Token": session["upload_token"],
        "Content-Type": f"multipart/form-data; boundary={header_boundary}"})
    assert response.status_code in (201, 400, 413, 422), response.status
    check_upload_answer(fz, session, response, sent)
    if response.status_code == 201:
        fz.stored.extend((which, entry["url"]) for entry in response.json["stored"])


# --- reads ----------------------------------------------------------------------------------------


query_keys = st.one_of(st.sampled_from(["token", "url", "as", "cs"]), texts)


@st.composite
def query_strings(draw: st.DrawFn, fz: Fuzzed) -> str:
    stored = list(fz.stored)
    if stored and draw(st.booleans()):  # something that is there: a 200 (or 304), for its owner
        which, url = draw(st.sampled_from(stored))
        return urlencode({"url": url, "token": fz.sessions[which]["view_token"],
                          "as": draw(st.sampled_from(["image", "style", "font", ""]))})
    token = draw(st.one_of(
        st.sampled_from([s["view_token"] for s in fz.sessions]),
        st.sampled_from([s["view_token"] for s in fz.sessions] + [s["upload_token"] for s in fz.sessions]),
        st.builds(lambda t, i, c: t[:i] + c + t[i + 1:],
                  st.sampled_from([s["view_token"] for s in fz.sessions]), st.integers(0, 90), texts),
        texts))
    params: dict[str, str] = {"token": token, "url": draw(urls)}
    if draw(st.booleans()):
        params["as"] = draw(st.one_of(st.sampled_from(["style", "font", "image", "script", ""]), texts))
    if draw(st.booleans()):
        params["cs"] = draw(st.one_of(st.sampled_from(["shift_jis", "utf-8", "x" * 300]), texts))
    params.update(draw(st.dictionaries(query_keys, texts, max_size=2)))
    raw = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})
    return draw(st.sampled_from([raw, raw.replace("%", "%%"), raw + "&" + quote(token), raw[: len(raw) // 2]]))


@FUZZ
@given(data=st.data())
def test_fuzz_get_resources_query(fz, data):
    query = data.draw(query_strings(fz))
    inm = data.draw(st.one_of(st.none(), st.sampled_from(["*", '"x"', "W/\"abc\", \"d\""]), texts))
    headers = {"If-None-Match": latin1(inm)} if inm is not None else {}
    for method in ("GET", "HEAD"):
        response = fz.call(method, "/resources", query_string=query, headers=headers)
        assert response.status_code in (200, 302, 304, 400, 403), response.status
        if response.status_code == 302:
            location = response.headers["Location"]
            assert not any(c in location for c in "\r\n") and location.startswith(("http://", "https://"))


# --- JSON endpoints -------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12)
hex64 = st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)
entries = st.one_of(
    st.fixed_dictionaries({"url": good_urls, "sha256": hex64}),
    st.fixed_dictionaries({"url": urls, "sha256": st.one_of(hex64, texts, json_values)}))
def encoded(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass"))


good_check = st.fixed_dictionaries({"resources": st.lists(
    st.fixed_dictionaries({"url": good_urls, "sha256": hex64}), max_size=5)})
#: For each endpoint: bodies of its own shape (valid or nearly), for the others' shapes see below.
SHAPED = {
    "/resources/check": st.one_of(
        good_check, good_check,
        st.fixed_dictionaries({"resources": st.lists(entries, max_size=5)}),
        st.fixed_dictionaries({"resources": st.lists(st.one_of(entries, json_values), max_size=5)})),
    "/sessions/join": st.fixed_dictionaries({"code": st.one_of(st.from_regex(r"\A[0-9]{9}\Z"), texts, json_values)}),
    "/sessions": st.fixed_dictionaries({}, optional={
        "enableStaticResourceService": st.one_of(st.booleans(), json_values),
        "css": st.one_of(st.fixed_dictionaries({"server": st.one_of(st.booleans(), json_values)}), json_values),
        "page": st.one_of(good_urls, texts, json_values), "charset": st.one_of(texts, json_values)}),
    "/snapshot": st.fixed_dictionaries({"url": st.one_of(good_urls, urls, json_values),
                                        "html": st.one_of(texts, json_values)},
                                       optional={"charset": json_values, "viewport": json_values}),
}
other_bodies = st.one_of(encoded(json_values), st.binary(max_size=200),
                         st.sampled_from([b"", b"{", b"\xff\xfe{}", b"[]" * 1000, b"1e999999", b"[" * 5000]))


@FUZZ
@given(which=session_index, endpoint=st.sampled_from(sorted(SHAPED)), data=st.data(),
       content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_fuzz_json_endpoints(fz, which, endpoint, data, content_type):
    body = data.draw(st.one_of(encoded(SHAPED[endpoint]), encoded(SHAPED[endpoint]), other_bodies))
    session = fz.sessions[which]
    response = fz.call("POST", endpoint, data=body, headers={
        "X-Cobrowse-Token": session["upload_token"], "Content-Type": content_type},
        environ_base={"REMOTE_ADDR": f"10.0.{which}.{len(body) % 250}"})  # spread the join rate limit
    assert response.status_code in (200, 201, 400, 404, 413, 429), (endpoint, response.status)
    if endpoint == "/resources/check" and response.status_code == 200:
        missing = response.json["missing"]
        assert isinstance(missing, list) and all(isinstance(u, str) for u in missing)
    if endpoint == "/sessions" and response.status_code == 201:
        assert len(response.json["code"]) == 9


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
       path=st.one_of(st.sampled_from(["/resources", "/sessions/current", "/snapshot", "/health", "/metrics",
                                       "/agent", "/cobrowse.js", "/static/agent.js", "/nope", "/", ""]),
                      texts.map(lambda t: "/" + quote(t, safe="/"))),
       token=st.one_of(st.none(), texts))
def test_fuzz_methods_and_paths(fz, method, path, token):
    headers = {"X-Cobrowse-Token": latin1(token)} if token is not None else {}
    response = fz.call(method, path, headers=headers, data=b"")
    assert response.status_code in (200, 204, 302, 304, 400, 403, 404, 405), (method, path, response.status)
