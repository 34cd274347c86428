"""Stylesheet encodings, decided and decoded the way browsers do (CSS Syntax Level 3, section 3.2).

A stylesheet is decoded when it is first served to the agent and re-encoded as UTF-8, so a
Shift_JIS, EUC-JP, GB18030 or windows-1252 sheet renders for the agent exactly as it did for the
customer. Two things must match the customer's browser: which encoding is chosen ("determine the
fallback encoding") and how its bytes become characters (the WHATWG Encoding Standard). Labels are
resolved with ``webencodings`` (the WHATWG label table); the few places where Python's codec of the
same name decodes differently from a browser are listed in ``_DECODERS`` below.
"""

from __future__ import annotations

import codecs
import encodings.cp1252
import functools
import re
from collections.abc import Callable

import webencodings

__all__ = ["decode_stylesheet", "utf8_stylesheet_bytes"]

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16be"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
)

# CSS Syntax 3: only this exact byte form, at the very start and within the first 1024 bytes,
# names the encoding; anything looser (single quotes, extra spaces) is ignored by browsers too.
_CHARSET_RULE_BYTES = re.compile(rb'@charset "([^"]*)";')
_CHARSET_RULE_TEXT = re.compile(r'@charset "[^"]*";')


# Python's cp1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined; WHATWG maps them to the C1 controls of
# the same value. With every byte defined, decoding can never fail.
_WINDOWS_1252_TABLE = "".join(
    chr(byte) if char == "\ufffe" else char
    for byte, char in enumerate(encodings.cp1252.decoding_table)
)


def _decode_windows_1252(body: bytes) -> str:
    return codecs.charmap_decode(body, "strict", _WINDOWS_1252_TABLE)[0]


# Python's cp932 turns the lone bytes 0xA0, 0xFD, 0xFE, 0xFF into private-use characters; the WHATWG
# Shift_JIS decoder treats them as errors. Nothing else in cp932 decodes to U+F8F0..U+F8F3.
_CP932_LONE_BYTES = {code: "\ufffd" for code in range(0xF8F0, 0xF8F4)}


def _decode_shift_jis(body: bytes) -> str:
    return body.decode("cp932", "replace").translate(_CP932_LONE_BYTES)


