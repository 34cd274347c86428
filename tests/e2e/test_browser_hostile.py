"""Hostile snapshots run nothing in the agent's browser (SPEC 6, 8).

Two sources of hostile markup: a sample page full of script (``hostile.html``: ``<script>``,
``onerror=``, ``javascript:`` links, ``<iframe srcdoc>``, ``<meta refresh>``, ``<base href>``)
shared through the customer script as a real customer would; and a snapshot crafted by hand and
posted straight to the API, as an attacker holding an upload token would, with the tricks a DOM
serializer never produces. Each is opened in the agent viewer and on its own: no window marker set
by the page's script may appear in any frame, no dialog may open, nothing may log, and the frame
may not navigate away.
"""

from __future__ import annotations

from html.parser import HTMLParser

import requests

from tests.e2e.conftest import VIEWPORT, wait_for

MARKER = "hostileRan"
#: What the hostile pages would run script from when clicked (ids in both of them).
HOSTILE_TARGETS = ["#js-link", "#js-link-2", "#js-button", "#svg-link", "#tab-link", "#entity-link",
                   "details", "input", "#hover"]

CRAFTED = """<!DOCTYPE html>
<html><head>
<meta http-equiv="refresh" content="0;url=javascript:window.hostileRan='refresh-js'">
<meta http-equiv="Refresh" content="0; URL=/elsewhere">
<base href="javascript:window.hostileRan='base'//">
<script>window.hostileRan = 'script'; console.log('hostile: script')</script>
<SCRIPT SRC="data:text/javascript,window.hostileRan='script-src'"></SCRIPT>
<style>@import 'javascript:alert(1)'; body { background: url("javascript:alert(2)") }</style>
</head>
<body onload="window.hostileRan='onload'">
<p id="content">Crafted snapshot</p>
<img src="x" onerror="window.hostileRan='onerror'">
<img src="x" ONERROR=window.hostileRan='upper'>
<svg onload="window.hostileRan='svg-onload'"><script>window.hostileRan='svg-script'</script>
<animate onbegin="window.hostileRan='animate'" attributeName="x" dur="1s"/>
<a href="javascript:alert('svg link')" id="svg-link"><text x="0" y="10">svg link</text></a></svg>
<math><mtext><table><mglyph><style><img src=x onerror="window.hostileRan='mxss'"></style></mglyph></table></mtext></math>
<iframe srcdoc="<script>parent.hostileRan='srcdoc'</script>"></iframe>
<iframe src="javascript:parent.hostileRan='iframe-js'"></iframe>
<object data="javascript:window.hostileRan='object'"></object>
<embed src="javascript:window.hostileRan='embed'">
<a href="jav&#x09;ascript:alert('tab')" id="tab-link">tab</a>
<a href="&#106;avascript:alert('entity')" id="entity-link">entity</a>
<form action="javascript:alert('action')">
<button formaction="javascript:alert('fa')" id="js-button">b</button></form>
<noscript><p title="</noscript><img src=x onerror=window.hostileRan='noscript'>"></p></noscript>
<template><script>window.hostileRan='template'</script></template>
<details open ontoggle="window.hostileRan='toggle'">details</details>
<input autofocus onfocus="window.hostileRan='focus'">
<video><source onerror="window.hostileRan='source'"></video>
<xmp><script>window.hostileRan='xmp'</script></xmp>
<textarea></textarea><script>window.hostileRan='after-textarea'</script>
<div style="background: url(javascript:alert(3))">styled</div>
</body></html>
"""


