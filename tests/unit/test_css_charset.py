"""Stylesheet encodings: chosen per CSS Syntax 3, decoded as browsers (WHATWG) decode them.

Fixtures are known Unicode text encoded here, so each test states the text a browser shows.
"""

import codecs

import pytest

from middleware.rewrite.charset import decode_stylesheet, utf8_stylesheet_bytes
from middleware.rewrite.css import rewrite_stylesheet_bytes

SHEET = "https://site.example/css/main.css"
JAPANESE = 'body { content: "日本語のテキスト"; font-family: "ＭＳ Ｐゴシック" }\n'


def make_url(url: str, kind: str) -> str:
    return f"/_cobrowse/resources?url={url}&as={kind}"


# --- Japanese ---------------------------------------------------------------------------------

def test_shift_jis_named_by_charset_rule():
    text = '@charset "Shift_JIS";\n' + JAPANESE
    assert decode_stylesheet(text.encode("cp932")) == (text, "shift_jis")


def test_shift_jis_named_only_by_http_charset():
    assert decode_stylesheet(JAPANESE.encode("cp932"), http_charset="Shift_JIS") == (JAPANESE, "shift_jis")
    # Without it the same bytes are not UTF-8: the label is what makes the text right.
    assert decode_stylesheet(JAPANESE.encode("cp932"))[0] != JAPANESE


def test_shift_jis_is_decoded_with_the_windows_extensions_browsers_use():
    # ① (NEC row 13), 髙 (IBM extension) and ～ (0x8160, U+FF5E as in the WHATWG index) are what a
    # browser shows; Python's own "shift_jis" codec rejects the first two and reads 0x8160 as U+301C.
    text = 'a::before { content: "①髙～" }'
    body = text.encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        body.decode("shift_jis")
    assert decode_stylesheet(body, http_charset="sjis") == (text, "shift_jis")


def test_shift_jis_lone_bytes_are_errors_not_private_use():
    # cp932 maps 0xA0 and 0xFD..0xFF to U+F8F0.. ; WHATWG's Shift_JIS decoder reports errors.
    assert decode_stylesheet(b"a\xa0b\xfdc\xffd", "shift_jis")[0] == "a\ufffdb\ufffdc\ufffdd"


def test_euc_jp():
    assert decode_stylesheet(JAPANESE.encode("euc_jp"), "EUC-JP") == (JAPANESE, "euc-jp")


def test_euc_jp_decodes_like_a_browser():
    # Hand-built bytes: ① is 0xADA1 (NEC row 13), 0xA1C1 is U+FF5E in the WHATWG index, 0x8E 0xB1 is
    # half-width ｱ, 0x8F 0xB0 0xA1 is the JIS X 0212 character 丂.
    body = b'a::before { content: "' + b"\xad\xa1\xa1\xc1\x8e\xb1\x8f\xb0\xa1" + b'" }'
    assert decode_stylesheet(body, "euc-jp")[0] == 'a::before { content: "①～ｱ丂" }'


def test_euc_jp_malformed_sequences_become_one_replacement_each():
    # A lead byte before ASCII gives the ASCII back; an invalid pair is one error.
    assert decode_stylesheet(b"\xa4a\xa4\x80b\xff", "euc-jp")[0] == "\ufffda\ufffdb\ufffd"


# --- Chinese ----------------------------------------------------------------------------------

def test_gb18030():
    text = '@charset "GB18030";\np::after { content: "简体中文 𠀀 ¥" }\n'  # 𠀀 needs a 4-byte sequence
    assert decode_stylesheet(text.encode("gb18030")) == (text, "gb18030")


def test_gbk_and_gb2312_labels_decode_as_gb18030():
    text = 'p::after { content: "简体中文 𠀀" }'
    body = text.encode("gb18030")
    assert decode_stylesheet(body, "gb2312") == (text, "gbk")
    assert decode_stylesheet(body, "GBK") == (text, "gbk")


def test_gbk_0x80_is_the_euro_sign():
    assert decode_stylesheet(b'p::after { content: "\x80" }', "gbk")[0] == 'p::after { content: "€" }'


# --- windows-1252 and its aliases ---------------------------------------------------------------

def test_windows_1252_euro_and_undefined_bytes():
    # 0x80 is €; 0x81 is undefined in Python's cp1252 but U+0081 for browsers.
    body = b'@charset "windows-1252";\na::after { content: "caf\xe9 \x80 \x81\x8d\x8f\x90\x9d" }'
    text, encoding = decode_stylesheet(body)
    assert encoding == "windows-1252"
    assert text == '@charset "windows-1252";\na::after { content: "café € \x81\x8d\x8f\x90\x9d" }'


@pytest.mark.parametrize("label", ["iso-8859-1", "latin1", "ascii", "US-ASCII"])
def test_latin1_and_ascii_labels_mean_windows_1252(label):
    assert decode_stylesheet(b"\x80\x93x\x94", label) == ("€“x”", "windows-1252")


# --- byte order marks ---------------------------------------------------------------------------

@pytest.mark.parametrize("codec, bom, name", [
    ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16le"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16be"),
    ("utf-8", codecs.BOM_UTF8, "utf-8"),
])
def test_bom_wins_and_is_stripped(codec, bom, name):
    body = bom + JAPANESE.encode(codec)
    # Even an HTTP charset and a referrer charset lose to a BOM.
    assert decode_stylesheet(body, "shift_jis", "euc-jp") == (JAPANESE, name)


