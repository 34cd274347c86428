"""Stylesheet URL rewriting: only the URLs change, each resolved against the sheet and kind-tagged.

Expected outputs are written out by hand: ``R(url, kind)`` is just the text the test's own
``make_url`` produces, wrapped as the rewriter must write it.
"""

import time

import pytest
import tinycss2

from middleware.rewrite.css import rewrite_style_attribute, rewrite_stylesheet

SHEET = "https://site.example/css/main.css"


def make_url(url: str, kind: str) -> str:
    return f"/_cobrowse/resources?url={url}&as={kind}"


def R(url: str, kind: str = "image") -> str:
    """The ``url("...")`` the rewriter writes for ``url`` (already absolute)."""
    return f'url("/_cobrowse/resources?url={url}&as={kind}")'


def S(url: str, kind: str) -> str:
    """The bare ``"..."`` string the rewriter writes for string forms (@import, image-set)."""
    return f'"/_cobrowse/resources?url={url}&as={kind}"'


def rewrite(css: str, sheet: str = SHEET) -> str:
    return rewrite_stylesheet(css, sheet, make_url)


class Recorder:
    """A make_url that remembers what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, url: str, kind: str) -> str:
        self.calls.append((url, kind))
        return make_url(url, kind)


# --- every way a sheet names a URL ------------------------------------------------------------

X = "https://site.example/css/x.png"


@pytest.mark.parametrize("source, expected", [
    ("a { background: url(x.png) }", f"a {{ background: {R(X)} }}"),
    ('a { background: url("x.png") }', f"a {{ background: {R(X)} }}"),
    ("a { background: url('x.png') }", f"a {{ background: {R(X)} }}"),
    # Whitespace inside a quoted url() is outside the string, so it stays.
    ('a { background: url(  "x.png"\t) }',
     f'a {{ background: url(  "/_cobrowse/resources?url={X}&as=image"\t) }}'),
    ("a { background: url(  x.png  ) }", f"a {{ background: {R(X)} }}"),
    ("a { background: URL(x.png) }", f"a {{ background: {R(X)} }}"),
    ("a { background: u\\72 l(x.png) }", f"a {{ background: {R(X)} }}"),  # an escaped function name
    # The tokenizer decodes escapes: a\29 b.png is a)b.png; we write the ")" escaped again.
    ("a { background: url(a\\29 b.png) }",
     'a { background: url("/_cobrowse/resources?url=https://site.example/css/a\\29 b.png&as=image") }'),
    ("a { background: url(\\78 .png) }", f"a {{ background: {R(X)} }}"),
    ("a{background:url(x.png)no-repeat}", f"a{{background:{R(X)}no-repeat}}"),
])
def test_url_forms(source, expected):
    assert rewrite(source) == expected


@pytest.mark.parametrize("source, expected", [
    ('@import "theme.css";', f'@import {S("https://site.example/css/theme.css", "style")};'),
    ("@import 'theme.css';", f'@import {S("https://site.example/css/theme.css", "style")};'),
    ("@import url(theme.css) screen;", f'@import {R("https://site.example/css/theme.css", "style")} screen;'),
    ('@import url("theme.css") layer(base) supports(display:grid) print;',
     f'@import {R("https://site.example/css/theme.css", "style")} layer(base) supports(display:grid) print;'),
    ('@IMPORT /* c */ "theme.css" screen and (min-width: 10px);',
     f'@IMPORT /* c */ {S("https://site.example/css/theme.css", "style")} screen and (min-width: 10px);'),
])
def test_import_forms(source, expected):
    assert rewrite(source) == expected


def test_image_set_candidates_may_be_bare_strings():
    source = ('a { background-image: image-set("one.png" 1x, url(two.png) 2x,'
              ' \'three.png\' type("image/png"));'
              ' b: -webkit-image-set(url("four.png") 1x, "five.png" 2x) }')
    base = "https://site.example/css/"
    expected = (f'a {{ background-image: image-set({S(base + "one.png", "image")} 1x,'
                f' {R(base + "two.png")} 2x, '
                f'{S(base + "three.png", "image")} type("image/png"));'
                f' b: -webkit-image-set({R(base + "four.png")} 1x, {S(base + "five.png", "image")} 2x) }}')
    # type("image/png") is a MIME type, not a URL, and is left alone.
    assert rewrite(source) == expected


@pytest.mark.parametrize("prop", [
    "cursor: url(x.png), auto", "list-style: url(x.png) inside", "mask-image: url(x.png)",
    "border-image: url(x.png) 30 round", "content: url(x.png)", "--custom: url(x.png)",
    "background: linear-gradient(red, blue), url(x.png)", "background: cross-fade(url(x.png), red)",
])
def test_image_urls_in_any_property(prop):
    assert rewrite(f"a {{ {prop} }}") == f"a {{ {prop.replace('url(x.png)', R(X))} }}"


# --- the "as" kind ----------------------------------------------------------------------------

def test_kinds_font_style_image():
    recorder = Recorder()
    source = """@import url(base.css);
