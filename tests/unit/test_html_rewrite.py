"""Snapshot rewriting and sanitising: every rule one by one, exactness, and an XSS corpus.

Expected outputs are written out by hand. ``A(url, kind)`` is what the test's own ``make_url``
returns for an absolute ``url``, escaped as it appears inside a rebuilt attribute value; ``CSS``
is the same URL as the CSS rewriter writes it inside ``<style>``.

The XSS corpus is checked by ``PolicyChecker``, an html.parser scan written apart from the rewriter,
and (when Chromium is there) by Chromium's own HTML parser, since mutation XSS lives exactly where
html.parser and browsers disagree.
"""

from __future__ import annotations

import html
import re
import time
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware.rewrite.html import rewrite_snapshot, srcset_pieces

PAGE = "https://site.example/shop/page.html"
HERE = "https://site.example/shop/"


def make_url(url: str, kind: str) -> str:
    return f"/_cobrowse/resources?url={quote(url, safe='')}&as={kind}"


def A(url: str, kind: str = "image") -> str:
    """The replacement for an absolute ``url`` as written in a rebuilt attribute."""
    return html.escape(make_url(url, kind))


def CSS(url: str, kind: str = "image") -> str:
    """The replacement as the CSS rewriter writes it: a quoted url()."""
    return f'url("{make_url(url, kind)}")'


def rewrite(markup: str, page: str = PAGE) -> str:
    return rewrite_snapshot(markup, page, make_url)


# --- an independent checker -------------------------------------------------------------------

NOISE = re.compile(r"[\x00-\x20\x7f]+")
SCRIPT_URL = ("javascript:", "vbscript:", "data:text/html")
URL_ATTRIBUTES = {"href", "src", "srcset", "imagesrcset", "action", "formaction", "data", "poster",
                  "background", "xlink:href", "values", "from", "to", "by", "content", "style",
                  "dynsrc", "lowsrc", "code", "codebase", "archive", "cite"}
ANIMATIONS = {"animate", "set", "animatetransform", "animatemotion", "animatecolor"}