class Inspector(HTMLParser):
    """Collects what must not be in a served snapshot."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            compact = "".join((value or "").split()).lower()
            if compact.startswith("javascript:") or "javascript:" in compact and name in (
                    "href", "src", "action", "formaction", "data", "xlink:href"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if tag == "meta" and name == "http-equiv" and (value or "").lower() == "refresh":
                self.problems.append("<meta refresh>")
            if name == "srcdoc" and "<script" in (value or "").lower():
                self.problems.append("<iframe srcdoc> with script")


def served_snapshot_problems(site, view_token: str) -> list[str]:
    response = requests.get(site.url("/_cobrowse/snapshot"), params={"token": view_token}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'none'" in csp or ("default-src 'none'" in csp and "script-src" not in csp)
    inspector = Inspector()
    inspector.feed(response.text)
    return inspector.problems


def assert_nothing_ran(agent, page) -> None:
    """No marker in any frame of ``page``, no dialog, no console line from the snapshot."""
    # The javascript: links and buttons, and what had handlers: click them all, in every frame.
    for frame in page.frames:
        for selector in HOSTILE_TARGETS:
            try:
                for element in frame.locator(selector).all():
                    element.click(timeout=500, no_wait_after=True, force=True)
            except Exception:  # noqa: BLE001 - hidden, not clickable or gone: nothing ran then
                pass
    page.wait_for_timeout(1200)  # a 0-second refresh, a deferred handler: give them time
    for frame in page.frames:
        if frame.is_detached():
            continue
        assert frame.evaluate(f"typeof window.{MARKER}") == "undefined", frame.url
    assert agent.dialogs == []
    assert [line for line in agent.console if "hostile" in line] == []


def test_hostile_sample_page_runs_nothing_for_the_agent(people, site):
    customer, agent = people.customer(), people.agent()
    customer.open("/hostile.html")
    # The page's script did run for the customer: that is the page, not the agent's view.
    assert customer.page.evaluate(f"window.{MARKER}") is not None
    shared = customer.share()
    assert served_snapshot_problems(site, shared["view_token"]) == []

    # In the viewer (a sandboxed frame) ...
    agent.page.goto(site.url(f"/_cobrowse/agent?token={shared['view_token']}"))
    wait_for(lambda: any("/_cobrowse/snapshot" in f.url for f in agent.page.frames[1:]),
             message="the snapshot frame", page=agent.page)
    frame = next(f for f in agent.page.frames if "/_cobrowse/snapshot" in f.url)
    frame.wait_for_load_state("load")
    assert frame.locator("h1").text_content() == "Hostile markup"
    assert_nothing_ran(agent, agent.page)
    assert agent.page.evaluate(f"typeof window.{MARKER}") == "undefined"

    # ... and opened on its own.
    agent.open_snapshot(shared["view_token"])
    assert agent.page.locator("h1").text_content() == "Hostile markup"
    url = agent.page.url
    assert_nothing_ran(agent, agent.page)
    assert agent.page.url == url  # no refresh, no javascript: navigation


def test_crafted_snapshot_runs_nothing_for_the_agent(people, site):
    # An attacker with an upload token posts whatever they like.
    client = requests.Session()
    assert client.post(site.url("/login"), data={"username": "demo", "password": "demo"},
                       allow_redirects=False, timeout=10).status_code == 302
    session = client.post(site.url("/_cobrowse/sessions"), json={}, timeout=10).json()
    response = client.post(site.url("/_cobrowse/snapshot"), timeout=10,
                           headers={"X-Cobrowse-Token": session["upload_token"]},
                           json={"url": site.url("/crafted.html"), "html": CRAFTED, "charset": "utf-8",
                                 "viewport": VIEWPORT, "scroll": {"x": 0, "y": 0}})
    assert response.status_code == 201
    assert served_snapshot_problems(site, session["view_token"]) == []

    agent = people.agent()
    agent.page.goto(site.url(f"/_cobrowse/agent?token={session['view_token']}"))
    wait_for(lambda: any("/_cobrowse/snapshot" in f.url for f in agent.page.frames[1:]),
             message="the snapshot frame", page=agent.page)
    frame = next(f for f in agent.page.frames if "/_cobrowse/snapshot" in f.url)
    frame.wait_for_load_state("load")
    assert frame.locator("#content").text_content() == "Crafted snapshot"
    assert_nothing_ran(agent, agent.page)

    agent.open_snapshot(session["view_token"])
    url = agent.page.url
    assert_nothing_ran(agent, agent.page)
    assert agent.page.url == url
    assert agent.page.locator("#content").text_content() == "Crafted snapshot"