def _gb18030_errors(error: UnicodeError) -> tuple[str, int]:
    """WHATWG's GBK/gb18030 decoder reads a lone 0x80 as the euro sign (as GBK did); Python errors."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    if error.object[error.start] == 0x80 and error.end == error.start + 1:
        return "\u20ac", error.end
    return "\ufffd", error.end


_GB18030_ERRORS = "cobrowse-whatwg-gb18030"
codecs.register_error(_GB18030_ERRORS, _gb18030_errors)


def _decode_gb18030(body: bytes) -> str:
    return body.decode("gb18030", _GB18030_ERRORS)


# One EUC-JP unit (or one malformed byte sequence, which becomes one U+FFFD as in the WHATWG decoder).
_EUC_JP_UNIT = re.compile(
    rb"(?P<ascii>[\x00-\x7f]+)"
    rb"|\x8e(?P<kana>[\xa1-\xdf])"
    rb"|(?P<jis0212>\x8f[\xa1-\xfe][\xa1-\xfe])"
    rb"|(?P<jis0208>[\xa1-\xfe][\xa1-\xfe])"
    rb"|\x8f[\xa1-\xfe][\x80-\xff]|[\x8e\x8f\xa1-\xfe][\x80-\xff]|[\x80-\xff]"
)


def _decode_euc_jp(body: bytes) -> str:
    """EUC-JP as the WHATWG decoder reads it.

    Browsers decode EUC-JP's two-byte characters with the same table as Shift_JIS (index jis0208,
    which is Windows' cp932 table: NEC row 13 such as ①, the NEC-selected IBM kanji, and e.g. 0xA1C1
    as U+FF5E). Neither Python codec does: ``euc_jp`` rejects row 13 and reads 0xA1C1 as U+301C;
    ``euc_jis_2004`` is JIS X 0213, which differs in the IBM rows and in every 0x8F sequence. So each
    two-byte character is moved to its Shift_JIS position and decoded with cp932; the rare 0x8F
    three-byte characters (JIS X 0212) go to Python's ``euc_jp``.
    """
    return "".join(_euc_jp_unit(match) for match in _EUC_JP_UNIT.finditer(body))


def _euc_jp_unit(match: re.Match[bytes]) -> str:
    if match["ascii"] is not None:
        return match["ascii"].decode("ascii")
    if match["kana"] is not None:
        return chr(0xFF61 - 0xA1 + match["kana"][0])
    if match["jis0208"] is not None:
        return _jis0208(match["jis0208"])
    if match["jis0212"] is not None:
        return _jis0212(match["jis0212"])
    return "\ufffd"


@functools.lru_cache(maxsize=4096)
def _jis0208(pair: bytes) -> str:
    pointer = (pair[0] - 0xA1) * 94 + (pair[1] - 0xA1)  # WHATWG's index pointer
    lead, trail = divmod(pointer, 188)  # ... and its Shift_JIS bytes
    sjis = bytes((lead + (0x81 if lead < 0x1F else 0xC1), trail + (0x40 if trail < 0x3F else 0x41)))
    try:
        return sjis.decode("cp932")
    except UnicodeDecodeError:
        return "\ufffd"


@functools.lru_cache(maxsize=1024)
def _jis0212(triple: bytes) -> str:
    try:
        return triple.decode("euc_jp")
    except UnicodeDecodeError:
        return "\ufffd"


# WHATWG encoding name -> decoder, where Python's same-named codec is not what browsers do.
# Every other encoding uses the codec webencodings pairs with the label, with errors="replace".
_DECODERS: dict[str, Callable[[bytes], str]] = {
    "windows-1252": _decode_windows_1252,  # also the labels iso-8859-1, latin1, ascii
    "shift_jis": _decode_shift_jis,  # Python's shift_jis lacks the NEC/IBM extensions
    "euc-jp": _decode_euc_jp,
    "gbk": _decode_gb18030,  # WHATWG: the GBK decoder *is* the gb18030 decoder (labels gbk, gb2312)
    "gb18030": _decode_gb18030,
    "big5": lambda body: body.decode("big5hkscs", "replace"),  # WHATWG Big5 includes HKSCS
    "euc-kr": lambda body: body.decode("cp949", "replace"),  # WHATWG EUC-KR is windows-949 (UHC)
}


def _lookup(label: str | None) -> webencodings.Encoding | None:
    """The WHATWG encoding for ``label``, or None for a missing or unknown label."""
    return webencodings.lookup(label) if label else None


def _decode(body: bytes, encoding: webencodings.Encoding) -> str:
    decoder = _DECODERS.get(encoding.name)
    if decoder is not None:
        return decoder(body)
    return encoding.codec_info.decode(body, "replace")[0]


def decode_stylesheet(
    body: bytes, http_charset: str | None = None, referrer_charset: str | None = None
) -> tuple[str, str]:
    """Decode a stylesheet's bytes as a browser would; return (text, WHATWG encoding name).

    The encoding is, in order: a byte order mark (stripped); the ``charset`` of the Content-Type the
    customer's browser saw; a leading ``@charset "label";``; the referring document's (or importing
    sheet's) encoding; UTF-8. Unknown labels are skipped. Malformed bytes become U+FFFD.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            encoding = webencodings.lookup(name)
            return _decode(body[len(bom):], encoding), encoding.name
    encoding = _lookup(http_charset) or _charset_rule(body) or _lookup(referrer_charset)
    encoding = encoding or webencodings.UTF8
    return _decode(body, encoding), encoding.name


def _charset_rule(body: bytes) -> webencodings.Encoding | None:
    match = _CHARSET_RULE_BYTES.match(body[:1024])
    if not match:
        return None
    encoding = _lookup(match.group(1).decode("latin-1"))
    if encoding is not None and encoding.name in ("utf-16be", "utf-16le"):
        # CSS Syntax 3: a sheet that could be read as ASCII to find this rule is not UTF-16.
        return webencodings.UTF8
    return encoding


def utf8_stylesheet_bytes(text: str) -> bytes:
    """Encode a decoded sheet as UTF-8 (no BOM) for serving.

    A leading ``@charset "...";`` becomes ``@charset "utf-8";`` so the served bytes never claim an
    encoding they are not in (a browser reads that rule when no Content-Type charset is present).
    """
    match = _CHARSET_RULE_TEXT.match(text)
    if match:
        text = '@charset "utf-8";' + text[match.end():]
    # "replace" only matters for lone surrogates a caller might pass in; decoded text has none.
    return text.encode("utf-8", "replace")