def test_utf8_bom_beats_a_contradicting_charset_rule():
    text = '@charset "shift_jis";\n' + JAPANESE
    assert decode_stylesheet(codecs.BOM_UTF8 + text.encode("utf-8")) == (text, "utf-8")


# --- precedence ---------------------------------------------------------------------------------

def test_http_charset_beats_charset_rule():
    text = '@charset "windows-1252";\n' + JAPANESE
    assert decode_stylesheet(text.encode("cp932"), http_charset="shift_jis") == (text, "shift_jis")


def test_referrer_charset_only_when_nothing_else_says():
    body = JAPANESE.encode("cp932")
    assert decode_stylesheet(body, referrer_charset="shift_jis") == (JAPANESE, "shift_jis")
    assert decode_stylesheet(body, "utf-8", "shift_jis")[1] == "utf-8"
    ruled = '@charset "utf-8";\n'.encode() + body
    assert decode_stylesheet(ruled, referrer_charset="shift_jis")[1] == "utf-8"


def test_default_is_utf8():
    assert decode_stylesheet(JAPANESE.encode("utf-8")) == (JAPANESE, "utf-8")


@pytest.mark.parametrize("body", [
    b' @charset "shift_jis";',  # not at the very start
    b"@charset 'shift_jis';",  # single quotes
    b'@charset  "shift_jis";',  # two spaces
    b'@CHARSET "shift_jis";',  # upper case
    b'@charset "shift_jis"',  # no semicolon
])
def test_only_the_exact_charset_rule_counts(body):
    assert decode_stylesheet(body, referrer_charset="euc-jp")[1] == "euc-jp"


def test_unknown_labels_fall_through_to_the_next_source():
    body = '@charset "shift_jis";\n'.encode() + JAPANESE.encode("cp932")
    assert decode_stylesheet(body, http_charset="no-such-charset")[1] == "shift_jis"
    bogus = b'@charset "bogus";\n' + JAPANESE.encode("euc_jp")
    assert decode_stylesheet(bogus, "", "EUC-JP") == ('@charset "bogus";\n' + JAPANESE, "euc-jp")
    assert decode_stylesheet(b"a{}", "x-nope", "y-nope") == ("a{}", "utf-8")


@pytest.mark.parametrize("label", ["utf-16", "UTF-16BE", "utf-16le", "unicode"])
def test_charset_rule_naming_utf16_means_utf8(label):
    text = f'@charset "{label}";\n' + JAPANESE
    assert decode_stylesheet(text.encode("utf-8")) == (text, "utf-8")


def test_http_charset_utf16_without_bom_is_utf16le():
    assert decode_stylesheet("a{}".encode("utf-16-le"), "utf-16") == ("a{}", "utf-16le")


# --- malformed bytes ------------------------------------------------------------------------------

@pytest.mark.parametrize("label, body, text", [
    ("utf-8", b"a\xffb\xc3", "a\ufffdb\ufffd"),
    ("shift_jis", b"a\x81", "a\ufffd"),
    ("euc-jp", b"a\xa4", "a\ufffd"),
    ("gb18030", b"a\xffb", "a\ufffdb"),
    ("utf-16le", b"a\x00\x00\xd8b\x00", "a\ufffdb"),  # a lone surrogate
    ("big5", b"a\xfe", "a\ufffd"),
])
def test_invalid_bytes_become_replacement_characters(label, body, text):
    assert decode_stylesheet(body, label)[0] == text


# --- serving as UTF-8 --------------------------------------------------------------------------

def test_utf8_bytes_replace_the_leading_charset_rule_only():
    text = '@charset "Shift_JIS";\n/* @charset "x"; */ a { content: "日本" }'
    expected = '@charset "utf-8";\n/* @charset "x"; */ a { content: "日本" }'
    assert utf8_stylesheet_bytes(text) == expected.encode()


def test_utf8_bytes_have_no_bom():
    assert utf8_stylesheet_bytes("a{}") == b"a{}"


@pytest.mark.parametrize("codec, label", [
    ("cp932", "Shift_JIS"), ("euc_jp", "EUC-JP"), ("gb18030", "GB18030"), ("cp1252", "windows-1252"),
])
def test_rewrite_bytes_serves_utf8_with_urls_rewritten(codec, label):
    words = "café" if codec == "cp1252" else "日本語のテキスト" if codec != "gb18030" else "简体中文"
    source = f'@charset "{label}";\na::before {{ content: "{words}"; background: url(../img/bg.png) }}\n'
    body, encoding = rewrite_stylesheet_bytes(source.encode(codec), SHEET, make_url)
    assert encoding == label.lower()
    assert body.decode("utf-8") == (
        f'@charset "utf-8";\na::before {{ content: "{words}";'
        ' background: url("/_cobrowse/resources?url=https://site.example/img/bg.png&as=image") }\n')


def test_rewrite_bytes_uses_http_and_referrer_charsets():
    source = f'{JAPANESE}i {{ background: url(i.png) }}'
    expected = (f'{JAPANESE}i {{ background: url("/_cobrowse/resources'
                '?url=https://site.example/css/i.png&as=image") }').encode()
    assert rewrite_stylesheet_bytes(source.encode("cp932"), SHEET, make_url, http_charset="shift_jis") == \
        (expected, "shift_jis")
    assert rewrite_stylesheet_bytes(source.encode("euc_jp"), SHEET, make_url, referrer_charset="euc-jp") == \
        (expected, "euc-jp")
