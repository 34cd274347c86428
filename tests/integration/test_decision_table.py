"""Every row of SPEC 5's decision table, against a real server and a local origin.

The origin listens on 127.0.0.1; the settings allow exactly that host:port and admit exactly
127.0.0.1/32 past the private-address ban, as an intranet deployment would.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from middleware import ResourceSyncMiddleware
from tests.integration.conftest import Cobrowse, make_settings
from tests.support.origin import Origin
from tests.support.resources import png
from tests.support.servers import plain_app, serve_in_thread

SHEET = b"body { background: url(img/bg.png) } @import 'more.css';"


@pytest.fixture
def origin():
    with Origin() as origin:
        origin.route("/site.css", body=SHEET, headers={"Content-Type": "text/css"})
        origin.route("/logo.png", body=png(seed=5), headers={"Content-Type": "image/png"})
        origin.route("/gone.css", status=404, body=b"<h1>not found</h1>", headers={"Content-Type": "text/html"})
        origin.route("/private.css", body=SHEET, headers={"Content-Type": "text/css", "Cache-Control": "private"})
        origin.route("/page.css", body=b"<html>nope</html>", headers={"Content-Type": "text/html"})
        yield origin


def server(tmp_path, origin, redis_url="", **overrides):
    settings = make_settings(tmp_path, redis_url, allowed_external_domains=[origin.netloc],
                             allowed_private_networks=["127.0.0.1/32"], proxy_failure_ttl="2s",
                             **overrides)
    middleware = ResourceSyncMiddleware(plain_app, settings)
    return middleware, serve_in_thread(middleware)


@pytest.fixture
def cobrowse(tmp_path, origin, redis_url):
    middleware, running = server(tmp_path, origin, redis_url)
    with running as base:
        yield Cobrowse(base, middleware)


def test_rule2_cache_wins_whatever_the_allowed_domains_say(cobrowse):
    session = cobrowse.new_session()
    url = "https://not-allowed.example/a.png"
    cobrowse.upload(session, url, png(seed=1), "image/png")
    got = cobrowse.fetch(session["view_token"], url, **{"as": "image"})
    assert got.status_code == 200 and got.headers["X-Cobrowse-Source"] == "cache"


def test_rule3_proxies_an_allowed_stylesheet_and_rewrites_it(cobrowse, origin):
    session = cobrowse.new_session()
    got = cobrowse.fetch(session["view_token"], origin.url("/site.css"), **{"as": "style"})
    assert got.status_code == 200, got.text
    assert got.headers["X-Cobrowse-Source"] == "proxy" and "X-Cobrowse-Cache" not in got.headers
    assert got.headers["Content-Type"] == "text/css; charset=utf-8"
    text = got.text
    assert "url(img/bg.png)" not in text and "/_cobrowse/resources?url=" in text
    assert "as=image" in text and "as=style" in text
    # the origin got no client or customer headers
    sent = origin.requests[-1].headers
    assert not {"Cookie", "Authorization", "X-Cobrowse-Token"} & set(sent)
    assert origin.hits("/site.css") == 1


@pytest.mark.parametrize("case", ["no_as", "kind_not_in_types", "host_not_allowed"])
def test_rule4_when_rule3_does_not_apply(cobrowse, origin, case):
    session = cobrowse.new_session()
    url, extra = {
        "no_as": (origin.url("/site.css"), {}),
        "kind_not_in_types": (origin.url("/logo.png"), {"as": "image"}),  # proxy types = css only
        "host_not_allowed": (origin.url("/site.css", host="localhost"), {"as": "style"}),
    }[case]
    got = cobrowse.fetch(session["view_token"], url, **extra)
    assert got.status_code == 302 and got.headers["Location"] == url
    assert got.headers["X-Cobrowse-Source"] == "direct"
    assert origin.hits() == 0


def test_css_server_false_means_direct_load(cobrowse, origin):
    session = cobrowse.new_session(css={"server": False})
    got = cobrowse.fetch(session["view_token"], origin.url("/site.css"), **{"as": "style"})
    assert got.status_code == 302 and origin.hits() == 0


def test_static_service_off_still_gets_rules_3_and_4(cobrowse, origin):
    session = cobrowse.new_session(enableStaticResourceService=False)
    proxied = cobrowse.fetch(session["view_token"], origin.url("/site.css"), **{"as": "style"})
    assert proxied.status_code == 200 and proxied.headers["X-Cobrowse-Source"] == "proxy"
    direct = cobrowse.fetch(session["view_token"], "https://elsewhere.example/x.png", **{"as": "image"})
    assert direct.status_code == 302


@pytest.mark.parametrize("path", ["/gone.css", "/page.css"])
def test_a_failed_fetch_falls_to_direct_and_is_remembered(cobrowse, origin, path):
    session = cobrowse.new_session()
    for _ in range(3):
        got = cobrowse.fetch(session["view_token"], origin.url(path), **{"as": "style"})
        assert got.status_code == 302 and got.headers["X-Cobrowse-Source"] == "direct"
    assert origin.hits(path) == 1  # the negative cache spared the origin


def test_public_proxied_responses_are_shared_across_sessions_but_private_ones_are_not(cobrowse, origin):
    for _ in range(2):
        session = cobrowse.new_session()
        assert cobrowse.fetch(session["view_token"], origin.url("/site.css"), **{"as": "style"}).status_code == 200
        assert cobrowse.fetch(session["view_token"], origin.url("/private.css"), **{"as": "style"}).status_code == 200
    assert origin.hits("/site.css") == 1
    assert origin.hits("/private.css") == 2


def test_fifty_concurrent_agents_cause_one_origin_fetch(cobrowse, origin):
    origin.route("/slow.css", body=SHEET, headers={"Content-Type": "text/css"}, delay=0.5)
    sessions = [cobrowse.new_session() for _ in range(5)]
    barrier = threading.Barrier(50)
    results = []

    def agent(n):
        barrier.wait()
        results.append(cobrowse.fetch(sessions[n % 5]["view_token"], origin.url("/slow.css"), **{"as": "style"}))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 50
    assert all(r.status_code == 200 and r.headers["X-Cobrowse-Source"] == "proxy" for r in results)
    assert origin.hits("/slow.css") == 1


def test_images_are_proxied_when_the_types_allow(tmp_path, origin):
    middleware, running = server(tmp_path, origin, proxy_types="css,image")
    with running as base:
        cb = Cobrowse(base, middleware)
        session = cb.new_session()
        got = cb.fetch(session["view_token"], origin.url("/logo.png"), **{"as": "image"})
        assert got.status_code == 200 and got.content == png(seed=5)
        wrong_kind = cb.fetch(session["view_token"], origin.url("/logo.png"), **{"as": "style"})
        assert wrong_kind.status_code == 302  # an image is not a stylesheet


def test_uploaded_stylesheets_are_rewritten_for_the_viewer_token(cobrowse):
    session = cobrowse.new_session()
    sheet_url = "https://site.example/css/site.css"
    cobrowse.upload(session, sheet_url, b'@import "theme.css";\n.a { background: url("../img/a.png") }\n'
                    b".b { background: url(data:image/png;base64,AAAA) }\n", "text/css")
    got = cobrowse.fetch(session["view_token"], sheet_url, **{"as": "style"})
    assert got.status_code == 200 and got.headers["X-Cobrowse-Source"] == "cache"
    text = got.text
    assert "url(data:image/png;base64,AAAA)" in text  # data: left as it was
    targets = [part.split('"')[0] for part in text.split('"/_cobrowse/resources?')[1:]]
    parsed = [parse_qs(urlsplit("?" + t).query) for t in targets]
    assert [(p["url"][0], p["as"][0]) for p in parsed] == [
        ("https://site.example/css/theme.css", "style"), ("https://site.example/img/a.png", "image")]
    assert all(p["token"][0] == session["view_token"] for p in parsed)
    # a second fetch is the same variant: same ETag, 304 on revalidation
    again = requests.get(got.url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
    assert again.status_code == 304


def test_a_shift_jis_stylesheet_is_served_as_utf8(cobrowse):
    session = cobrowse.new_session()
    text = '.x::before { content: "日本語のテキスト"; background: url(a.png) }'
    for name, body, ctype in [
        ("with-charset-rule.css", ('@charset "Shift_JIS";\n' + text).encode("cp932"), "text/css"),
        ("http-charset.css", text.encode("cp932"), "text/css; charset=Shift_JIS"),
    ]:
        url = f"https://site.example/{name}"
        assert cobrowse.upload(session, url, body, ctype).status_code == 201
        got = cobrowse.fetch(session["view_token"], url, **{"as": "style"})
        assert got.headers["Content-Type"] == "text/css; charset=utf-8"
        assert '"日本語のテキスト"' in got.content.decode("utf-8")


def test_an_imported_sheet_inherits_the_importing_sheets_encoding(cobrowse):
    session = cobrowse.new_session()
    main = '@charset "EUC-JP";\n@import "child.css";\n'.encode("euc_jp")
    child = '.y::after { content: "漢字" }'.encode("euc_jp")  # no BOM, no @charset, no HTTP charset
    cobrowse.upload(session, "https://site.example/main.css", main, "text/css")
    cobrowse.upload(session, "https://site.example/child.css", child, "text/css")
    served_main = cobrowse.fetch(session["view_token"], "https://site.example/main.css", **{"as": "style"}).text
    assert served_main.startswith('@charset "utf-8";')
    child_link = "/_cobrowse/" + served_main.split('"/_cobrowse/')[1].split('"')[0]
    assert "cs=euc-jp" in child_link
    served_child = requests.get(cobrowse.base + child_link, timeout=10)
    assert '"漢字"' in served_child.content.decode("utf-8")


def test_hostile_origin_answers_fall_to_direct_and_nothing_is_cached(cobrowse, origin):
    from middleware.fetch.sync import PROXY_NAMESPACE
    from tests.support.origin import endless, gzip_bomb

    origin.route("/bomb.css", body=gzip_bomb(10**9), headers={"Content-Type": "text/css", "Content-Encoding": "gzip"})
    origin.route("/endless.css", body=endless(), chunked=True, headers={"Content-Type": "text/css"})
    origin.route("/huge.css", body=b"a{}", content_length=10**9, headers={"Content-Type": "text/css"})
    origin.route("/error.css", status=500, body=b"a{}", headers={"Content-Type": "text/css"})
    origin.redirect("/to-loopback.css", f"http://127.0.0.2:{origin.port}/site.css")
    origin.redirect("/to-metadata.css", "http://169.254.169.254/latest/meta-data/")
    session = cobrowse.new_session()
    for path in ["/bomb.css", "/endless.css", "/huge.css", "/error.css", "/to-loopback.css",
                 "/to-metadata.css", "/page.css"]:
        got = cobrowse.fetch(session["view_token"], origin.url(path), **{"as": "style"})
        assert got.status_code == 302 and got.headers["X-Cobrowse-Source"] == "direct", path
        assert cobrowse.middleware.store.get(PROXY_NAMESPACE, origin.url(path)) is None, path
    assert origin.hits("/site.css") == 0  # the redirect to 127.0.0.2 was never followed
