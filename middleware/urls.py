"""Resource identity: absolute URLs normalised as the browser serialises them (WHATWG URL).

The customer's browser, the rewriters and the agent's requests must all name one resource the same
way, so ``https://Site.example:443/a.png#x`` and ``https://site.example/a.png`` are one key. ada-url
implements the WHATWG parser that browsers use, so we do not re-implement its many edge cases.
"""

from __future__ import annotations

import re

import ada_url

#: Longest URL accepted anywhere (browsers cope with ~2 MB, but no real resource URL needs more).
MAX_URL_LENGTH = 8192


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class BadURL(ValueError):
    """Not an absolute http(s) URL we can key a resource by."""


def normalize_url(raw: str, base: str | None = None) -> str:
    """The WHATWG serialisation of ``raw`` (resolved against ``base``) without its fragment.

    Raises :class:`BadURL` for anything that is not an absolute ``http``/``https`` URL, for URLs
    with control characters (a CR/LF must never reach a header) and for absurd lengths.
    """
    if not raw or len(raw) > MAX_URL_LENGTH:
        raise BadURL("the URL is empty or too long")
    if _CONTROL_CHARACTERS.search(raw):
        # The WHATWG parser strips tabs and newlines silently; we refuse them instead, since a URL
        # that needed them is not one a browser produced.
        raise BadURL("the URL contains control characters")
    try:
        url = ada_url.URL(raw, base) if base else ada_url.URL(raw)
    except ValueError:
        raise BadURL("not a valid absolute URL") from None
    if url.protocol not in ("http:", "https:"):
        raise BadURL("only http and https URLs are accepted")
    if not url.hostname:
        raise BadURL("the URL has no host")
    url.hash = ""
    href = url.href
    if len(href) > MAX_URL_LENGTH:
        raise BadURL("the URL is too long")
    return href
