"""Content sniffing: do a resource's leading bytes agree with the type it claims?

A customer's upload (or an origin's answer to a server-side fetch) says what it is through its
``Content-Type``, and the agent's browser is told that type with ``nosniff``. A type alone proves
nothing: a login page saved as ``logo.png``, an origin's HTML error page labelled ``text/css``, or a
script posted as ``image/png`` by someone holding an upload token. This module looks at the bytes
the way browsers do (the WHATWG MIME Sniffing Standard's signatures) and refuses a body that a
browser would not use as the declared kind of resource:

- **raster images** (``image/png``, ``jpeg``, ``gif``, ``webp``, ``avif``, ``bmp``, ``x-icon``):
  the bytes must start with a known image signature. Any of them is accepted for any raster type,
  because browsers decode images by their bytes and sites often label a PNG as JPEG or an ICO as
  PNG: refusing those would make the agent's view differ for no safety gain.
- **SVG** (``image/svg+xml``): after the XML prolog (BOM, whitespace, ``<?xml ...?>``, comments,
  ``<!DOCTYPE svg ...>``) the root element must be ``<svg`` (or ``<prefix:svg``). An XHTML or HTML
  document is refused. Script inside an SVG is not refused here: it is stored, and made harmless
  where served (``Content-Security-Policy: ... sandbox`` and ``nosniff``, see ``responses.py``).
- **fonts**: ``wOFF``, ``wOF2``, ``OTTO``, ``\\x00\\x01\\x00\\x00``, ``true``, ``typ1``, ``ttcf``,
  or an Embedded OpenType header (``LP`` at offset 34).
- **stylesheets** (``text/css``): must not begin, after a BOM, whitespace and complete HTML
  comments, with markup: an HTML or XML document signature (``<!DOCTYPE``, ``<html``, ``<script``,
  ``<?xml`` ...) or any other tag (``<meta``, ``<svg``). A lone ``<!--`` is CSS's own CDO token
  and stays allowed.
- **anything else**: refused if it looks like an HTML, XML or PDF document.

Only the first :data:`SNIFF_BYTES` bytes are read (:data:`SVG_PROLOG_BYTES` for an SVG's prolog),
so the cost does not grow with the body.
"""

from __future__ import annotations

import re

#: How much of a body the signatures look at (the WHATWG "resource header" is 1445 bytes).
SNIFF_BYTES = 1445
#: An SVG's root element may come after a long prolog (comments, a DOCTYPE with entities).
SVG_PROLOG_BYTES = 64 * 1024

#: WHATWG "HTML" signatures: after optional whitespace, case-insensitive, then a tag-terminating
#: byte. ``<!--`` is checked apart (CSS and SVG may legitimately start with it).
HTML_TAGS = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT",
    b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P",
)
#: Other documents a browser renders (or hands to a plug-in) rather than uses as a resource.
DOCUMENT_PREFIXES = (b"<?XML", b"%PDF-", b"%!PS-ADOBE-")
#: WHATWG's tag-terminating bytes are space and ``>``; a tab, a newline or ``/`` end a tag name
#: just as well in practice (``<html\n lang=en>``), so they count too.
_TAG_END = frozenset(b" \t\n\f\r>/")
_WHITESPACE = b" \t\n\f\r"

RASTER_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"BM"),  # BMP
    (0, b"\x00\x00\x01\x00"),  # ICO
    (0, b"\x00\x00\x02\x00"),  # CUR
    (4, b"ftyp"),  # ISO-BMFF: AVIF, HEIF (the brand is not checked: browsers decide by content)
)
FONT_SIGNATURES = (b"wOFF", b"wOF2", b"OTTO", b"\x00\x01\x00\x00", b"true", b"typ1", b"ttcf")

RASTER_TYPES = frozenset({
    "image/png", "image/jpeg", "image/pjpeg", "image/gif", "image/webp", "image/avif",
    "image/bmp", "image/x-icon", "image/vnd.microsoft.icon", "image/apng", "image/heic",
    "image/heif",
})
FONT_TYPES = frozenset({
    "font/woff", "font/woff2", "font/ttf", "font/otf", "font/collection", "font/sfnt",
    "application/font-woff", "application/font-sfnt", "application/vnd.ms-fontobject",
    "application/x-font-ttf", "application/x-font-otf", "application/x-font-woff",
})

_COMMENT_END = re.compile(rb"-->")
_MARKUP_START = re.compile(rb"<[A-Za-z!?/]")
_XML_NAME = re.compile(rb"[A-Za-z_][\w.:-]*")
_SVG_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")


