"""Stylesheets in Shift_JIS render for the agent exactly as for the customer (SPEC 5).

Three ways a sheet's encoding is known: ``@charset`` in the sheet, the ``charset`` of the HTTP
Content-Type the customer's browser saw (``css/sjis-http/``), and neither, on a page that is itself
in Shift_JIS. The agent's browser only ever gets UTF-8 from the co-browse server, so the strings it
computes prove the server decoded each sheet the way the customer's browser did.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import current

CONTENT = """(ids) => ids.map((id) => {
    const el = document.getElementById(id);
    return [id, getComputedStyle(el, '::before').content, getComputedStyle(el, '::after').content];
})"""

CASES = {
    "/sjis.html": {
        "declared": '"\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\uff08\u30b7\u30d5\u30c8JIS\uff09"',
        "http": '"\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\uff01\u30c0\u30e1\u6587\u5b57"',
        # A selector in Japanese, and a string with bytes that hold a backslash (0x5C) in Shift_JIS.
        "label": '" \u203b\u8868\u80fd\u30bd"',
    },
    "/sjis-page.html": {
        "legacy": '"\u6587\u66f8\u306e\u6587\u5b57\u30b3\u30fc\u30c9\u3067\u8aad\u3080\u8868"',
    },
}


@pytest.mark.parametrize("path", sorted(CASES))
def test_agent_computes_the_same_japanese_content_strings(people, site, compare, path):
    customer, agent = people.customer(), people.agent()
    customer.open(path)
    shared = customer.share()
    info = current(site, shared["view_token"])
    assert info["snapshot"]["url"] == site.url(path)
    agent.page.set_viewport_size(info["snapshot"]["viewport"])
    agent.open_snapshot(shared["view_token"])

    ids = list(CASES[path])
    theirs = customer.page.evaluate(CONTENT, ids)
    ours = agent.page.evaluate(CONTENT, ids)
    assert ours == theirs
    # And the customer's browser itself read them right (the page is not wrong on both sides).
    for id_, before, after in theirs:
        expected = CASES[path][id_]
        assert expected in (before, after), (id_, before, after)
    assert compare(customer.page.screenshot(), agent.page.screenshot()) == 0
    assert agent.site_401s() == []
