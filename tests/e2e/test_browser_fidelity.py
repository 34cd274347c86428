"""The agent sees exactly what the customer sees (SPEC 8, issue 4), in real Chromium.

For each sample page, a logged-in customer shares it with ``cobrowse.share()``; an agent in
another browser context, without the site's cookies, opens the snapshot at the customer's viewport
size; the two screenshots are compared pixel by pixel (decoded RGBA) and no pixel may differ. The
agent's browser must never have been answered 401 by the site: everything behind the login came
from the co-browse server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Site, current, served, settle, wait_for

#: Every sample page shown with the feature on, and what must have been uploaded for it.
PAGES = [
    "/index.html",
    "/images.html",
    "/styles.html",
    "/public.html",
    "/media.html",
    "/cascade.html",
    "/sjis.html",
    "/sjis-page.html",
    "/cssom.html",
    "/origins.html",
    "/base.html",
]


def share_and_open(customer, agent, site: Site) -> dict:
    """The customer shares; the agent opens the snapshot at the customer's viewport. The share()
    answer, with the session's /current added under "current"."""
    shared = customer.share()
    assert len(shared["code"]) == 9 and shared["code"].isdigit()
    info = current(site, shared["view_token"])
    assert info["snapshot"], "no snapshot was posted"
    viewport = info["snapshot"]["viewport"]
    assert viewport == customer.page.viewport_size
    agent.page.set_viewport_size(viewport)
    agent.open_snapshot(shared["view_token"])
    return {**shared, "current": info}


@pytest.mark.parametrize("path", PAGES)
def test_agent_view_is_pixel_identical(people, site, compare, path):
    customer, agent = people.customer(), people.agent()
    customer.open(path)
    shared = share_and_open(customer, agent, site)

    differing = compare(customer.page.screenshot(), agent.page.screenshot(), path.strip("/"))
    assert differing == 0, f"{differing} pixels differ on {path}"
    assert agent.site_401s() == [], "the agent's browser was refused by the site"
    assert shared["synced"] > 0
    # The widget is never part of what the agent gets.
    assert agent.page.locator("cobrowse-widget, [data-cobrowse-widget]").count() == 0


def test_every_reference_kind_is_uploaded_and_served_from_the_cache(people, site, compare):
    customer, agent = people.customer(), people.agent()
    customer.open("/media.html")
    shared = share_and_open(customer, agent, site)
    stored = {entry["url"] for entry in shared["current"]["resources"]}
    for path in ["/img/set-1x.png", "/img/w-160.png", "/img/pic-wide.png", "/img/svg-image.png",
                 "/img/sprite.svg", "/img/poster.png", "/img/go.png", "/img/favicon.png"]:
        assert site.url(path) in stored, path
    # The candidates the customer's browser did not choose are not what the agent gets.
    got = served(site, shared["view_token"])
    for path in ["/img/set-1x.png", "/img/w-160.png", "/img/pic-wide.png", "/img/svg-image.png",
                 "/img/poster.png", "/img/go.png"]:
        assert got[site.url(path)]["source"] == "cache", path
    for path in ["/img/set-2x.png", "/img/w-320.png", "/img/pic-narrow.png"]:
        assert site.url(path) not in got, path

    customer.open("/cascade.html")
    shared = share_and_open(customer, agent, site)
    stored = {entry["url"] for entry in shared["current"]["resources"]}
    for path in ["/css/cascade.css", "/css/cascade-import.css", "/css/deep/cascade-deep.css",
                 "/img/deep.png", "/fonts/sample-mono.woff2", "/img/set-1x.png", "/img/set-2x.png",
                 "/img/photo.png", "/img/style-tag.png", "/img/dots.gif", "/img/bg.png"]:
        assert site.url(path) in stored, path
    assert compare(customer.page.screenshot(), agent.page.screenshot(), "cascade-again") == 0


def test_large_public_image_is_left_to_a_direct_load(people, site, compare):
    customer, agent = people.customer(), people.agent()
    customer.open("/public.html")
    shared = share_and_open(customer, agent, site)
    large = site.url("/public/large.png")
    assert shared["failed"] >= 1  # over max_size: not uploaded
    assert large not in {entry["url"] for entry in shared["current"]["resources"]}
    got = served(site, shared["view_token"])
    assert got[large]["source"] == "direct" and got[large]["status"] == 302
    assert compare(customer.page.screenshot(), agent.page.screenshot()) == 0


def test_form_values_checked_states_and_scroll_position_are_carried(people, site, compare):
    customer, agent = people.customer(), people.agent()
    customer.open("/form.html")
    page = customer.page
    page.fill("#name", "Ann Example")
    page.fill("#email", "ann@example.com")
    page.fill("#pin", "1234")
    page.uncheck("#news")
    page.check("#terms")
    page.check("#plan-pro")
    page.select_option("#country", "us")
    page.fill("#notes", "\nFirst line\nsecond line <b>not markup</b>")
    page.evaluate("""() => {
        const range = document.getElementById('level');
        range.value = '8';
        range.dispatchEvent(new Event('input', {bubbles: true}));
        document.activeElement.blur();
        document.getElementById('log').scrollTop = 70;
        window.scrollTo(60, 380);
    }""")
    assert page.evaluate("[scrollX, scrollY]") == [60, 380]

    shared = share_and_open(customer, agent, site)
    assert shared["current"]["snapshot"]["scroll"] == {"x": 60, "y": 380}
    assert agent.page.evaluate("[scrollX, scrollY]") == [60, 380]
    assert agent.page.evaluate("document.getElementById('log').scrollTop") == 70
    state = """() => ({
        name: document.getElementById('name').value,
        email: document.getElementById('email').value,
        pinLength: document.getElementById('pin').value.length,
        news: document.getElementById('news').checked,
        terms: document.getElementById('terms').checked,
        pro: document.getElementById('plan-pro').checked,
        basic: document.getElementById('plan-basic').checked,
        country: document.getElementById('country').value,
        notes: document.getElementById('notes').value,
        level: document.getElementById('level').value,
    })"""
    assert agent.page.evaluate(state) == page.evaluate(state)
    # The password itself never leaves the customer's browser.
    assert agent.page.evaluate("document.getElementById('pin').value") != "1234"
    assert compare(page.screenshot(), agent.page.screenshot()) == 0


