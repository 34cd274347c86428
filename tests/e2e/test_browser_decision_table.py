"""The second origin's resources follow the decision table (SPEC 5), seen from a real agent browser.

``origins.html`` uses, from another origin (another port on loopback): an image served with CORS
headers, an image without, and a stylesheet without (whose background image is on that origin
too). The customer's browser can read only the first: it is uploaded and served from the cache.
The others come through server-side sync when the second origin is an allowed domain, and are
loaded directly by the agent's browser (302) when it is not. Either way the agent's view is the
customer's, pixel for pixel: those resources are public.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import current, served


@pytest.mark.parametrize("allowed", [False, True], ids=["not-allowed", "allowed"])
def test_second_origin_resources_follow_the_decision_table(people, site, proxying_site, compare, allowed):
    on = proxying_site if allowed else site
    customer, agent = people.customer(on=on), people.agent(on=on)
    customer.open("/origins.html")
    shared = customer.share()
    info = current(on, shared["view_token"])
    agent.page.set_viewport_size(info["snapshot"]["viewport"])
    agent.open_snapshot(shared["view_token"])
    assert compare(customer.page.screenshot(), agent.page.screenshot()) == 0
    assert agent.site_401s() == []

    second = on.second_origin
    stored = {entry["url"] for entry in info["resources"]}
    assert f"{second}/cors/badge.png" in stored  # read with CORS, uploaded
    assert f"{second}/plain/stamp.png" not in stored  # not readable cross-origin
    assert f"{second}/plain/remote.css" not in stored
    assert shared["failed"] == 2  # the two the customer's browser could not read

    got = served(on, shared["view_token"])
    assert got[f"{second}/cors/badge.png"]["source"] == "cache"
    assert got[on.url("/img/photo.png")]["source"] == "cache"
    if allowed:
        assert got[f"{second}/plain/stamp.png"] == {
            "url": f"{second}/plain/stamp.png", "source": "proxy", "tier": None, "status": 200}
        assert got[f"{second}/plain/remote.css"]["source"] == "proxy"
        # A proxied sheet is rewritten too: its own url() comes through the server.
        assert got[f"{second}/plain/remote-bg.png"]["source"] == "proxy"
    else:
        assert got[f"{second}/plain/stamp.png"]["source"] == "direct"
        assert got[f"{second}/plain/stamp.png"]["status"] == 302
        assert got[f"{second}/plain/remote.css"]["source"] == "direct"
        # The agent's browser fetched them from the second origin itself.
        fetched = {url for url, status in agent.responses if status == 200}
        assert f"{second}/plain/stamp.png" in fetched
        assert f"{second}/plain/remote.css" in fetched
