"""The snapshot: the customer posts its DOM, the agent gets it rewritten, script-free, under a CSP."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs

import requests

from tests.support.resources import png

PAGE = "https://site.example/shop/index.html"
HTML = """<!DOCTYPE html><html><head><meta charset="shift_jis"><base href="https://site.example/assets/">
<link rel="stylesheet" href="css/site.css"><script>window.pwned = 1</script>
<style>.hero { background: url(img/hero.png) }</style></head>
<body onload="window.pwned = 2"><img src="img/a.png" srcset="img/a.png 1x, img/a2.png 2x" onerror="x()">
<a href="javascript:alert(1)">link</a><p style="background:url('img/p.png')">日本語</p></body></html>"""


class Scan(HTMLParser):
    """An independent look at the output: tags, attributes, and resource links."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def post_snapshot(cobrowse, session, **body):
    return requests.post(f"{cobrowse.api}/snapshot", json=body, timeout=10,
                         headers={"X-Cobrowse-Token": session["upload_token"]})


def test_snapshot_round_trip(cobrowse):
    session = cobrowse.new_session()
    assert requests.get(f"{cobrowse.api}/snapshot", params={"token": session["view_token"]},
                        timeout=10).status_code == 404
    posted = post_snapshot(cobrowse, session, url=PAGE, html=HTML, charset="Shift_JIS",
                           viewport={"width": 800, "height": 600}, scroll={"x": 0, "y": 120})
    assert posted.status_code == 201, posted.text

    got = requests.get(f"{cobrowse.api}/snapshot", params={"token": session["view_token"]}, timeout=10)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = got.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "sandbox" in csp
    scan = Scan()
    scan.feed(got.content.decode("utf-8"))
    assert "script" not in scan.tags and "base" not in scan.tags
    assert not [name for name, _ in scan.attrs if name.startswith("on")]
    assert not [v for _, v in scan.attrs if v and v.strip().lower().startswith("javascript:")]
    assert "日本語" in got.text and "pwned" not in got.text
    # every resource reference points at the resources endpoint with the view token, resolved
    # against <base href>
    links = {parse_qs(v.split("?", 1)[1])["url"][0]: parse_qs(v.split("?", 1)[1])
             for name, v in scan.attrs if name in ("src", "href") and v and v.startswith("/_cobrowse/resources?")}
    assert set(links) >= {"https://site.example/assets/css/site.css", "https://site.example/assets/img/a.png"}
    assert links["https://site.example/assets/css/site.css"]["as"] == ["style"]
    assert all(link["token"] == [session["view_token"]] for link in links.values())
    assert "/_cobrowse/resources?url=https%3A%2F%2Fsite.example%2Fassets%2Fimg%2Fhero.png" in got.text

    # the viewer learns the viewport and scroll, and the page's charset became the session's
    status = requests.get(f"{cobrowse.api}/sessions/current", params={"token": session["view_token"]},
                          timeout=10).json()
    assert status["snapshot"]["viewport"] == {"width": 800, "height": 600}
    assert status["snapshot"]["scroll"] == {"x": 0, "y": 120}
    assert status["page"] == PAGE and status["charset"] == "shift_jis"
    assert all(not r["url"].startswith("~") for r in status["resources"])

    # same token, same bytes: 304 on revalidation; the upload token cannot read it
    again = requests.get(got.url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    assert requests.get(f"{cobrowse.api}/snapshot", params={"token": session["upload_token"]},
                        timeout=10).status_code == 403


def test_the_latest_snapshot_wins_and_bad_ones_are_refused(cobrowse):
    session = cobrowse.new_session()
    for n in (1, 2):
        assert post_snapshot(cobrowse, session, url=PAGE, html=f"<p>version {n}</p>").status_code == 201
    got = requests.get(f"{cobrowse.api}/snapshot", params={"token": session["view_token"]}, timeout=10)
    assert "version 2" in got.text and "version 1" not in got.text
    for body in [{"html": "<p>"}, {"url": "javascript:1", "html": "<p>"}, {"url": PAGE},
                 {"url": PAGE, "html": "<p>", "viewport": {"width": -1, "height": 2}}]:
        answer = post_snapshot(cobrowse, session, **body)
        assert answer.status_code == 400 and set(answer.json()) == {"error", "message"}
    view_cannot_post = requests.post(f"{cobrowse.api}/snapshot", json={"url": PAGE, "html": "<p>"}, timeout=10,
                                     headers={"X-Cobrowse-Token": session["view_token"]})
    assert view_cannot_post.status_code == 403


def test_served_sources_are_listed_for_the_viewer(cobrowse):
    session = cobrowse.new_session()
    cobrowse.upload(session, "https://site.example/a.png", png(), "image/png")
    cobrowse.fetch(session["view_token"], "https://site.example/a.png")
    cobrowse.fetch(session["view_token"], "https://elsewhere.example/b.png", **{"as": "image"})
    status = requests.get(f"{cobrowse.api}/sessions/current", params={"token": session["view_token"]},
                          timeout=10).json()
    assert {(s["url"], s["source"], s["tier"], s["status"]) for s in status["served"]} == {
        ("https://site.example/a.png", "cache", "L1", 200),
        ("https://elsewhere.example/b.png", "direct", None, 302)}
