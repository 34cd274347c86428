"""Rewrite the URLs a stylesheet loads so the agent fetches them through the resource service.

Every ``url()``, ``@import``, ``image-set()`` candidate and ``@font-face`` ``src`` is resolved
against the sheet's own URL and replaced by what ``make_url(absolute_url, kind)`` returns. Nothing
else changes: the sheet is tokenized with tinycss2 (so comments, strings and escapes are understood
exactly as a browser's CSS tokenizer understands them) and only the URL tokens are spliced in the
original text, leaving every other character - comments, whitespace, unknown or broken syntax - as
it was. URLs that do not name an http(s) resource (``data:``, ``#fragment``, empty) stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import tinycss2
from tinycss2.ast import (
    AtKeywordToken,
    Comment,
    CurlyBracketsBlock,
    FunctionBlock,
    IdentToken,
    LiteralToken,
    Node,
    ParenthesesBlock,
    SquareBracketsBlock,
    StringToken,
    URLToken,
    WhitespaceToken,
)

from ..urls import BadURL, normalize_url
from .charset import decode_stylesheet, utf8_stylesheet_bytes

__all__ = ["MakeURL", "rewrite_stylesheet", "rewrite_stylesheet_bytes", "rewrite_style_attribute"]

#: ``make_url(absolute_url, kind)`` -> the URL to write instead; kind is "style", "font" or "image".
MakeURL = Callable[[str, str], str]

# What CSS Syntax 3 preprocessing turns into "\n" (tinycss2 counts lines and columns after it).
_NEWLINE = re.compile(r"\r\n|[\r\n\f]")

# Escapes for the quoted CSS strings we write. Quotes, backslash and newlines could end the string
# or the token; ( ) < > are escaped too so the result is inert even inside <style> or an attribute.
# Hex escapes end with a space, which the CSS tokenizer consumes as part of the escape.
_STRING_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\"}
_STRING_ESCAPES.update({ord(char): f"\\{ord(char):x} " for char in "'()<>"})
_STRING_ESCAPES.update({code: f"\\{code:x} " for code in [*range(0x20), 0x7F]})

_IMAGE_SET_FUNCTIONS = ("image-set", "-webkit-image-set")


def rewrite_stylesheet(text: str, sheet_url: str, make_url: MakeURL) -> str:
    """Return ``text`` with each resource URL resolved against ``sheet_url`` and replaced."""
    return _Rewriter(text, sheet_url, make_url).run()


def rewrite_style_attribute(text: str, base_url: str, make_url: MakeURL) -> str:
    """Rewrite a ``style="..."`` declaration list; relative URLs resolve against the document's base."""
    # A declaration list tokenizes like a block's content, which the stylesheet walk already handles.
    return _Rewriter(text, base_url, make_url).run()


def rewrite_stylesheet_bytes(
    body: bytes,
    sheet_url: str,
    make_url: MakeURL,
    http_charset: str | None = None,
    referrer_charset: str | None = None,
) -> tuple[bytes, str]:
    """Decode a sheet as the customer's browser did, rewrite it, and return (UTF-8 bytes, encoding).

    The encoding returned is the one the sheet was read in; an ``@import``-ed sheet should be given
    it as ``referrer_charset``, as browsers fall back to the importing sheet's encoding.
    """
    text, encoding = decode_stylesheet(body, http_charset, referrer_charset)
    return utf8_stylesheet_bytes(rewrite_stylesheet(text, sheet_url, make_url)), encoding


def _css_string(value: str) -> str:
    """``value`` as a double-quoted CSS string that cannot end early, whatever it contains."""
    return '"' + value.translate(_STRING_ESCAPES) + '"'