class PolicyChecker(HTMLParser):
    """Re-parse an output with plain html.parser and list whatever the snapshot must never hold."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "noscript", "base", "portal"):
            self.problems.append(f"<{tag}>")
        values = {}
        for name, value in attrs:
            values.setdefault(name, value or "")
            if name.startswith("on") or name in ("formaction", "ping", "srcdoc"):
                self.problems.append(f"{tag} {name}")
            flat = NOISE.sub("", value or "").lower()
            if flat.startswith(SCRIPT_URL) or (
                    name in URL_ATTRIBUTES and re.search("(java|vb)script:", flat)):
                self.problems.append(f"{tag} {name}={value!r}")
        equiv = values.get("http-equiv")
        if tag == "meta" and equiv is not None:
            self.problems.append(f"meta http-equiv={equiv!r}")
        if tag in ("iframe", "frame") and values.get("src", "about:blank") != "about:blank":
            self.problems.append(f"{tag} src={values['src']!r}")
        if tag in ("object", "embed", "applet") and {"data", "src", "code"} & set(values):
            self.problems.append(f"{tag} loads something")
        if tag in ANIMATIONS and values.get("attributename", "").strip().lower() in (
                "href", "xlink:href"):
            self.problems.append(f"{tag} animates a link")
        rels = set(values.get("rel", "").lower().split())
        if tag == "link" and (rels & {"import", "prefetch", "modulepreload", "preconnect",
                                      "dns-prefetch", "manifest", "prerender"}
                              or ("preload" in rels
                                  and values.get("as") not in ("style", "font", "image"))):
            self.problems.append(f"link rel={values['rel']!r}")
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style and re.search("(java|vb)script:", NOISE.sub("", data).lower()):
            self.problems.append(f"script URL in a style sheet: {data!r}")


def policy_problems(output: str) -> list[str]:
    checker = PolicyChecker()
    checker.feed(output)
    checker.close()
    return checker.problems


def test_the_checker_sees_what_it_must():
    # The raw vectors are caught: the checker is not vacuous.
    for bad in ['<script>x</script>', '<img src=x onerror=y>', '<a href=" java\tscript:x">',
                '<meta http-equiv=refresh content="0">', '<iframe srcdoc="x">', '<base href=/>',
                '<object data=x>', '<svg><set attributeName=href to=x /></svg>',
                '<link rel=import href=x>', '<style>a{b:url(javascript:x)}</style>']:
        assert policy_problems(bad), bad


# --- resources rewritten to the endpoint, each with its kind ----------------------------------

@pytest.mark.parametrize("markup, expected", [
    ('<img src="a.png" alt="A">', f'<img src="{A(HERE + "a.png")}" alt="A">'),
    ('<img srcset="a.png 1x, /b.png 2x">',
     f'<img srcset="{A(HERE + "a.png")} 1x, {A("https://site.example/b.png")} 2x">'),
    ('<picture><source srcset="a.webp" type="image/webp"><source src="b.png"><img src="c.png">'
     '</picture>',
     f'<picture><source srcset="{A(HERE + "a.webp")}" type="image/webp">'
     f'<source src="{A(HERE + "b.png")}"><img src="{A(HERE + "c.png")}"></picture>'),
    ('<link rel="stylesheet" href="s.css">',
     f'<link rel="stylesheet" href="{A(HERE + "s.css", "style")}">'),
    ('<LINK REL="Alternate StyleSheet" HREF="s.css" TITLE="t">',
     f'<LINK REL="Alternate StyleSheet" HREF="{A(HERE + "s.css", "style")}" TITLE="t">'),
    ('<link rel="icon" href="/favicon.ico">',
     f'<link rel="icon" href="{A("https://site.example/favicon.ico")}">'),
    ('<link rel="shortcut icon" href="f.ico">',
     f'<link rel="shortcut icon" href="{A(HERE + "f.ico")}">'),
    ('<link rel="apple-touch-icon" href="t.png" sizes="180x180">',
     f'<link rel="apple-touch-icon" href="{A(HERE + "t.png")}" sizes="180x180">'),
    ('<link rel="mask-icon" href="m.svg" color="#000">',
     f'<link rel="mask-icon" href="{A(HERE + "m.svg")}" color="#000">'),
    ('<link rel="preload" as="style" href="p.css">',
     f'<link rel="preload" as="style" href="{A(HERE + "p.css", "style")}">'),
    ('<link rel="preload" as="font" href="f.woff2" type="font/woff2">',
     f'<link rel="preload" as="font" href="{A(HERE + "f.woff2", "font")}" type="font/woff2">'),
    ('<link rel="preload" as="image" href="i.png" imagesrcset="i.png 1x, i2.png 2x">',
     f'<link rel="preload" as="image" href="{A(HERE + "i.png")}" '
     f'imagesrcset="{A(HERE + "i.png")} 1x, {A(HERE + "i2.png")} 2x">'),
    ('<video poster="p.jpg"></video>', f'<video poster="{A(HERE + "p.jpg")}"></video>'),
    ('<input type="image" src="go.png" alt="Go">',
     f'<input type="image" src="{A(HERE + "go.png")}" alt="Go">'),
    ('<input type="IMAGE" src="go.png">', f'<input type="IMAGE" src="{A(HERE + "go.png")}">'),
    ('<svg><image href="i.png"/><image xlink:href="j.png" width="5"/></svg>',
     f'<svg><image href="{A(HERE + "i.png")}"/>'
     f'<image xlink:href="{A(HERE + "j.png")}" width="5"/></svg>'),
    ('<svg><filter><feImage href="f.png" preserveAspectRatio="none"/></filter></svg>',
     f'<svg><filter><feImage href="{A(HERE + "f.png")}" preserveAspectRatio="none"/>'
     '</filter></svg>'),
    ('<svg><use href="sprite.svg#icon"/><use xlink:href="/s.svg#b"></use></svg>',
     f'<svg><use href="{A(HERE + "sprite.svg")}#icon"/>'
     f'<use xlink:href="{A("https://site.example/s.svg")}#b"></use></svg>'),
    ('<body background="bg.gif"><table background="t.gif"><tr><td background="c.gif">x</td></tr>'
     '</table></body>',
     f'<body background="{A(HERE + "bg.gif")}"><table background="{A(HERE + "t.gif")}"><tr>'
     f'<td background="{A(HERE + "c.gif")}">x</td></tr></table></body>'),
])
def test_resource_attributes(markup, expected):
    assert rewrite(markup) == expected


def test_make_url_gets_the_absolute_normalised_url_and_the_kind():
    calls = []

    def recorder(url: str, kind: str) -> str:
        calls.append((url, kind))
        return make_url(url, kind)

    rewrite_snapshot('<img src="HTTPS://CDN.Example:443/a%7e b.png#x">'
                     '<link rel=stylesheet href="//cdn.example/s.css">'
                     '<link rel=preload as=font href=f.woff2>', PAGE, recorder)
    assert calls == [("https://cdn.example/a%7e%20b.png", "image"),
                     ("https://cdn.example/s.css", "style"),
                     (HERE + "f.woff2", "font")]


@pytest.mark.parametrize("markup", [
    '<svg><use href="#icon"></use><use xlink:href=" #b"></use></svg>',
    '<img src="data:image/png;base64,iVBORw0KGgo=" srcset="data:image/png;base64,AA== 2x">',
    '<img src="blob:https://site.example/0b2c">',
    '<img src="about:blank">',
    '<img src="">',
    '<img alt="no source">',
])
def test_non_http_references_stay_byte_for_byte(markup):
    assert rewrite(markup) == markup


@pytest.mark.parametrize("link", [
    '<link rel="preload" as="script" href="x.js">',
    '<link rel="preload" as="fetch" href="x.json" crossorigin>',
    '<link rel="preload" href="x">',
    '<link rel="prefetch" href="next.html">',
    '<link rel="modulepreload" href="m.js">',
    '<link rel="preconnect" href="https://cdn.example">',
    '<link rel="dns-prefetch" href="//cdn.example">',
    '<link rel="manifest" href="/manifest.json">',
    '<link rel="prerender" href="/next">',
    '<link rel="import" href="/component.html">',
])
def test_links_that_only_fetch_or_run_something_are_removed(link):
    assert rewrite(f"<head>{link}</head>") == "<head></head>"


# --- URLs the agent may follow: made absolute, not rewritten ----------------------------------

@pytest.mark.parametrize("markup, expected", [
    ('<a href="../x?y=1#frag">x</a>', '<a href="https://site.example/x?y=1#frag">x</a>'),
    ('<a href="HTTPS://Site.Example:443/a b">x</a>', '<a href="https://site.example/a%20b">x</a>'),
    ('<area href="/m" shape="rect">', '<area href="https://site.example/m" shape="rect">'),
    ('<form action="post.php" method="post"></form>',
     '<form action="https://site.example/shop/post.php" method="post"></form>'),
    ('<video src="v.mp4"><source src="v.webm"><track src="t.vtt"></video>',
     f'<video src="{HERE}v.mp4"><source src="{HERE}v.webm"><track src="{HERE}t.vtt"></video>'),
    ('<audio src="/a.mp3"></audio>', '<audio src="https://site.example/a.mp3"></audio>'),
    ('<svg><a xlink:href="p.html"><text>t</text></a></svg>',
     f'<svg><a xlink:href="{HERE}p.html"><text>t</text></a></svg>'),
    ('<link rel="canonical" href="/c">', '<link rel="canonical" href="https://site.example/c">'),
])
def test_followed_urls_are_made_absolute(markup, expected):
    assert rewrite(markup) == expected


@pytest.mark.parametrize("markup", [
    '<a href="#top">x</a>',
    '<a href="mailto:hi@site.example">x</a>',
    '<a href="tel:+123">x</a>',
    '<a href="https://other.example/path?q=1#f">x</a>',
    '<form action=""></form>',
])
def test_followed_urls_that_need_nothing_stay(markup):
    assert rewrite(markup) == markup


# --- srcset -------------------------------------------------------------------------------

def test_srcset_keeps_descriptors_and_allows_commas_in_urls():
    markup = '<img srcset="a,b.png 1x, c.png 2x,d.png 300w, e.png 1.5x 200h">'
    assert rewrite(markup) == (
        f'<img srcset="{A(HERE + "a,b.png")} 1x, {A(HERE + "c.png")} 2x,'
        f'{A(HERE + "d.png")} 300w, {A(HERE + "e.png")} 1.5x 200h">')


def test_srcset_trailing_commas_end_a_candidate():
    # "x.png," is a URL followed by the comma that ends its candidate; "y.png,z.png" is one URL.
    markup = '<img srcset="x.png, y.png,z.png 2x,, w.png">'
    assert rewrite(markup) == (
        f'<img srcset="{A(HERE + "x.png")}, {A(HERE + "y.png,z.png")} 2x,, {A(HERE + "w.png")}">')


def test_srcset_whitespace_parentheses_and_data_urls():
    markup = ('<img srcset="\n  a.png (future, syntax) 1x,\n'
              '  data:image/png;base64,AAA= 2x,\tb.png\t3x\n">')
    assert rewrite(markup) == (
        f'<img srcset="\n  {A(HERE + "a.png")} (future, syntax) 1x,\n'
        f'  data:image/png;base64,AAA= 2x,\t{A(HERE + "b.png")}\t3x\n">')


def test_srcset_replacements_cannot_split_a_candidate():
    markup = '<img srcset="a.png 1x, b.png 2x">'
    output = rewrite_snapshot(markup, PAGE, lambda url, kind: f"/r?u={url} ,x,")
    assert output == (f'<img srcset="/r?u={HERE}a.png%20%2Cx%2C 1x, '
                      f'/r?u={HERE}b.png%20%2Cx%2C 2x">')


@given(st.text(alphabet=" ,()ab.\t\n1x", max_size=40))
def test_srcset_pieces_give_the_value_back(value):
    pieces = list(srcset_pieces(value))
    assert "".join(piece for piece, _ in pieces) == value
    assert all(piece and not piece.endswith(",") for piece, is_url in pieces if is_url)


# --- the base URL ---------------------------------------------------------------------------

def test_base_href_is_used_then_removed():
    markup = ('<html><head><base href="/assets/" target="_self"></head>'
              '<body><img src="a.png"><a href="p.html">p</a></body></html>')
    assert rewrite(markup) == (
        f'<html><head></head><body><img src="{A("https://site.example/assets/a.png")}">'
        '<a href="https://site.example/assets/p.html">p</a></body></html>')


def test_base_href_applies_to_urls_before_it_too():
    # Browsers resolve against the document's base URL, whatever comes first in the source.
    markup = ('<link rel="stylesheet" href="s.css"><base href="https://cdn.example/x/">'
              '<img src="a.png">')
    assert rewrite(markup) == (
        f'<link rel="stylesheet" href="{A("https://cdn.example/x/s.css", "style")}">'
        f'<img src="{A("https://cdn.example/x/a.png")}">')


def test_only_the_first_base_with_an_href_counts_and_every_base_goes():
    markup = ('<base target="_blank"><base href="sub/"><base href="https://other.example/">'
              '<img src="a.png">')
    assert rewrite(markup) == f'<img src="{A(HERE + "sub/a.png")}">'


@pytest.mark.parametrize("href", ["javascript:alert(1)//", "data:text/html,x", "about:blank"])
def test_a_base_that_is_not_http_falls_back_to_the_page(href):
    assert rewrite(f'<base href="{href}"><img src="a.png">') == f'<img src="{A(HERE + "a.png")}">'


# --- style sheets, through the CSS rewriter -------------------------------------------------

def test_style_element_is_rewritten():
    markup = ('<style>@import "x.css"; body{background:url(bg.png)} '
              '@font-face{font-family:f;src:url(f.woff2)}</style>')
    assert rewrite(markup) == (
        f'<style>@import "{make_url(HERE + "x.css", "style")}"; '
        f'body{{background:{CSS(HERE + "bg.png")}}} '
        f'@font-face{{font-family:f;src:{CSS(HERE + "f.woff2", "font")}}}</style>')


def test_style_attribute_is_rewritten_and_escaped():
    markup = "<div style=\"background: url('bg.png') no-repeat\">d</div>"
    assert rewrite(markup) == (
        f'<div style="background: {html.escape(CSS(HERE + "bg.png"))} no-repeat">d</div>')


def test_style_resolves_against_the_base():
    markup = ('<base href="/b/"><style>a{background:url(x.png)}</style>'
              '<p style="background:url(y.png)">')
    assert rewrite(markup) == (
        f'<style>a{{background:{CSS("https://site.example/b/x.png")}}}</style>'
        f'<p style="background:{html.escape(CSS("https://site.example/b/y.png"))}">')


def test_style_without_urls_stays_byte_for_byte():
    markup = ("<style>\n.a > .b::before { content: '\\201C' }\n</style>"
              "<p style='color: red;margin:0'>p</p>")
    assert rewrite(markup) == markup


def test_style_element_text_never_holds_a_less_than_sign():
    # Inside <svg> a <style>'s text is markup, so a "<" there could open a tag.
    markup = '<style><!--\nb{color:red}\na::before{content:"<b>\\<"}\n--></style>'
    assert rewrite(markup) == (
        '<style>\nb{color:red}\na::before{content:"\\3c b>\\3c "}\n--></style>')


def test_script_urls_in_css_are_made_inert():
    markup = ('<style>@import "javascript:alert(1)"; a{background:url(JavaScript:x)}</style>'
              '<p style="background:url(\'vbscript:x\')">p</p>')
    assert rewrite(markup) == (
        '<style>@import "about:invalid#alert(1)"; a{background:url(about:invalid#x)}</style>'
        '<p style="background:url(&#x27;about:invalid#x&#x27;)">p</p>')


# --- what is removed, rule by rule ----------------------------------------------------------

@pytest.mark.parametrize("script", [
    "<script>alert(1)</script>",
    '<SCRIPT type="text/javascript">alert(1)</SCRIPT>',
    '<script src="https://cdn.example/x.js" async></script>',
    '<script>a = "</scrip>" + "</scriptx>"; b = 1 < 2;</script >',
    "<script>x</script\n>",
    '<script>x</SCRIPT foo="bar">',
    '<script type="module">import x from "./x.js"</script>',
    '<script><!-- document.write("<script></script>") --></script>',
    "<script/>x</script>",
    '<script type="application/ld+json">{"a": "</p>"}</script>',
    "<noscript><img src=\"pixel.gif\"><p>Please enable JavaScript</p></noscript>",
    '<noscript><style>.js-only{display:none}</style></noscript>',
    "<noembed><b>no plugin</b></noembed>",
    "<noframes><p>no frames</p></noframes>",
])
def test_scripts_and_noscript_go_with_their_content(script):
    assert rewrite(f"<p>a</p>{script}<p>b</p>") == "<p>a</p><p>b</p>"


def test_svg_script_and_unclosed_script():
    assert rewrite('<svg><script href="x.js"/><script>alert(1)</script><circle r="1"/></svg>') == (
        '<svg><circle r="1"/></svg>')
    assert rewrite("<p>a</p><script>alert(1)<p>never shown</p>") == "<p>a</p>"


@pytest.mark.parametrize("markup, expected", [
    ('<body onload="init()" class="home">', '<body class="home">'),
    ('<img src="data:image/gif;base64,R0lGODlh" onerror="x()" onload=y>',
     '<img src="data:image/gif;base64,R0lGODlh">'),
    ('<div ONCLICK="x()">d</div>', "<div>d</div>"),
    ('<svg onload="x()" viewBox="0 0 1 1"></svg>', '<svg viewBox="0 0 1 1"></svg>'),
    ("<details open ontoggle=alert(1)>", "<details open>"),
    ("<input autofocus onfocus=alert(1)>", "<input autofocus>"),
    ('<a href="https://site.example/" onmouseover="x()" onclick="y()">a</a>',
     '<a href="https://site.example/">a</a>'),
])
def test_event_handlers_are_removed(markup, expected):
    assert rewrite(markup) == expected


@pytest.mark.parametrize("meta, expected", [
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', ""),
    ('<meta http-equiv="Refresh" content="5">', ""),
    ('<meta http-equiv="Set-Cookie" content="a=b">', ""),
    ('<meta http-equiv="Content-Security-Policy" content="default-src *">', ""),
    ('<meta http-equiv="X-UA-Compatible" content="IE=edge">', ""),
    ('<meta charset="iso-8859-1">', '<meta charset="utf-8">'),
    ('<meta charset="utf-8">', '<meta charset="utf-8">'),
    ('<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">',
     '<meta charset="utf-8">'),
    ('<meta name="viewport" content="width=device-width, initial-scale=1">',
     '<meta name="viewport" content="width=device-width, initial-scale=1">'),
])
def test_meta(meta, expected):
    assert rewrite(f"<head>{meta}</head>") == f"<head>{expected}</head>"


SCRIPT_VALUES = [
    "javascript:alert(1)", " JaVaScRiPt:alert(1)", "jav&#x09;ascript:alert(1)",
    "jav&#x0A;ascript:alert(1)", "&#106;avascript:alert(1)", "javascript&colon;alert(1)",
    "&#x01;javascript:alert(1)", "java\x00script:alert(1)", "vbscript:msgbox(1)", "VBScript:x",
    "data:text/html,<script>alert(1)</script>", "DATA:TEXT/HTML;base64,PHNjcmlwdD4=",
    " data: text/html,x",
]


@pytest.mark.parametrize("value", SCRIPT_VALUES)
@pytest.mark.parametrize("template, expected", [
    ('<a href="{}">x</a>', "<a>x</a>"),
    ('<img src="{}" alt="i">', '<img alt="i">'),
    ('<form action="{}"></form>', "<form></form>"),
    ('<div title="{}" id="d">d</div>', '<div id="d">d</div>'),
    ('<svg><a xlink:href="{}"><text>t</text></a></svg>', "<svg><a><text>t</text></a></svg>"),
    ('<math href="{}">m</math>', "<math>m</math>"),
])
def test_script_urls_are_removed_from_any_attribute(template, expected, value):
    assert rewrite(template.format(value)) == expected


@pytest.mark.parametrize("srcset", ["a.png 1x, javascript:alert(1) 2x", "JavaScript:x",
                                    "a.png 1x,&#x6a;avascript:x 2x", "data:text/html,x 1x"])
def test_a_script_url_in_any_srcset_candidate_removes_the_srcset(srcset):
    # (Whitespace splits a srcset candidate, so "jav&#x09;ascript:" is no script URL there.)
    assert rewrite(f'<img srcset="{srcset}" alt="i">') == '<img alt="i">'


def test_data_urls_that_are_not_documents_stay():
    markup = '<a href="data:image/png;base64,AAAA">i</a><img src="data:image/svg+xml,%3Csvg/%3E">'
    assert rewrite(markup) == markup


def test_frames_keep_their_box_but_show_nothing():
    markup = ('<iframe src="https://x.example/" srcdoc="<p>hi</p>" width="300" height="150">'
              '<p>fallback</p></iframe><frameset><frame src="a.html" name="f"></frameset>')
    assert rewrite(markup) == ('<iframe src="about:blank" width="300" height="150"></iframe>'
                               '<frameset><frame src="about:blank" name="f"></frameset>')


def test_plugins_lose_what_they_would_load():
    markup = ('<object data="movie.swf" type="application/x-shockwave-flash" width="10">'
              '<param name="quality" value="high">fallback</object><embed src="a.swf" width="5">'
              '<applet code="A.class" codebase="/j" archive="a.jar" width="5"></applet>')
    assert rewrite(markup) == ('<object type="application/x-shockwave-flash" width="10">'
                               '<param name="quality" value="high">fallback</object>'
                               '<embed width="5"><applet width="5"></applet>')


def test_svg_animations_of_links_are_removed_with_their_end_tag():
    markup = ('<svg><a><animate attributeName="href" values="javascript:alert(1)"></animate>'
              '<set attributeName="xlink:href" to="javascript:alert(1)"/>'
              '<animate attributeName="opacity" from="0" to="1" dur="1s"/><text>t</text></a></svg>')
    assert rewrite(markup) == ('<svg><a><animate attributeName="opacity" from="0" to="1" dur="1s"/>'
                               '<text>t</text></a></svg>')


def test_portal_is_removed_and_its_children_stay():
    assert rewrite('<portal src="https://x.example/"><p>x</p></portal>') == "<p>x</p>"


def test_declarative_shadow_dom_stays_and_is_rewritten():
    markup = ('<my-card><template shadowrootmode="open"><img src="a.png" onerror="x()">'
              '<script>alert(1)</script><slot></slot></template></my-card>')
    assert rewrite(markup) == ('<my-card><template shadowrootmode="open">'
                               f'<img src="{A(HERE + "a.png")}"><slot></slot></template></my-card>')


def test_formaction_ping_integrity_and_crossorigin_go_target_stays():
    markup = ('<form><button formaction="/x" type="submit">Go</button></form>'
              '<a href="https://site.example/x" ping="https://t.example/" target="_blank">x</a>'
              '<link rel="stylesheet" href="https://cdn.example/s.css" integrity="sha384-abc" '
              'crossorigin="anonymous">')
    assert rewrite(markup) == (
        '<form><button type="submit">Go</button></form>'
        '<a href="https://site.example/x" target="_blank">x</a>'
        f'<link rel="stylesheet" href="{A("https://cdn.example/s.css", "style")}">')


# --- raw text elements --------------------------------------------------------------------

@pytest.mark.parametrize("markup, expected", [
    ("<title>a &lt; b &amp; c</title>", "<title>a &lt; b &amp; c</title>"),
    ("<TITLE>x</TITLE>", "<TITLE>x</title>"),
    ("<textarea>\n<b>x</b></textarea>", "<textarea>\n&lt;b>x&lt;/b></textarea>"),
    ("<textarea>never closed", "<textarea>never closed</textarea>"),
    ("<xmp><b>&amp;</b></xmp>", "<pre>&lt;b&gt;&amp;amp;&lt;/b&gt;</pre>"),
    ("<plaintext><b>x", "<pre>&lt;b&gt;x</pre>"),
    ("<style>a{}</STYLE><p>", "<style>a{}</style><p>"),
    ("<style>a{}</style ><p>", "<style>a{}</style><p>"),
    ("<style>a{}</style foo><p>", "<style>a{}</style><p>"),
    ("<style>a{}</styled></style><p>", "<style>a{}\\3c /styled></style><p>"),
    ("<iframe><p>not shown</p></iframe>", "<iframe></iframe>"),
])
def test_raw_text_elements(markup, expected):
    assert rewrite(markup) == expected


# --- passthrough --------------------------------------------------------------------------

UNTOUCHED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Caf&eacute; &amp; Bar &lt;3</title>
<!-- a comment with <b>markup</b> & entities &amp; -- dashes -->
<style>body { margin: 0; color: #333 } .a > .b::before { content: "\\201C" } .c { background: url(data:image/gif;base64,R0lGOD==) }</style>
</head>
<body class='home page' data-x=1 hidden>
<h1 id="top">Hello&nbsp;world &copy; 2024 &#x1F600; &#169 AT&amp;T &notanentity; 1 &lt; 2 &gt; 0</h1>
<p>Text with <em>emphasis</em>, <a href="https://site.example/about">a link</a>, <a href="#top">an anchor</a> and <a href="mailto:hi@site.example">mail</a>.</p>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
<input type="text" value="a &quot;quoted&quot; value" disabled="">
<textarea name="t">line 1
line 2 &lt;b&gt;</textarea>
<pre>  spaced
\ttabbed</pre>
<svg viewBox="0 0 10 10" xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="g"><stop offset="0"></stop></linearGradient></defs><path d="M0 0L10 10" fill="url(#g)"></path><use href="#g"></use></svg>
<my-widget some-attr="1" x-on:click="open = true" @click.prevent="go"><template shadowrootmode="open"><slot></slot></template></my-widget>
<table><tbody><tr><td>1</td></tr></tbody></table>\r
<p>caf\u00e9 \u65e5\u672c\u8a9e \U0001F600</p>
</body></html>
"""