@font-face { font-family: F; src: url(a.woff2) format("woff2"), url(a.woff) ; font-display: swap }
body { background: url(bg.png); cursor: url(c.cur), auto }
i { background: image-set("i.png" 1x, url(i2.png) 2x) }"""
    rewrite_stylesheet(source, SHEET, recorder)
    base = "https://site.example/css/"
    assert recorder.calls == [
        (base + "base.css", "style"),
        (base + "a.woff2", "font"),
        (base + "a.woff", "font"),
        (base + "bg.png", "image"),
        (base + "c.cur", "image"),
        (base + "i.png", "image"),
        (base + "i2.png", "image"),
    ]


def test_only_the_font_face_src_descriptor_is_a_font():
    recorder = Recorder()
    rewrite_stylesheet("@font-face { src: url(f.woff) } a { src: url(i.png) }", SHEET, recorder)
    assert [kind for _, kind in recorder.calls] == ["font", "image"]


def test_font_face_inside_media_is_still_a_font():
    source = "@media print { @font-face { src: local(F), url(f.woff) } }"
    font = R("https://site.example/css/f.woff", "font")
    expected = f"@media print {{ @font-face {{ src: local(F), {font} }} }}"
    assert rewrite(source) == expected


# --- nesting ----------------------------------------------------------------------------------

def test_nested_at_rules_three_levels_deep():
    source = """@media screen {
  @supports (display: grid) {
    @layer components {
      .card { background: url(card.png) }
      @container (min-width: 400px) { .wide { background: url(wide.png) } }
    }
  }
}"""
    expected = source.replace("url(card.png)", R("https://site.example/css/card.png")).replace(
        "url(wide.png)", R("https://site.example/css/wide.png"))
    assert rewrite(source) == expected


def test_nested_style_rules():
    source = (".a { color: red; &:hover { background: url(h.png) }"
              " .b & { @media print { background: url(p.png) } } }")
    expected = (f'.a {{ color: red; &:hover {{ background: {R("https://site.example/css/h.png")} }}'
                f' .b & {{ @media print {{ background: {R("https://site.example/css/p.png")} }} }} }}')
    assert rewrite(source) == expected


def test_at_rule_preludes_that_are_not_resources_stay():
    # @namespace and @document name URLs to compare against, not to load; their blocks still count.
    source = ("@namespace svg url(http://www.w3.org/2000/svg);\n"
              "@document url(https://site.example/) { a { background: url(d.png) } }\n"
              "@supports (background: url(s.png)) { b { color: red } }")
    expected = source.replace("url(d.png)", R("https://site.example/css/d.png"))
    assert rewrite(source) == expected


# --- resolution -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, absolute", [
    ("../img/x.png", "https://site.example/img/x.png"),
    ("/abs.png", "https://site.example/abs.png"),
    ("//cdn.example/x.png", "https://cdn.example/x.png"),
    ("?v=2", "https://site.example/css/main.css?v=2"),
    ("x.png?v=2", "https://site.example/css/x.png?v=2"),
    ("HTTPS://CDN.Example:443/y.png", "https://cdn.example/y.png"),
    ("http://other.example/z.png", "http://other.example/z.png"),
    ("ä.png", "https://site.example/css/%C3%A4.png"),
])
def test_urls_resolve_against_the_sheet(raw, absolute):
    assert rewrite(f"a {{ background: url({raw}) }}") == f"a {{ background: {R(absolute)} }}"


def test_each_sheet_resolves_against_its_own_url():
    assert rewrite("a{b:url(x.png)}", "https://cdn.example/lib/v1/lib.css") == \
        f'a{{b:{R("https://cdn.example/lib/v1/x.png")}}}'


def test_fragment_is_kept_on_the_replacement():
    # The resource is keyed without its fragment, but the SVG element reference must survive.
    assert rewrite("a { mask: url(icons.svg#star) }") == \
        'a { mask: url("/_cobrowse/resources?url=https://site.example/css/icons.svg&as=image#star") }'


@pytest.mark.parametrize("source", [
    "a { background: url(data:image/png;base64,iVBORw0KGgo=) }",
    'a { background: url("data:image/svg+xml;utf8,<svg xmlns=\'http://www.w3.org/2000/svg\'/>") }',
    "a { filter: url(#blur) }",
    'a { mask: url("#m") }',
    "a { background: url() }",
    'a { background: url("") }',
    "a { background: url(about:blank) }",
    "a { background: url(javascript:alert(1)) }",
    "a { background: url(ftp://site.example/x.png) }",
    '@import "data:text/css,a{}";',
    "@namespace url(http://www.w3.org/1999/xhtml);",
])
def test_non_resource_urls_are_left_byte_for_byte(source):
    recorder = Recorder()
    assert rewrite_stylesheet(source, SHEET, recorder) == source
    assert recorder.calls == []


# --- what is not a URL stays --------------------------------------------------------------------

def test_urls_in_comments_and_strings_stay():
    source = ('/* url(x.png) and @import "y.css"; */\n'
              'a::before { content: "url(x.png)"; background: url(real.png) }\n'
              '[data-bg="url(x.png)"] { font-family: "image-set(x.png)" }\n'
              "/* unterminated comment with url(z.png)")
    expected = source.replace("url(real.png)", R("https://site.example/css/real.png"))
    assert rewrite(source) == expected


def test_everything_else_is_preserved_exactly():
    source = ("@charset \"utf-8\";\n/* header */\n@unknown-rule foo { bar: baz }\n"
              ".a\\:b  >  .c {color:RED!important;background : url( x.png ) ;/* c */}\n"
              "@media (min-width:1px){.d{}}\n")
    expected = source.replace("url( x.png )", R(X))
    assert rewrite(source) == expected


# --- broken input ------------------------------------------------------------------------------

def test_unclosed_blocks_and_strings_do_not_crash():
    source = '@media screen { a { background: url(x.png); content: "open'
    expected = f'@media screen {{ a {{ background: {R(X)}; content: "open'
    assert rewrite(source) == expected


def test_bad_url_token_is_left_and_later_urls_still_rewritten():
    source = "a { background: url(a b) } b { background: url(x.png) }"
    assert rewrite(source) == f"a {{ background: url(a b) }} b {{ background: {R(X)} }}"


def test_url_token_unclosed_at_end_of_sheet():
    assert rewrite("a { background: url(x.png") == f"a {{ background: {R(X)}"


def test_stray_closing_brackets_and_junk():
    source = "}} a { background: url(x.png) ) ] } @ ; {{ url(x.png"
    assert rewrite(source) == f"}}}} a {{ background: {R(X)} ) ] }} @ ; {{{{ {R(X)}"


@pytest.mark.parametrize("source", [
    "", "a", "url(", "@import", "@import ;", "@font-face", 'a { b: "\\', "a{b:url(\\", "\x00url(x)",
    "image-set(", 'image-set("', "@media { @supports { @layer {",
])
def test_fragments_of_css_never_crash(source):
    assert isinstance(rewrite(source), str)


# --- hostile URLs ------------------------------------------------------------------------------

def urls_in(css: str) -> list[str]:
    """Every URL a CSS parser sees in url() tokens/functions (the check on our output)."""
    found: list[str] = []

    def walk(nodes):
        for node in nodes:
            if node.type == "url":
                found.append(node.value)
            elif node.type == "function" and node.lower_name == "url":
                found.extend(arg.value for arg in node.arguments if arg.type == "string")
            elif node.type == "function":
                walk(node.arguments)
            elif node.type in ("{} block", "() block", "[] block"):
                walk(node.content)

    walk(tinycss2.parse_component_value_list(css))
    return found


def test_hostile_replacements_are_escaped_and_reparse_to_one_url_each():
    evil = '")}</style><script>alert(1)</script>\\\n\r\f\'()x'

    def hostile(url, kind):
        return url + evil

    source = "a { background: url(x.png) } b { background: url('y.png'), url(z.png) }"
    output = rewrite_stylesheet(source, SHEET, hostile)
    assert "</style" not in output and "\n" not in output
    base = "https://site.example/css/"
    assert urls_in(output) == [base + "x.png" + evil, base + "y.png" + evil, base + "z.png" + evil]
    # Nothing leaked out of the strings: the rules are the same two rules.
    rules = tinycss2.parse_stylesheet(output, skip_whitespace=True)
    assert [tinycss2.serialize(rule.prelude).strip() for rule in rules] == ["a", "b"]


def test_hostile_source_urls_are_escaped_when_written_back():
    # url(a\"\)\\b.png) is the URL a")\b.png; the browser turns "\" into "/" and %-encodes the quote.
    source = 'a { background: url(a\\"\\)\\\\b.png) } b { color: red }'
    output = rewrite(source)
    assert urls_in(output) == ['/_cobrowse/resources?url=https://site.example/css/a%22)/b.png&as=image']
    assert output.endswith(" } b { color: red }")


def test_string_import_with_hostile_replacement():
    output = rewrite_stylesheet('@import "t.css"; a { color: red }', SHEET, lambda url, kind: '";} *{x:"')
    rules = tinycss2.parse_stylesheet(output, skip_whitespace=True)
    assert rules[0].type == "at-rule"
    assert [token.value for token in rules[0].prelude if token.type == "string"] == ['";} *{x:"']
    assert tinycss2.serialize(rules[1].prelude).strip() == "a"


# --- offsets ----------------------------------------------------------------------------------

def test_crlf_cr_and_form_feed_line_endings():
    source = ("/* one */\r\n@import url(a.css);\r\n\r\na {\r\n  background: url(x.png);\r\n}\r"
              "b { content: \"line\\\r\ncontinued\"; background: url('x.png') }\f"
              "c {\r\n\tbackground: image-set(\"x.png\" 1x)\r\n}\r\n")
    expected = (source.replace("url(a.css)", R("https://site.example/css/a.css", "style"))
                .replace("url(x.png)", R(X)).replace("url('x.png')", R(X))
                .replace('"x.png"', S(X, "image")))
    assert rewrite(source) == expected


def test_non_ascii_and_astral_characters_before_a_url_on_the_same_line():
    source = '/* 😀 日本 */ a::before { content: "é😀\x00"; background: url(x.png) }'
    assert rewrite(source) == source.replace("url(x.png)", R(X))


# --- style attributes ----------------------------------------------------------------------------

def test_style_attribute():
    source = "color: red; background: url(img/a.png) no-repeat; --x: url('/b.png')"
    expected = (f'color: red; background: {R("https://site.example/docs/img/a.png")} no-repeat;'
                f' --x: {R("https://site.example/b.png")}')
    assert rewrite_style_attribute(source, "https://site.example/docs/page.html", make_url) == expected


def test_style_attribute_leaves_data_urls():
    source = "background: url(data:image/gif;base64,R0lGODlhAQABAAAAACw=)"
    assert rewrite_style_attribute(source, "https://site.example/", make_url) == source


# --- size -------------------------------------------------------------------------------------

def test_a_large_sheet_rewrites_in_linear_time():
    rule = ".r{n} {{ background: url(img/{n}.png) no-repeat; /* padding {pad} */ }}\n"
    source = "".join(rule.format(n=n, pad="x" * 60) for n in range(10_000))
    assert len(source) > 1_000_000
    started = time.monotonic()
    output = rewrite(source)
    assert time.monotonic() - started < 10
    assert output.count('url("/_cobrowse/resources?url=https://site.example/css/img/') == 10_000
    assert output.startswith(f'.r0 {{ background: {R("https://site.example/css/img/0.png")} no-repeat;')
    assert output.endswith(f'.r9999 {{ background: {R("https://site.example/css/img/9999.png")} no-repeat;'
                           f' /* padding {"x" * 60} */ }}\n')