def test_navigation_within_the_site_shares_the_new_page(people, site, compare):
    customer, agent = people.customer(), people.agent()
    customer.open("/index.html")
    shared = customer.share()
    customer.page.click("text=Images")
    customer.page.wait_for_url("**/images.html")
    settle(customer.page)
    # The script finds the live session in sessionStorage and shares the new page by itself.
    snapshot = wait_for(lambda: (lambda s: s if s and s["url"].endswith("/images.html") else None)(
        current(site, shared["view_token"])["snapshot"]), message="the new page's snapshot")
    wait_for(lambda: customer.status()["state"] == "sharing", message="the re-share to finish")
    assert customer.status()["code"] == shared["code"]
    agent.page.set_viewport_size(snapshot["viewport"])
    agent.open_snapshot(shared["view_token"])
    assert compare(customer.page.screenshot(), agent.page.screenshot()) == 0


def test_stop_ends_the_session(people, site):
    customer = people.customer()
    customer.open("/images.html")
    shared = customer.share()
    assert current(site, shared["view_token"])["session"] == shared["session"]
    customer.page.evaluate("() => window.cobrowse.stop()")
    assert customer.status()["state"] == "stopped"
    assert customer.page.evaluate("sessionStorage.getItem('cobrowse.session')") is None
    import requests

    response = requests.get(site.url("/_cobrowse/sessions/current"),
                            params={"token": shared["view_token"]}, timeout=10)
    assert response.status_code == 403


def test_the_share_button_shows_the_code_and_progress_and_stays_out_of_the_snapshot(people, site):
    customer = people.customer(ui=True)
    customer.open("/images.html")
    widget = customer.page.locator("cobrowse-widget")
    assert widget.count() == 1
    widget.locator("button.share").click()
    code = widget.locator(".code")
    wait_for(lambda: code.text_content().replace(" ", "").isdigit(), message="the join code")
    wait_for(lambda: customer.status()["state"] == "sharing", message="sharing")
    status = customer.status()
    assert code.text_content().replace(" ", "") == status["code"]
    progress = widget.locator(".progress").text_content()
    assert f"{status['synced']} of {status['total']} resources synced" in progress
    assert status["total"] >= 9 and status["failed"] == 0

    agent = people.agent()
    token = agent.join_by_console(status["code"])
    agent.open_snapshot(token)
    assert agent.page.locator("cobrowse-widget").count() == 0
    assert "Share my screen" not in agent.page.content()


def test_without_subtle_crypto_everything_is_uploaded_without_asking(people, site, compare):
    # http://shop.test is not a secure context: no crypto.subtle, so no hashes and no `check`.
    customer, agent = people.customer(host="shop.test"), people.agent()
    requests_made: list[str] = []
    customer.page.on("request", lambda request: requests_made.append(request.url))
    customer.open("/images.html")
    assert customer.page.evaluate("window.isSecureContext") is False
    assert customer.page.evaluate("Boolean(window.crypto && window.crypto.subtle)") is False
    shared = share_and_open(customer, agent, site)

    assert not [url for url in requests_made if url.endswith("/_cobrowse/resources/check")]
    assert shared["failed"] == 0 and shared["synced"] == customer.status()["total"] >= 9
    stored = {entry["url"] for entry in shared["current"]["resources"]}
    assert "http://shop.test:%d/img/photo.png" % int(site.host.rsplit(":", 1)[1]) in stored
    assert compare(customer.page.screenshot(), agent.page.screenshot()) == 0
    assert agent.site_401s() == []


def test_share_twice_at_once_makes_one_session_and_stop_midway_wins(people, site):
    customer = people.customer()
    customer.open("/images.html")
    first, second = customer.page.evaluate("""async () => {
        const [a, b] = await Promise.all([cobrowse.share(), cobrowse.share()]);
        return [a.session, b.session];
    }""")
    assert first == second

    # stop() while a sync runs: the state says stopped, and the stale sync does not undo that.
    state_after_stop, state_after_sync, again = customer.page.evaluate("""async () => {
        const running = cobrowse.share().catch(() => 'stopped');
        await cobrowse.stop();
        const afterStop = cobrowse.status().state;
        await running;
        const afterSync = cobrowse.status().state;
        const again = await cobrowse.share();
        return [afterStop, afterSync, again];
    }""")
    assert state_after_stop == state_after_sync == "stopped"
    assert again["session"] != first and again["synced"] >= 9
    assert customer.status()["state"] == "sharing"