def test_an_untouched_document_is_byte_identical():
    assert rewrite(UNTOUCHED) == UNTOUCHED


def test_unchanged_tags_keep_their_quoting_and_case_changed_ones_are_rebuilt():
    markup = "<DIV Class=a data-x='1' hidden><IMG SRC=a.png ALT='it''s'></DIV>"
    assert rewrite(markup) == (
        f"<DIV Class=a data-x='1' hidden><IMG SRC=\"{A(HERE + 'a.png')}\" ALT=\"it\"></DIV>")


def test_duplicate_attributes_the_first_wins_when_rebuilt():
    markup = '<img src="a.png" src="b.png" alt="x" alt="y" onerror="z">'
    assert rewrite(markup) == f'<img src="{A(HERE + "a.png")}" alt="x">'


def test_comments_end_where_browsers_end_them():
    assert rewrite("<!-->x<!--->y<!-- a --!>z<!-- open") == (
        "<!---->x<!---->y<!-- a -->z<!-- open-->")


def test_processing_instructions_cdata_and_bogus_comments_are_dropped():
    assert rewrite('<?xml version="1.0"?><![CDATA[x]]><!ELEMENT a><p>p</p></ p>') == "<p>p</p>"


# --- the XSS corpus -----------------------------------------------------------------------

