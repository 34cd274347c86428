"""The content sniffer on its own (middleware/sniff.py): documents are refused whatever they claim
to be; genuine resources, including the mislabelled ones browsers accept, pass."""

from __future__ import annotations

import pytest

from middleware.sniff import HTML_TAGS, SNIFF_BYTES, refusal
from tests.support.resources import CSS, WOFF2, png

RASTER = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
          "image/x-icon", "image/vnd.microsoft.icon"]
FONTS = ["font/woff", "font/woff2", "font/ttf", "font/otf", "application/font-woff",
         "application/vnd.ms-fontobject", "application/x-font-ttf", "application/font-sfnt"]


@pytest.mark.parametrize("tag", HTML_TAGS + (b"<!--",))
@pytest.mark.parametrize("prefix", [b"", b"  \r\n\t"])
@pytest.mark.parametrize("end", [b" ", b">"])
def test_every_whatwg_html_signature_is_refused_as_an_image_font_or_unknown(tag, prefix, end):
    body = prefix + tag.lower() + end + b"rest of a document"
    for content_type in [*RASTER, *FONTS, "application/octet-stream"]:
        assert refusal(content_type, body) is not None, (content_type, body)
        assert refusal(content_type, prefix + tag + end) is not None, (content_type, tag)


@pytest.mark.parametrize("tag", [t for t in HTML_TAGS])
def test_html_signatures_are_refused_as_css_and_svg(tag):
    for case in (tag, tag.lower(), tag.title()):
        assert refusal("text/css", b"\n " + case + b">x") is not None
        assert refusal("image/svg+xml", case + b" x") is not None


def test_a_tag_name_must_end_for_the_signature_to_match():
    """``<Bold`` is not ``<B``: only the WHATWG terminators (and tab, newline, slash) end a tag."""
    assert refusal("application/octet-stream", b"<Bold text") is None
    assert refusal("application/octet-stream", b"<B\ttext") is not None
    assert refusal("application/octet-stream", b"<BR/>") is not None


@pytest.mark.parametrize("body", [
    b"", b"a{color:red}", CSS, b"<!-- a{} -->", b"<!-- unterminated CDO then css a{}",
    b"@charset \"utf-8\"; a{}", b"/* <html> */ a{}", b"\xef\xbb\xbfa{}",
    b"a{content:'<html>'}", b".x<y{}",
])
def test_real_stylesheets_pass(body):
    assert refusal("text/css", body) is None
    assert refusal("text/css; charset=utf-8", body) is None


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html>", b"<!-- note --><!DOCTYPE html>", b"<!-- a --> <!-- b -->\n<body>",
    b"<?xml version='1.0'?><x/>", b"<meta charset=utf-8>", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    b"\xef\xbb\xbf<html>", "<html>".encode("utf-16-le").join([b"\xff\xfe", b""]),
    "<html>".encode("utf-16-be").join([b"\xfe\xff", b""]), b"%PDF-1.4",
])
def test_documents_labelled_as_css_are_refused(body):
    assert refusal("text/css", body) is not None


@pytest.mark.parametrize("body", [
    png(), b"\xff\xd8\xff\xdb", b"GIF87a", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"\x00\x00\x00\x20ftypavif", b"BM", b"\x00\x00\x01\x00", b"\x00\x00\x02\x00",
])
def test_any_image_signature_passes_for_any_raster_type(body):
    for content_type in RASTER:
        assert refusal(content_type, body) is None, content_type


@pytest.mark.parametrize("body", [
    b"", b"\x89PNX", b"GIF90a", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"<svg/>", b"\x00" * 64,
    b"just text", b"{\"json\": true}",
])
def test_non_images_fail_for_raster_types(body):
    for content_type in RASTER:
        assert refusal(content_type, body) is not None, content_type


@pytest.mark.parametrize("body", [
    WOFF2, b"wOFF", b"OTTO", b"\x00\x01\x00\x00", b"true", b"typ1", b"ttcf", b"\x00" * 34 + b"LP",
])
def test_font_signatures_pass_for_any_font_type(body):
    for content_type in FONTS:
        assert refusal(content_type, body) is None, content_type


@pytest.mark.parametrize("body", [b"", b"wOF3", b"\x00" * 40, png()])
def test_non_fonts_fail_for_font_types(body):
    for content_type in FONTS:
        assert refusal(content_type, body) is not None, content_type


@pytest.mark.parametrize("body", [
    b"<svg/>", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"\xef\xbb\xbf\n<?xml version='1.0' encoding='utf-8'?>\n<svg>",
    b"<!-- a comment -->\n<svg>", b"<!DOCTYPE svg>\n<svg>",
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd" [<!ENTITY a "<html>">]><svg>',
    b"<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>",
    b"<?xml version='1.0'?>" + b"<!--" + b"x" * 8000 + b"-->" + b"<svg>",
])
def test_svg_documents_pass(body):
    assert refusal("image/svg+xml", body) is None


@pytest.mark.parametrize("body", [
    b"", b"svg", b"<html><svg/></html>", b"<!DOCTYPE html><svg>", b"<?xml version='1.0'?><html/>",
    b"<?xml version='1.0'?><!DOCTYPE html><svg/>", b"<svgx/>", b"<!-- never closed <svg>",
    b"<?xml never closed <svg>", b"<div><svg></svg></div>", png(),
])
def test_non_svg_fails_as_svg(body):
    assert refusal("image/svg+xml", body) is not None


def test_only_the_head_of_a_body_is_read():
    """A body is judged by its first bytes; what follows (even markup) does not matter, and a huge
    body costs no more than a small one."""
    assert refusal("image/png", png() + b"<html>" * 100_000) is None
    assert refusal("text/css", b" " * (SNIFF_BYTES + 10) + b"<html>") is None
    assert refusal("text/css", b" " * (SNIFF_BYTES - 10) + b"<html>") is not None