class _Rewriter:
    """One pass over one sheet: walk the token tree, collect (start, end, replacement), splice."""

    def __init__(self, text: str, base_url: str, make_url: MakeURL) -> None:
        self.text = text
        self.base_url = base_url
        self.make_url = make_url
        # Offset in ``text`` where each line starts, counting line breaks as tinycss2 does, so a
        # token's (line, column) maps back to the original text even when it uses CRLF.
        self.line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
        self.edits: list[tuple[int, int, str]] = []

    def run(self) -> str:
        self.walk_rules(tinycss2.parse_component_value_list(self.text, skip_comments=False))
        if not self.edits:
            return self.text
        # The walk visits tokens in document order, so the edits are already sorted.
        pieces, position = [], 0
        for start, end, replacement in self.edits:
            pieces += [self.text[position:start], replacement]
            position = end
        pieces.append(self.text[position:])
        return "".join(pieces)

    # --- walking the token tree -------------------------------------------------------------

    def walk_rules(self, nodes: list[Node], font_face: bool = False) -> None:
        """A stylesheet, a block's content or a declaration list.

        At-rules are found here so their preludes can be treated apart: ``@import``'s URL is a
        stylesheet, while ``@namespace url(...)`` and ``@document url(...)`` name no resource. In an
        ``@font-face`` block the ``src`` descriptor's URLs are fonts.
        """
        declaration: str | None = None  # the declaration being read, for @font-face's "src"
        at_start = True  # at the start of a rule or declaration
        index = 0
        while index < len(nodes):
            node = nodes[index]
            index += 1
            if isinstance(node, (WhitespaceToken, Comment)):
                continue
            if isinstance(node, AtKeywordToken):
                index = self.at_rule(node, nodes, index)
                declaration, at_start = None, True
                continue
            if isinstance(node, LiteralToken) and node.value == ";":
                declaration, at_start = None, True
                continue
            if at_start:
                declaration = node.lower_value if isinstance(node, IdentToken) else None
                at_start = False
            if isinstance(node, CurlyBracketsBlock):  # a style rule's (or nested rule's) block
                self.walk_rules(node.content)
                declaration, at_start = None, True
                continue
            self.walk_value(node, "font" if font_face and declaration == "src" else "image")

    def at_rule(self, keyword: AtKeywordToken, nodes: list[Node], index: int) -> int:
        """Handle the at-rule whose prelude starts at ``nodes[index]``; return the index after it."""
        prelude_start = index
        block = None
        while index < len(nodes):
            node = nodes[index]
            if isinstance(node, LiteralToken) and node.value == ";":
                break
            if isinstance(node, CurlyBracketsBlock):
                block = node
                break
            index += 1
        if keyword.lower_value == "import":
            # The first URL or string is the imported sheet; what follows (media queries, layer(),
            # supports()) names no resource.
            for node in nodes[prelude_start:index]:
                if not isinstance(node, (WhitespaceToken, Comment)):
                    if isinstance(node, (URLToken, StringToken)):
                        self.rewrite(node, "style")
                    elif isinstance(node, FunctionBlock) and node.lower_name == "url":
                        self.url_function(node, "style")
                    break
        # Other preludes (@media, @supports, @namespace, @document ...) hold no resource URLs.
        if block is not None:
            self.walk_rules(block.content, font_face=keyword.lower_value == "font-face")
        return index + 1

    def walk_value(self, node: Node, kind: str) -> None:
        """Any component value outside an at-rule prelude: rewrite the URLs in it, at any depth."""
        if isinstance(node, URLToken):
            self.rewrite(node, kind)
        elif isinstance(node, FunctionBlock):
            if node.lower_name == "url":
                self.url_function(node, kind)
                return
            image_set = node.lower_name in _IMAGE_SET_FUNCTIONS
            for argument in node.arguments:
                if image_set and isinstance(argument, StringToken):
                    self.rewrite(argument, kind)  # image-set("a.png" 1x): a bare string is a URL
                else:
                    self.walk_value(argument, kind)
        elif isinstance(node, CurlyBracketsBlock):  # e.g. a block inside an unknown at-rule's value
            self.walk_rules(node.content)
        elif isinstance(node, (ParenthesesBlock, SquareBracketsBlock)):
            for child in node.content:
                self.walk_value(child, kind)

    def url_function(self, node: FunctionBlock, kind: str) -> None:
        """``url("x")``: tinycss2 gives a quoted url() as a function; its string is the URL."""
        for argument in node.arguments:
            if not isinstance(argument, WhitespaceToken):
                if isinstance(argument, StringToken):
                    self.rewrite(argument, kind)
                return

    # --- replacing one URL ------------------------------------------------------------------

    def rewrite(self, token: URLToken | StringToken, kind: str) -> None:
        raw = token.value
        stripped = raw.strip(" \t\n\r\f")
        if not stripped or stripped.startswith("#"):
            return  # empty, or a reference into this document (SVG filters and masks)
        try:
            absolute = normalize_url(raw, self.base_url)
        except BadURL:
            return  # data:, about:, javascript: ... or not a URL at all: left as the author wrote it
        # The resource is keyed without its fragment, but icons.svg#star must still point at #star.
        _, hash_sign, fragment = raw.partition("#")
        replacement = _css_string(self.make_url(absolute, kind) + hash_sign + fragment)
        start = self.offset(token)
        if isinstance(token, URLToken):
            self.edits.append((start, self.url_token_end(start), f"url({replacement})"))
        else:
            self.edits.append((start, self.string_end(start), replacement))

    def offset(self, token: Node) -> int:
        # Within a line, tinycss2's preprocessing keeps lengths (only line breaks and NUL change,
        # and NUL becomes one U+FFFD), so a column is an offset from the original line start.
        return self.line_starts[token.source_line - 1] + token.source_column - 1

    def url_token_end(self, start: int) -> int:
        """End of an unquoted url token: its first unescaped ``)`` (the name may be escaped too)."""
        text = self.text
        position = start
        while text[position] != "(":  # url, URL or u\72 l: an escape never yields a literal "("
            position += 2 if text[position] == "\\" else 1
        position += 1
        while position < len(text):
            char = text[position]
            if char == ")":
                return position + 1
            # In a valid url token a backslash always starts an escape of at least one character,
            # and an escape's hex digits or trailing space are never ")".
            position += 2 if char == "\\" else 1
        return len(text)  # unclosed at the end of the sheet, which browsers accept

    def string_end(self, start: int) -> int:
        """End of a string token: its matching unescaped quote."""
        text = self.text
        quote = text[start]
        position = start + 1
        while position < len(text):
            char = text[position]
            if char == quote:
                return position + 1
            if char == "\\":
                # An escaped line break (a CRLF is one) continues the string; else skip one char.
                position += 3 if text.startswith("\\\r\n", position) else 2
            else:
                position += 1
        return len(text)