def refusal(content_type: str, body: bytes) -> str | None:
    """Why ``body`` is not a resource of ``content_type``, or None when it may be one.

    ``content_type`` may carry parameters (``text/css; charset=utf-8``); they are ignored. The
    answer is a short phrase for an error message, such as ``"not a PNG, JPEG, ... image"``.
    """
    mimetype = content_type.split(";", 1)[0].strip().lower()
    if mimetype == "image/svg+xml":
        return _svg_refusal(body[:SVG_PROLOG_BYTES])
    head = body[:SNIFF_BYTES]
    if mimetype in RASTER_TYPES:
        if any(head[offset:offset + len(sig)] == sig for offset, sig in RASTER_SIGNATURES) \
                or _is_webp(head):
            return None
        return "the bytes are not a PNG, JPEG, GIF, WebP, AVIF, BMP or ICO image"
    if mimetype in FONT_TYPES:
        if head[:4] in FONT_SIGNATURES or head[34:36] == b"LP":
            return None
        return "the bytes are not a WOFF, WOFF2, TrueType, OpenType or EOT font"
    if mimetype == "text/css":
        text = _skip_html_comments(_ascii_view(head))
        if text.startswith(b"<!--"):  # an unterminated CDO: CSS, not a document
            return None
        # A stylesheet never starts with a tag (only CSS's ``<!--`` token, handled above): any
        # ``<`` followed by a name, ``!``, ``?`` or ``/`` is markup, listed by WHATWG or not.
        if looks_like_document(text) or _MARKUP_START.match(text):
            return "the bytes are an HTML or XML document, not a stylesheet"
        return None
    if looks_like_document(_ascii_view(head)):
        return "the bytes are an HTML, XML or PDF document"
    return None


def looks_like_document(head: bytes) -> bool:
    """Whether ``head`` starts, after whitespace, with an HTML, XML or PDF signature."""
    text = head.lstrip(_WHITESPACE).upper()
    if text.startswith(DOCUMENT_PREFIXES):
        return True
    if text.startswith(b"<!--") and len(text) > 4 and text[4] in _TAG_END:
        return True
    for tag in HTML_TAGS:
        if text.startswith(tag) and len(text) > len(tag) and text[len(tag)] in _TAG_END:
            return True
    return False


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:14] == b"WEBPVP"


def _ascii_view(head: bytes) -> bytes:
    """``head`` without a BOM; UTF-16 text re-encoded so that ASCII signatures can be matched."""
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
        return head[2:len(head) & ~1].decode(codec, "replace").encode("ascii", "replace")
    return head


def _skip_html_comments(text: bytes) -> bytes:
    """``text`` after leading whitespace and complete ``<!-- ... -->`` comments."""
    while True:
        text = text.lstrip(_WHITESPACE)
        if not text.startswith(b"<!--"):
            return text
        end = _COMMENT_END.search(text, 4)
        if end is None:
            return text
        text = text[end.end():]


def _svg_refusal(head: bytes) -> str | None:
    """None when the root element of the XML in ``head`` is ``svg``."""
    text = _ascii_view(head)
    while True:
        text = text.lstrip(_WHITESPACE)
        if text.startswith(b"<?"):  # the XML declaration, or a processing instruction
            end = text.find(b"?>")
            if end < 0:
                break
            text = text[end + 2:]
        elif text.startswith(b"<!--"):
            end = text.find(b"-->", 4)
            if end < 0:
                break
            text = text[end + 3:]
        elif text[:9].upper() == b"<!DOCTYPE":
            name = _XML_NAME.match(text[9:].lstrip(_WHITESPACE))
            root = name.group().lower() if name else b""
            if root != b"svg" and not root.endswith(b":svg"):
                return "the bytes are an HTML or XML document, not an SVG image"
            end = _doctype_end(text)
            if end < 0:
                break
            text = text[end:]
        else:
            break
    if _SVG_ROOT.match(text):
        return None
    return "the bytes are not an SVG image (its root element must be <svg>)"


def _doctype_end(text: bytes) -> int:
    """The index just after a ``<!DOCTYPE ...>`` (with an internal subset ``[...]``), or -1."""
    bracket = text.find(b"[")
    close = text.find(b">")
    if bracket >= 0 and (close < 0 or bracket < close):
        subset_end = text.find(b"]", bracket)
        if subset_end < 0:
            return -1
        close = text.find(b">", subset_end)
    return close + 1 if close >= 0 else -1
