"""The agent console and the agent viewer (SPEC 8): joining by code, the sandboxed frame sized to
the customer's viewport, the resource panel, live updates; and, with the customer's uploads off,
proof that the pixel comparison can fail (the agent gets 401s, the panel shows direct loads)."""

from __future__ import annotations

import io
import os

import pytest

from tests.e2e.conftest import REPO_DOCS, current, wait_for

VIEWER_VIEWPORT = {"width": 1400, "height": 820}


def open_viewer(agent, code: str) -> str:
    """Joins through the console at /agent (typing the code) and waits for the snapshot frame."""
    agent.page.set_viewport_size(VIEWER_VIEWPORT)
    token = agent.join_by_console(code)
    frame_element = agent.page.locator("iframe#snapshot")
    wait_for(lambda: frame_element.get_attribute("data-version"), message="the snapshot in the viewer")
    frame = wait_for(lambda: next((f for f in agent.page.frames if "/_cobrowse/snapshot" in f.url), None),
                     message="the snapshot frame", page=agent.page)
    frame.wait_for_load_state("load")
    settle_frame(frame)
    return token


def settle_frame(frame) -> None:
    frame.evaluate("""async () => {
        await document.fonts.ready;
        await Promise.all(Array.from(document.images, (img) =>
            img.complete ? null : new Promise((r) => { img.onload = img.onerror = r; })));
    }""")
    frame.page.wait_for_timeout(50)


def panel_rows(agent) -> dict[str, dict[str, str]]:
    return agent.page.evaluate("""() => Object.fromEntries(
        Array.from(document.querySelectorAll('#resources tbody tr'), (tr) => [tr.dataset.url, {
            source: tr.dataset.source, label: tr.cells[1].textContent, state: tr.cells[2].textContent,
        }]))""")


def test_console_join_and_viewer_show_the_customers_page(people, site, compare):
    customer, agent = people.customer(), people.agent()
    customer.open("/index.html")
    shared = customer.share()
    token = open_viewer(agent, shared["code"])
    assert current(site, token)["session"] == shared["session"]

    iframe = agent.page.locator("iframe#snapshot")
    # Sandboxed without allow-scripts and without allow-same-origin.
    assert iframe.get_attribute("sandbox") == ""
    box = iframe.bounding_box()
    assert (box["width"], box["height"]) == (customer.page.viewport_size["width"],
                                              customer.page.viewport_size["height"])
    assert compare(customer.page.screenshot(), iframe.screenshot(), "viewer") == 0

    # The panel lists what the agent's browser got, and from where; the poll refreshes it.
    site_css = site.url("/css/site.css")
    rows = wait_for(lambda: (lambda r: r if r.get(site_css, {}).get("state") == "served" else None)(
        panel_rows(agent)), timeout=8, message="the panel to show served resources")
    assert rows[site_css]["source"] == "cache" and rows[site_css]["label"] in ("cache L1", "cache L2")
    for path in ["/css/theme.css", "/img/hero.png", "/fonts/sample-mono.woff2"]:
        assert rows[site.url(path)]["source"] == "cache", path
    assert agent.site_401s() == []
    assert agent.page.locator("#page-url").text_content() == site.url("/index.html")


def test_viewer_follows_the_customers_changes(people, site):
    customer, agent = people.customer(), people.agent()
    customer.open("/images.html")
    shared = customer.share()
    open_viewer(agent, shared["code"])
    first = agent.page.locator("iframe#snapshot").get_attribute("data-version")

    # The page changes under the customer: the script posts a new snapshot by itself.
    customer.page.evaluate("""() => {
        const p = document.createElement('p');
        p.id = 'changed';
        p.textContent = 'Changed after sharing';
        document.body.appendChild(p);
    }""")
    iframe = agent.page.locator("iframe#snapshot")
    wait_for(lambda: iframe.get_attribute("data-version") not in (None, first), timeout=10,
             message="the viewer to load the new snapshot")
    frame = agent.page.frame_locator("iframe#snapshot")
    frame.locator("#changed").wait_for(timeout=5000)
    assert frame.locator("#changed").text_content() == "Changed after sharing"