XSS_CORPUS = [
    # OWASP XSS filter evasion cheat sheet
    ('<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>', []),
    ('<IMG SRC="javascript:alert(\'XSS\');">', ["<img"]),
    ("<IMG SRC=JaVaScRiPt:alert('XSS')>", ["<img"]),
    ('<IMG SRC=`javascript:alert("RSnake says, \'XSS\'")`>', ["<img"]),
    ('<a onmouseover="alert(document.cookie)">xxs link</a>', ["<a>", "xxs link"]),
    ('<IMG """><SCRIPT>alert("XSS")</SCRIPT>"\\>', ["<img"]),
    ("<IMG SRC=# onmouseover=\"alert('xxs')\">", ["<img"]),
    ('<IMG SRC= onmouseover="alert(\'xxs\')">', ["<img"]),
    ('<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>', ["<img"]),
    ('<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105'
     '&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039'
     '&#0000088&#0000083&#0000083&#0000039&#0000041">', ["<img"]),
    ("<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;"
     "&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>", ["<img"]),
    ("<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74"
     "&#x28&#x27&#x58&#x53&#x53&#x27&#x29>", ["<img"]),
    ("<IMG SRC=\"jav\tascript:alert('XSS');\">", ["<img"]),
    ("<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">", ["<img"]),
    ("<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">", ["<img"]),
    ("<IMG SRC=\"jav&#x0D;ascript:alert('XSS');\">", ["<img"]),
    ("<IMG SRC=\" &#14;  javascript:alert('XSS');\">", ["<img"]),
    ('<SCRIPT/XSS SRC="http://xss.example/xss.js"></SCRIPT><p>after</p>', ["<p>after</p>"]),
    ('<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>text', ["<body", "text"]),
    ('<<SCRIPT>alert("XSS");//\\<</SCRIPT>', []),
    ("<SCRIPT SRC=http://xss.example/xss.js?< B >", []),
    ("<iframe src=http://xss.example/scriptlet.html <", []),
    ('</TITLE><SCRIPT>alert("XSS");</SCRIPT>', []),
    ("<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">", ["<input"]),
    ("<BODY BACKGROUND=\"javascript:alert('XSS')\">", ["<body"]),
    ("<IMG DYNSRC=\"javascript:alert('XSS')\">", ["<img"]),
    ("<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
     ["<style>", "<li>xss"]),
    ("<svg/onload=alert('XSS')>", ["<svg"]),
    ("<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">", ["<link"]),
    ('<META HTTP-EQUIV="Link" Content="<http://xss.example/xss.css>; REL=stylesheet">', []),
    ("<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">", ["<img"]),
    ("<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">", []),
    ('<META HTTP-EQUIV="refresh" CONTENT="0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K">',
     []),
    ("<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>", ["<iframe"]),
    ('<IFRAME SRC=# onmouseover="alert(document.cookie)"></IFRAME>', ["<iframe"]),
    ("<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>", ["<frame "]),
    ("<TABLE><TD BACKGROUND=\"javascript:alert('XSS')\">cell", ["<td>", "cell"]),
    ("<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">d</DIV>", ["<div", "d</div>"]),
    ("<DIV STYLE=\"background-image: url(&#1;javascript:alert('XSS'))\">d</DIV>", ["<div"]),
    ("<BASE HREF=\"javascript:alert('XSS');//\"><img src=a.png>", ["<img"]),
    ('<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.example/scriptlet.html"></OBJECT>', ["<object"]),
    ('<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciPjxzY3JpcHQ+YWxlcnQoMSk8L3NjcmlwdD48L3N2Zz4="'
     ' type="image/svg+xml" AllowScriptAccess="always"></EMBED>', ["<embed"]),
    ('<SCRIPT a=">" SRC="httx://xss.example/xss.js"></SCRIPT><p>after</p>', ["<p>after</p>"]),
    ('<SCRIPT "a=\'>\'" SRC="httx://xss.example/xss.js"></SCRIPT><p>after</p>', ["<p>after</p>"]),
    ('<A HREF="http://66.102.7.147/">XSS</A>', ['<a href="http://66.102.7.147/">xss</a>']),
    # Script URLs, spelled every way a browser still reads as one
    ('<a href="jav&#x0A;ascript:alert(1)">link</a>', ["<a>link</a>"]),
    ('<a href="&#x6a;avascript&colon;alert(1)">link</a>', ["link"]),
    ('<a href=javascript&colon;alert&lpar;1&rpar;>link</a>', ["link"]),
    ('<a href="java&Tab;script:alert(1)">link</a>', ["link"]),
    ('<a href="&#1;javascript:alert(1)">link</a>', ["link"]),
    ('<a href="java\x00script:alert(1)">link</a>', ["link"]),
    ('<a href="vbscript:msgbox(1)">link</a>', ["link"]),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">link</a>', ["link"]),
    ('<img src=x:x onerror=alert(1)>', ['<img src="x:x">']),
    ('<img srcset="a.png 1x, javascript:alert(1) 2x">', ["<img"]),
    ('<object data="javascript:alert(1)"></object>', ["<object>"]),
    ('<embed src="data:text/html,<script>alert(1)</script>">', ["<embed>"]),
    ('<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>', ["<iframe></iframe>"]),
    ('<form><button formaction=javascript:alert(1)>X</button></form>', ["<button>x</button>"]),
    ('<isindex action=javascript:alert(1) type=image>', ["<isindex"]),
    ('<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">XSS</text></a></svg>', ["<text", "xss"]),
    ('<svg><a><animate attributeName=href values=javascript:alert(1) /><text x=20 y=20>Click</text></a></svg>',
     ["<text", "click"]),
    ('<svg><set attributeName="xlink:href" to="javascript:alert(1)"/><a><text>t</text></a></svg>', ["<text>t"]),
    ('<math><maction actiontype="statusline#" xlink:href="javascript:alert(1)">CLICK</maction></math>', ["click"]),
    ('<math href="javascript:alert(1)">CLICK</math>', ["<math>click"]),
    ('<base href="javascript:alert(1)//"><a href="x">x</a>', ["<a href="]),
    ('<link rel=import href="data:text/html,<script>alert(1)</script>">', []),
    ('<style>@import "javascript:alert(1)";</style>', ["<style>"]),
    ('<p style="background:url(javascript:alert(1))">p</p>', ["<p", "p</p>"]),
    # Handlers
    ('<body onload=alert(1)>x', ["<body>x"]),
    ('<details open ontoggle=alert(1)>', ["<details open>"]),
    ('<input autofocus onfocus=alert(1)>', ["<input autofocus>"]),
    ('<img src=x oNeRrOr=alert(1)>', ["<img"]),
    ('<img/src/onerror=alert(1)>', ["<img"]),
    ('<img src="a" / onerror=alert(1)>', ["<img"]),
    ('<img src="x"onerror=alert(1)>', ["<img"]),
    ('<img src==x onerror=alert(1)>', ["<img"]),
    ('<img src=x on\x00error=alert(1)>', ["<img"]),
    ('<div/onclick=alert(1)>d</div>', ["<div>d</div>"]),
    ('<a title="a\'b" \'c=d onclick=alert(1)>x</a>', ["<a", "x</a>"]),
    # Mutation XSS: markup that parsers read differently
    ('<svg><style><img src=x onerror=alert(1)></style></svg>', ["<svg><style>"]),
    ('<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>', ["<math>"]),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', ["<img"]),
    ('<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', ["<img"]),
    ('<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>', ["<form>"]),
    ('<math><mi><mglyph><svg><mtext><textarea><path id="</textarea><img onerror=alert(1) src=1>">',
     ["<textarea>", "<img"]),
    ('<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>', ["<img src>"]),
    ('<noframes><img title="</noframes><img src onerror=alert(1)>"></noframes>', ["<img src>"]),
    ('<iframe><img title="</iframe><img src onerror=alert(1)>"></iframe>', ["<iframe></iframe><img src>"]),
    ('<title><p title="</title><img src=x onerror=alert(1)>">', ["<title>", "<img"]),
    ('<xmp><p title="</xmp><img src=x onerror=alert(1)>">', ["<pre>", "<img"]),
    ('<style></style x><img src=x onerror=alert(1)>', ["<img"]),
    ('<style/><img src=x onerror=alert(1)></style>', ["<style"]),
    ('<select><style><img src=x onerror=alert(1)></style></select>', ["<select>"]),
    ('<svg><desc><style><img src=x onerror=alert(1)></style></desc></svg>', ["<desc>"]),
    ('<svg><![CDATA[><img src=x onerror=alert(1)>]]></svg>', ["<svg>", "<img"]),
    ('<![CDATA[><img src=x onerror=alert(1)>]]>', ["<img"]),
    ('<!--><img src=x onerror=alert(1)>-->', ["<img"]),
    ('<!-- --!><img src=x onerror=alert(1)> -->', ["<img"]),
    ('<!-- -- ><img src=x onerror=alert(1)> -->', []),
    ('<script><!--<script></script><img src=x onerror=alert(1)>--></script><p>after</p>', ["<p>after</p>"]),
    ('<svg><script>alert(1)</script><circle r="1"/></svg>', ['<circle r="1"/>']),
    ('<svg><script xlink:href="data:,alert(1)"/></svg>', []),
    ('<scr<script>ipt>alert(1)</script>', []),
    ('<img\x00 src=x onerror=alert(1)>', []),
    ('<a\xa0onclick=alert(1)>x</a>', ["x</a>"]),
    ('<img src=x\xa0onerror=alert(1)>', ["<img"]),
    ('<img src=x\x0bonerror=alert(1)>', ["<img"]),
    ('</div title="<img src=x onerror=alert(1)>">', []),
    ('</ div><img src=x onerror=alert(1)>', ["<img"]),
    ('<div </div><img src=x onerror=alert(1)>', ["<img"]),
    ('<textarea/><img src=x onerror=alert(1)></textarea>', ["<textarea"]),
    ('<plaintext><img src=x onerror=alert(1)>', ["<pre>"]),
    ('<?xml x="?><img src=x onerror=alert(1)>"?>', ["<img"]),
    ('<!DOCTYPE html PUBLIC "><img src=x onerror=alert(1)>">', ["<img"]),
    ('<template shadowrootmode="open"><img src=x onerror=alert(1)><script>alert(1)</script></template>',
     ['<template shadowrootmode="open"><img']),
    ('<svg><foreignObject><iframe srcdoc="<script>alert(1)</script>"></iframe></foreignObject></svg>',
     ["<iframe></iframe>"]),
    ('<portal src="https://evil.example/"></portal><p>p</p>', ["<p>p</p>"]),
    ('<meta http-equiv="set-cookie" content="a=b"><meta http-equiv="Content-Security-Policy" content="x">', []),
]


@pytest.mark.parametrize("vector, keeps", XSS_CORPUS, ids=[f"xss{n}" for n in range(len(XSS_CORPUS))])
def test_xss_corpus_is_inert(vector, keeps):
    output = rewrite(vector)
    assert policy_problems(output) == [], output
    for visible in keeps:  # and what the page shows survives
        assert visible in output.lower(), output


def test_the_corpus_is_large_enough():
    assert len(XSS_CORPUS) >= 40
    assert sum(bool(policy_problems(vector)) for vector, _ in XSS_CORPUS) >= 60


# --- malformed input ----------------------------------------------------------------------

MALFORMED = [
    "", "<", ">", "<<<<", "</", "</>", "<!", "<!-", "<!--", "<!-->", "<?", "<a", "<a ", "<a b",
    '<a b="', "<a b='c", "<a b=c", "<img src", "<div <p>", "<p>unclosed <b>bold <i>it",
    "</p></div></body>", "<a href=x></a></a></a>", "&", "&#", "&#x", "&#xZZ;", "&amp", "&#0;",
    "a &#foo; b &#bar; <b>c</b>", "<p>\x00<b\x00>\x00</p>", "<br/><br /><hr//>", "<p/x/y/z>",
    "<a =b>", "<a b==c>", '<a b="c"d="e">', "<a\tb\nc\fd\re>", "<A HREF='x' HREF='y' href=z>",
    "<table><tr><td><td></table>", "<select><option><option></select>", "<svg><p><math><mi>x",
    "<![CDATA[", "<!DOCTYPE", "<!doctype html", "<style>", "<script>", "<textarea>", "<title>",
    "<style></style", "<script></script", "<iframe>", "<noscript>", "<xmp>", "<plaintext>",
    "<template><template><template>", "<svg><use href=''/><use href/>", "<img srcset=>",
    "<img srcset=',,, ,'>", "<base>", "<base href>", "<meta>", "<meta http-equiv>", "<link>",
    "<link rel>", "<frame>", "<object>", "\ufeff<!DOCTYPE html>\u2028\u0085",
    "<p title=\"\U0001F600\">\U0001F600</p>", "<" + "a" * 5000 + ">", "<p " + "x " * 5000 + ">",
]


@pytest.mark.parametrize("markup", MALFORMED)
def test_malformed_input_never_crashes_nor_lets_script_through(markup):
    output = rewrite(markup)
    assert isinstance(output, str)
    assert policy_problems(output) == []


TOKENS = ["<", ">", "/", "</", "<!--", "-->", "--!>", "<!", "<?", "<![CDATA[", "]]>", "=", '"', "'",
          " ", "\t", "\n", "\x00", "&", "&#", "&#x6a;", ";", "a", "p", "svg", "math", "style",
          "script", "title", "textarea", "noscript", "iframe", "img", "src", "onerror", "href",
          "javascript:", "alert(1)", "x", "srcset", "1x,", "base", "meta", "http-equiv", "refresh",
          "template", "use", "animate", "attributeName", "formaction", "#", "url(", ")"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_markup_never_crashes_nor_lets_script_through(tokens):
    output = rewrite("".join(tokens))
    assert policy_problems(output) == [], output


# --- performance --------------------------------------------------------------------------

def test_a_large_snapshot_rewrites_in_linear_time():
    block = ('<div class="card" data-id="1234"><img src="/img/a.png" srcset="/img/a.png 1x, '
             '/img/a@2x.png 2x" alt="x"><a href="/page?x=1&amp;y=2">Link &amp; text</a>'
             '<p style="color:red;background:url(bg.png)">Lorem ipsum dolor sit amet, '
             'consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore '
             'magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco.</p>'
             '</div>\n')
    document = f"<!DOCTYPE html><html><head></head><body>{block * 5200}</body></html>"
    assert len(document) > 2_000_000 and document.count("<img") == 5200  # 20 800 elements
    started = time.monotonic()
    rewrite(document)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("unit", ["</a", "<a", "<!x", "<!--", "<?", "&#x; ", "<a b c d e f ",
                                  "<img\x00 a>", "<script><!--<script>", "<p title='", "</ "])
def test_pathological_repetitions_stay_linear(unit):
    # html.parser rescans to the end of the buffer for each unterminated construct.
    started = time.monotonic()
    rewrite(unit * (1_000_000 // len(unit)))
    assert time.monotonic() - started < 20
