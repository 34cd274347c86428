"""Resource identity follows the WHATWG URL serialisation the browser uses."""

import pytest

from middleware.urls import BadURL, normalize_url


@pytest.mark.parametrize("raw, expected", [
    ("https://Site.example:443/a.png#x", "https://site.example/a.png"),
    ("HTTP://EXAMPLE.com:80/a b?q=1 2", "http://example.com/a%20b?q=1%202"),
    ("https://bücher.example/ä.png", "https://xn--bcher-kva.example/%C3%A4.png"),
    ("https://site.example/a.png?v=1", "https://site.example/a.png?v=1"),
    ("https://site.example:8443/./x/../a.png", "https://site.example:8443/a.png"),
])
def test_normalisation(raw, expected):
    assert normalize_url(raw) == expected


def test_query_is_part_of_the_identity():
    assert normalize_url("https://s.example/a.css?v=1") != normalize_url("https://s.example/a.css?v=2")


def test_relative_urls_resolve_against_a_base():
    assert normalize_url("../img/bg.png", "https://s.example/css/site.css") == "https://s.example/img/bg.png"


@pytest.mark.parametrize("bad", [
    "", "/relative.png", "javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://s.example/a",
    "file:///etc/passwd", "https://s.example/a\r\nX-Evil: 1", "https://s.example/" + "a" * 9000, "http://",
])
def test_refused(bad):
    with pytest.raises(BadURL):
        normalize_url(bad)