def test_a_link_followed_in_the_frame_brings_the_snapshot_back(people, site):
    customer, agent = people.customer(), people.agent()
    customer.open("/images.html")
    shared = customer.share()
    open_viewer(agent, shared["code"])
    agent.page.frame_locator("iframe#snapshot").locator("nav a", has_text="Styles").click()
    # The frame went to the site (where the agent has no login), and the viewer brought it back.
    wait_for(lambda: any(url == site.url("/styles.html") for url, _ in agent.responses),
             message="the frame to follow the link", page=agent.page)
    wait_for(lambda: "/_cobrowse/snapshot" in agent.page.frames[1].url,
             timeout=10, message="the snapshot to come back", page=agent.page)
    frame = agent.page.frames[1]
    frame.wait_for_load_state("load")
    assert frame.locator("h1").text_content() == "Images"


def test_without_uploads_the_views_differ_and_the_viewer_shows_direct_loads(people, site, compare):
    customer = people.customer(enableStaticResourceService=False)
    agent = people.agent()
    customer.open("/styles.html")
    shared = customer.share()
    assert (shared["synced"], shared["failed"]) == (0, 0)
    info = current(site, shared["view_token"])
    assert info["settings"]["enableStaticResourceService"] is False
    assert info["resources"] == []
    assert info["snapshot"], "the snapshot is posted even with uploads off"

    open_viewer(agent, shared["code"])
    site_css = site.url("/css/site.css")
    rows = wait_for(lambda: (lambda r: r if site_css in r else None)(panel_rows(agent)), timeout=8,
                    message="the panel to list the direct loads")
    assert rows[site_css]["source"] == "direct"
    assert rows[site_css]["state"] == "loaded directly (302)"
    direct = [url for url, row in rows.items() if row["source"] == "direct"]
    assert site.url("/img/style-tag.png") in direct and site.url("/img/style-attr.png") in direct

    agent.page.set_viewport_size(info["snapshot"]["viewport"])
    agent.open_snapshot(shared["view_token"])
    differing = compare(customer.page.screenshot(), agent.page.screenshot(), "uploads-off")
    assert differing > 1000, "the comparison should see the missing stylesheet, images and font"
    # What the agent's browser got instead: the site's refusals.
    assert site_css in agent.site_401s()


def test_write_the_viewer_screenshot_for_the_docs(people, site):
    """docs/agent-viewer.png, when asked for (COBROWSE_WRITE_DOCS=1): the Origins page, whose
    panel shows resources from the cache and direct loads side by side."""
    if os.environ.get("COBROWSE_WRITE_DOCS") != "1":
        pytest.skip("set COBROWSE_WRITE_DOCS=1 to rewrite docs/agent-viewer.png")
    from PIL import Image

    customer, agent = people.customer(), people.agent()
    customer.open("/origins.html")
    shared = customer.share()
    open_viewer(agent, shared["code"])
    wait_for(lambda: (lambda r: r if any(v["source"] == "direct" for v in r.values()) else None)(
        panel_rows(agent)), timeout=8, message="the panel to show the direct loads", page=agent.page)
    agent.page.set_viewport_size({"width": 1340, "height": 760})
    agent.page.wait_for_timeout(200)
    image = Image.open(io.BytesIO(agent.page.screenshot())).convert("RGB")
    image.save(REPO_DOCS / "agent-viewer.png", optimize=True)


def test_viewer_says_when_the_customer_stops_sharing(people, site):
    customer, agent = people.customer(), people.agent()
    customer.open("/images.html")
    shared = customer.share()
    open_viewer(agent, shared["code"])
    assert agent.page.locator("#state").text_content() == "Live"
    customer.page.evaluate("() => window.cobrowse.stop()")
    state = agent.page.locator("#state")
    wait_for(lambda: state.text_content() == "Session ended", timeout=8, message="the viewer to notice")
