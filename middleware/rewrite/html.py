"""Rewrite and sanitise the customer's DOM snapshot before the agent's browser renders it.

The input is ``document.documentElement.outerHTML`` (plus a doctype) from the customer script; the
output is served as ``text/html; charset=utf-8`` to a sandboxed iframe under a CSP that forbids
script. Each resource reference is rewritten to ``make_url(absolute_url, kind)``; the URLs the agent
may follow but that we do not sync are made absolute; scripts, handlers and script URLs go.

One pass over ``html.parser`` events (``convert_charrefs=False`` and text split only at ``<``, so
text and character references are copied exactly as written). What is left untouched is copied
byte for byte; a start tag that changes is rebuilt with every value quoted and escaped.

Why the output is safe in a browser and not only in ``html.parser``: the two tokenizers disagree on
malformed markup, which is what mutation XSS feeds on. So every ``<`` we write starts a construct
that any HTML tokenizer reads exactly as we meant it:

* text never contains a raw ``<`` (we write ``&lt;``, which means ``<`` in text);
* a start tag is copied only if its syntax is plain enough that browsers and ``html.parser`` find
  the same name and attributes in it, else it is rebuilt from the attributes we checked;
* the elements whose content a browser reads as raw text (``<style>``, ``<title>``, ``<textarea>``
  ...) are found, and their extent measured, the way a browser does it, not the way ``html.parser``
  does; their content is written so that it holds no ``<`` at all, which makes it inert whether a
  browser reads it as raw text (HTML) or as markup (inside ``<svg>``/``<math>``);
* comments end where browsers end them (``<!-->``, ``--!>``), CDATA sections, bogus comments and
  processing instructions are dropped, end tags are written as plain ``</name>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape
from html.parser import HTMLParser, attrfind_tolerant, tagfind_tolerant

from ..urls import BadURL, normalize_url
from .css import MakeURL, rewrite_style_attribute, rewrite_stylesheet

__all__ = ["MakeURL", "rewrite_snapshot"]

Attributes = list[tuple[str, "str | None"]]

# --- what is rewritten ----------------------------------------------------------------------

#: Resources we sync: element -> attribute -> kind (``as=`` of the resources endpoint). ``srcset``
#: and ``imagesrcset`` hold candidate lists. The context-dependent ones (``link href`` by its
#: ``rel``, ``source src`` inside ``<picture>``, ``input type=image src``) are decided in code.
RESOURCE_ATTRIBUTES: dict[str, dict[str, str]] = {
    "img": {"src": "image", "srcset": "image"},
    "source": {"srcset": "image"},  # only <picture> sources have a srcset
    "video": {"poster": "image"},
    "image": {"href": "image", "xlink:href": "image", "src": "image"},  # SVG <image> (HTML: <img>)
    "feimage": {"href": "image", "xlink:href": "image"},
    "use": {"href": "image", "xlink:href": "image"},  # an external sprite; "#id" stays as it is
    # The legacy background attribute.
    **{tag: {"background": "image"} for tag in ("body", "table", "thead", "tbody", "tfoot", "tr",
                                                 "td", "th")},
}

#: URLs the agent may follow or load that we do not sync: made absolute, so that none of them
#: resolves against the co-browse server now that ``<base>`` is gone.
ABSOLUTE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "xlink:href"}),  # HTML and SVG links
    "area": frozenset({"href"}),
    "link": frozenset({"href"}),  # rel=canonical, alternate ... (resource rels are rewritten)
    "form": frozenset({"action"}),
    "video": frozenset({"src"}),
    "audio": frozenset({"src"}),
    "source": frozenset({"src"}),  # inside <video>/<audio>; inside <picture> it is an image
    "track": frozenset({"src"}),
}

#: ``<link rel=preload as=...>`` that we rewrite; other preloads are removed.
PRELOAD_KINDS = {"style": "style", "font": "font", "image": "image"}

#: ``<link rel>`` values that only make the agent's browser fetch or run something: removed.
DROPPED_LINK_RELS = frozenset({"prefetch", "modulepreload", "preconnect", "dns-prefetch",
                               "manifest", "prerender", "import"})

# --- what is removed --------------------------------------------------------------------------

#: Elements a browser reads as raw text up to their end tag (RAWTEXT, RCDATA, script data).
RAW_TEXT_ELEMENTS = frozenset({"script", "style", "title", "textarea", "xmp", "plaintext",
                               "iframe", "noembed", "noframes", "noscript"})

#: Removed with their content. <noscript>: the customer ran script, so never saw it, while the
#: agent's sandbox has script off and would show it. <noembed>/<noframes> are never shown.
DROPPED_WITH_CONTENT = frozenset({"script", "noscript", "noembed", "noframes"})

#: Removed (start and end tag): <portal> loads and shows another page.
DROPPED_ELEMENTS = frozenset({"portal"})

#: SVG animations, removed when they animate a link: ``values="javascript:..."`` sets a script URL.
ANIMATION_ELEMENTS = frozenset({"animate", "set", "animatetransform", "animatemotion",
                                "animatecolor"})

#: Removed from every element: on* handlers are checked apart. ``integrity`` no longer matches
#: the bytes we serve, and ``crossorigin`` would make the sandboxed (origin "null") viewer fetch
#: in CORS mode, which the origin behind a direct-load redirect may refuse; without them an image
#: or stylesheet simply loads.
DROPPED_ATTRIBUTES = frozenset({"formaction", "ping", "srcdoc", "integrity", "crossorigin"})

#: Plugin elements keep their box but lose what they would load or run.
PLUGIN_ELEMENTS = frozenset({"object", "embed", "applet"})
PLUGIN_ATTRIBUTES = frozenset({"data", "src", "code", "codebase", "archive", "classid", "object"})

#: Frames keep their box for the layout but show nothing.
FRAME_ELEMENTS = frozenset({"iframe", "frame"})

#: Schemes that run script or make a document, in any attribute.
SCRIPT_URL_PREFIXES = ("javascript:", "vbscript:", "data:text/html")

VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "frame", "hr", "img", "input",
                           "keygen", "link", "meta", "param", "source", "track", "wbr"})

# --- syntax -----------------------------------------------------------------------------------

# What browsers ignore in a URL before its scheme (and tab/newline anywhere): for the script-URL
# check we drop every ASCII control and space, which is stricter.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_ASCII_WHITESPACE = "\t\n\f\r "
_SRCSET_SEPARATORS = _ASCII_WHITESPACE + ","

# A start tag plain enough that browsers and html.parser read the same name and attributes in it:
# ASCII whitespace between attributes, simple names, values quoted or free of anything special.
# (Each part ends where the next must begin, so a failing match backtracks in linear time.)
_PLAIN_START_TAG = re.compile(r"""
    <[a-zA-Z][^\s/>\x00]*
    (?:[\t\n\f\r ]+[^\s\x00-\x1f\x7f"'<>/=]+
       (?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))?
    )*
    [\t\n\f\r ]*/?>
""", re.VERBOSE)
_ATTRIBUTE_NAME = re.compile(r"[^\s\x00-\x1f\x7f\"'<>/=]+")  # what we write when rebuilding
_TAG_NAME = re.compile(r"</?([a-zA-Z][^\t\n\r\f />\x00]*)")  # html.parser's rule, original case

_TEXT_END = re.compile("<")
_COMMENT_END = re.compile(r"--!?>")
_PARSER_COMMENT_END = re.compile(r"--\s+>")  # html.parser also ends a comment here; browsers don't
# Where a browser ends each raw-text element: "</name" then whitespace, "/" or ">", ASCII case.
_RAW_TEXT_END = {tag: re.compile(rf"</{tag}(?=[\t\n\f\r />])", re.IGNORECASE | re.ASCII)
                 for tag in RAW_TEXT_ELEMENTS}
_SCRIPT_MARK = re.compile(r"<!--|-->|<(/?)script(?=[\t\n\f\r />])", re.IGNORECASE | re.ASCII)

# In CSS text: markup openers (CDO and CDATA, which CSS ignores or cannot use, and any other "<",
# with the backslashes before it) and script URLs (letters possibly split by controls or spaces).
_CSS_MARKUP = re.compile(r"<!--|<!\[CDATA\[|(\\*)<")
_CSS_SCRIPT_URL = re.compile(
    "|".join("[\\x00-\\x20\\x7f]*".join(word) + "[\\x00-\\x20\\x7f]*:"
             for word in ("javascript", "vbscript")),
    re.IGNORECASE | re.ASCII)


def rewrite_snapshot(html: str, page_url: str, make_url: MakeURL) -> str:
    """The snapshot ``html`` of ``page_url`` rewritten and sanitised for the agent's viewer."""
    first = _SnapshotRewriter(page_url, make_url)
    output = first.run(html)
    if first.base_changed_late:
        # Browsers resolve every URL against the first <base href>, even the URLs before it; this
        # pass met some of those before the <base>, so run once more knowing it from the start.
        output = _SnapshotRewriter(page_url, make_url, base=first.base).run(html)
    return output


# --- small helpers ------------------------------------------------------------------------------

def is_script_url(value: str) -> bool:
    """Whether a (decoded) attribute value is a URL that runs script or makes a document."""
    return _URL_NOISE.sub("", value).lower().startswith(SCRIPT_URL_PREFIXES)


def _url_text(value: str) -> str:
    """An attribute's URL as the URL parser sees it: outer controls/spaces and tab/newline gone."""
    return _TAB_NEWLINE.sub("", value.strip(_C0_AND_SPACE))


def _first(attrs: Attributes, name: str) -> str | None:
    """The value of ``name`` as browsers read it: the first occurrence wins."""
    for attr, value in attrs:
        if attr == name:
            return value if value is not None else ""
    return None


def srcset_pieces(value: str) -> Iterator[tuple[str, bool]]:
    """Split a srcset into consecutive pieces of text, flagging the candidate URLs (True).

    Follows the HTML spec's parsing: a URL is a run of non-whitespace (commas inside it belong to
    it) whose trailing commas end the candidate; otherwise its descriptors run up to the next
    comma outside parentheses. Joining the pieces gives ``value`` back.
    """
    position, length = 0, len(value)
    while position < length:
        start = position
        while position < length and value[position] in _SRCSET_SEPARATORS:
            position += 1
        if position > start:
            yield value[start:position], False
        if position >= length:
            return
        start = position
        while position < length and value[position] not in _ASCII_WHITESPACE:
            position += 1
        url = value[start:position].rstrip(",")
        yield url, True
        if start + len(url) < position:  # "a.png," : the commas end the candidate
            yield value[start + len(url):position], False
            continue
        start, in_parens = position, False
        while position < length and (in_parens or value[position] != ","):
            if value[position] == "(":
                in_parens = True
            elif value[position] == ")":
                in_parens = False
            position += 1
        if position > start:
            yield value[start:position], False


def _inert_css(css: str) -> str:
    """CSS without script URLs: browsers do not run them from CSS, but the snapshot has none."""
    return _CSS_SCRIPT_URL.sub("about:invalid#", css)


def _style_element_text(css: str) -> str:
    """A ``<style>``'s text holding no ``<``: inert whether it is parsed as raw text or as markup.

    CSS ignores the ``<!--`` and ``<![CDATA[`` that old pages and SVG wrap sheets in; any other
    ``<`` (in a string, a comment, a url) becomes the CSS escape ``\\3c `` which means the same.
    """
    def replace(match: re.Match[str]) -> str:
        slashes = match.group(1)
        if slashes is None:
            return ""
        # An odd run of backslashes escaped the "<" itself: "\<" is "\3c " too.
        return slashes[: len(slashes) & ~1] + "\\3c "
    return _CSS_MARKUP.sub(replace, _inert_css(css))


def _script_data_end(text: str, position: int) -> int:
    """Where a browser ends an HTML ``<script>``'s content (its "script data" states).

    Inside ``<!-- ... -->`` a ``<script>`` makes the next ``</script>`` part of the content, as in
    the old ``<!-- document.write("<script></script>") -->``.
    """
    state = 0  # 0: plain; 1: escaped, inside <!--; 2: double escaped, a <script> inside <!--
    while match := _SCRIPT_MARK.search(text, position):
        mark = match.group()
        if mark == "<!--":
            state = state or 1
            position = match.start() + 2  # its "--" can close it at once: <!-->
            continue
        position = match.end()
        if mark == "-->":
            state = 0
        elif match.group(1):  # </script
            if state != 2:
                return match.start()
            state = 1
        elif state == 1:  # <script
            state = 2
    return len(text)


def _written_names(raw: str) -> dict[str, str]:
    """Attribute names as the start tag ``raw`` spells them (viewBox), by html.parser's lower case.

    Scans the tag as html.parser's own ``parse_starttag`` does, with its own expressions.
    """
    names: dict[str, str] = {}
    match = tagfind_tolerant.match(raw, 1)
    position = match.end() if match else len(raw)
    while position < len(raw) and (match := attrfind_tolerant.match(raw, position)):
        names.setdefault(match.group(1).lower(), match.group(1))
        position = match.end()
    return names


def _build_start_tag(name: str, attrs: Attributes, self_closing: bool, raw: str = "") -> str:
    """A start tag every parser reads the same way: the first of each name, values quoted."""
    parts, seen, written = ["<", name], set(), _written_names(raw)
    for attr, value in attrs:
        if attr in seen or not _ATTRIBUTE_NAME.fullmatch(attr):
            continue  # browsers keep the first; a name with odd characters is not worth the risk
        seen.add(attr)
        attr_name = written.get(attr, attr)
        if attr_name.lower() != attr or not _ATTRIBUTE_NAME.fullmatch(attr_name):
            attr_name = attr
        parts.append(f" {attr_name}" if value is None
                     else f' {attr_name}="{escape(value, quote=True)}"')
    parts.append("/>" if self_closing else ">")
    return "".join(parts)


# --- the rewriter -------------------------------------------------------------------------------

class _SnapshotRewriter(HTMLParser):
    """One pass over one snapshot; ``run`` returns the output."""

    # Raw text is found the browser's way in parse_starttag, so html.parser must not do its own.
    CDATA_CONTENT_ELEMENTS = ()

    def __init__(self, page_url: str, make_url: MakeURL, base: str | None = None) -> None:
        super().__init__(convert_charrefs=False)
        self.page_url = page_url
        self.make_url = make_url
        self.base = base or page_url
        self._base_known = base is not None  # the first <base href> was seen (or given)
        self._base_used = False  # a URL was resolved with the base we have now
        self.base_changed_late = False
        self._out: list[str] = []
        self._raw_text: str | None = None  # set by a start tag whose content is raw text
        self._raw_text_name = ""  # the name its end tag is written with
        self._end_tag_at = 0
        self._skip_end: dict[str, int] = {}  # end tags of dropped elements still to skip
        self._picture_depth = 0
        self._gt_from_end = 0
        self._resolved: dict[tuple[str, str], str | None] = {}

    def reset(self) -> None:
        super().reset()
        self.clear_cdata_mode()

    def clear_cdata_mode(self) -> None:
        # html.parser calls this after every end tag. Text ends only at "<": character references
        # stay in the text exactly as written (and html.parser's bail-outs on a stray "&#" can
        # never turn the rest of a page into text).
        super().clear_cdata_mode()
        self.interesting = _TEXT_END

    def run(self, source: str) -> str:
        # How far the last ">" is from the end: html.parser may re-slice its buffer, but always
        # keeps a suffix of the source, so this finds the last ">" in any of them.
        self._gt_from_end = len(source) - source.rfind(">")
        self.feed(source)
        self.close()
        return "".join(self._out)

    def _no_gt_after(self, position: int) -> bool:
        # A construct that starts after the last ">" runs to the end of the document; browsers drop
        # it (a tag or bogus comment cut off by the end of file). Deciding this up front also spares
        # html.parser its rescan to the end for each such construct, which is quadratic.
        return position > len(self.rawdata) - self._gt_from_end

    def _base_url(self) -> str:
        self._base_used = True
        return self.base

    # --- html.parser hooks: markup ----------------------------------------------------------

    def parse_starttag(self, i: int) -> int:
        if self._no_gt_after(i):
            return len(self.rawdata)
        self._raw_text = None
        end = super().parse_starttag(i)  # calls handle_starttag / handle_startendtag
        if end >= 0 and self._raw_text is not None:
            end = self._raw_text_content(self._raw_text, end)
        return end

    def parse_endtag(self, i: int) -> int:
        rawdata = self.rawdata
        if self._no_gt_after(i):
            return len(rawdata)
        if not rawdata[i + 2:i + 3].isascii() or not rawdata[i + 2:i + 3].isalpha():
            # "</>" is nothing; "</ x>", "</3>" are bogus comments to a browser (html.parser reads
            # some of them as end tags).
            return i + 3 if rawdata.startswith("</>", i) else self.parse_bogus_comment(i)
        self._end_tag_at = i
        return super().parse_endtag(i)

    def parse_comment(self, i: int, report: int = 1) -> int:
        """A comment ended as browsers end it: ``<!-->``, ``<!--->``, ``-->``, ``--!>`` or EOF."""
        rawdata = self.rawdata
        start = i + 4
        if rawdata.startswith(">", start):
            end, content_end = start + 1, start
        elif rawdata.startswith("->", start):
            end, content_end = start + 2, start
        elif match := _COMMENT_END.search(rawdata, start):
            end, content_end = match.end(), match.start()
        else:
            end = content_end = len(rawdata)
        self.handle_comment(rawdata[start:content_end])
        return end

    def parse_html_declaration(self, i: int) -> int:
        """``<!DOCTYPE ...>`` is kept; ``<![CDATA[``, ``<!x>``: bogus comments in HTML, dropped."""
        rawdata = self.rawdata
        if rawdata.startswith("<!--", i):
            return self.parse_comment(i)
        end = rawdata.find(">", i + 2)
        if end < 0:
            return len(rawdata)
        if rawdata[i + 2:i + 9].lower() == "doctype":
            self.handle_decl(rawdata[i + 2:end])
        return end + 1

    def parse_bogus_comment(self, i: int, report: int = 1) -> int:
        end = self.rawdata.find(">", i + 2)
        return len(self.rawdata) if end < 0 else end + 1  # dropped: nobody sees it

    def parse_pi(self, i: int) -> int:
        return self.parse_bogus_comment(i)  # "<?...>" is a bogus comment to browsers: dropped

    # --- html.parser hooks: content ---------------------------------------------------------

    def handle_data(self, data: str) -> None:
        # Text from an input made by outerHTML never holds "<"; when malformed input makes one
        # (a stray "<", a broken tag html.parser gives up on), it must stay text for browsers too.
        self._out.append(data.replace("<", "&lt;"))

    def handle_comment(self, data: str) -> None:
        if not _PARSER_COMMENT_END.search(data):  # else parsers disagree on its end: it goes
            self._out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._out.append(f"<!{decl}>")

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        self._start_tag(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: Attributes) -> None:
        self._start_tag(tag, attrs, self_closing=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in RAW_TEXT_ELEMENTS:
            return  # the real ones were consumed with their content; a stray one means nothing
        if self._skip_end.get(tag):
            self._skip_end[tag] -= 1
            return
        if tag == "picture" and self._picture_depth:
            self._picture_depth -= 1
        match = _TAG_NAME.match(self.rawdata, self._end_tag_at)
        name = match.group(1) if match and match.group(1).lower() == tag else tag
        self._out.append(f"</{name}>")

    # --- start tags -------------------------------------------------------------------------

    def _start_tag(self, tag: str, attrs: Attributes, self_closing: bool) -> None:
        if tag in RAW_TEXT_ELEMENTS:
            # A browser ignores "/>" on these HTML elements and reads raw text after them.
            self._raw_text, self._raw_text_name, self_closing = tag, tag, False
            if tag in DROPPED_WITH_CONTENT:
                return
        if tag == "base":
            self._note_base(attrs)
            return
        new_attrs = self._sanitise(tag, attrs)
        if new_attrs is None:
            if not self_closing and tag not in VOID_ELEMENTS:
                self._skip_end[tag] = self._skip_end.get(tag, 0) + 1
            return
        if tag == "picture" and not self_closing:
            self._picture_depth += 1
        raw = self.get_starttag_text() or ""
        if tag in ("xmp", "plaintext"):
            # Their text is raw, so it cannot be written without "<" and "&" inside them; a
            # <pre> shows the same text in the same style (the UA sheet styles them alike).
            self._raw_text_name = "pre"
            self._out.append(_build_start_tag("pre", new_attrs, False, raw))
        elif new_attrs == attrs and _PLAIN_START_TAG.fullmatch(raw):
            self._out.append(raw)
        else:
            match = _TAG_NAME.match(raw)
            name = match.group(1) if match and match.group(1).lower() == tag else tag
            self._out.append(_build_start_tag(name, new_attrs, self_closing, raw))

    def _note_base(self, attrs: Attributes) -> None:
        """The first ``<base href>`` sets the base URL; every ``<base>`` is then dropped."""
        href = _first(attrs, "href")
        if self._base_known or href is None:
            return
        self._base_known = True
        try:
            base = normalize_url(_url_text(href), self.page_url)
        except BadURL:
            return  # javascript:, data: ... : browsers fall back to the document's URL
        if base != self.base and self._base_used:
            self.base_changed_late = True
        self.base = base

    def _sanitise(self, tag: str, attrs: Attributes) -> Attributes | None:
        """The attributes to write for this element, or None to drop the element."""
        if tag in DROPPED_ELEMENTS:
            return None
        if tag == "meta":
            equiv = (_first(attrs, "http-equiv") or "").strip().lower()
            if _first(attrs, "charset") is not None or equiv == "content-type":
                return [("charset", "utf-8")]  # the output is UTF-8, whatever the page was
            if _first(attrs, "http-equiv") is not None:
                return None  # refresh, set-cookie, content-security-policy ...
        if tag in ANIMATION_ELEMENTS:
            target = (_first(attrs, "attributename") or "").strip().lower()
            if target in ("href", "xlink:href") or target.startswith("on"):
                return None
        resources = self._resource_attributes(tag, attrs)
        if resources is None:
            return None
        absolute = ABSOLUTE_ATTRIBUTES.get(tag, frozenset())
        result: Attributes = []
        for name, value in attrs:
            if (name.startswith("on") or name in DROPPED_ATTRIBUTES
                    or (tag in PLUGIN_ELEMENTS and name in PLUGIN_ATTRIBUTES)):
                continue
            if value is not None:
                if tag in FRAME_ELEMENTS and name == "src":
                    value = "about:blank"
                # html.parser has decoded character references (html.unescape), so the check
                # sees "jav&#x09;ascript:" as a browser does.
                if is_script_url(value) or (
                        name in ("srcset", "imagesrcset")
                        and any(is_url and is_script_url(piece)
                                for piece, is_url in srcset_pieces(value))):
                    continue
                if name == "style":
                    value = self._style_attribute(value)
                elif name in resources:
                    value = self._resource_value(name, value, resources[name])
                elif name in absolute:
                    value = self._absolute(value)
            result.append((name, value))
        return result

    def _resource_attributes(self, tag: str, attrs: Attributes) -> dict[str, str] | None:
        """Attribute -> kind of the resources this element loads; None for a link we drop."""
        if tag == "link":
            rels = (_first(attrs, "rel") or "").lower().split()
            if "stylesheet" in rels:
                return {"href": "style"}
            if any("icon" in rel for rel in rels):  # icon, shortcut icon, apple-touch-icon ...
                return {"href": "image"}
            if "preload" in rels:
                kind = PRELOAD_KINDS.get((_first(attrs, "as") or "").strip().lower())
                if kind is None:
                    return None
                return {"href": kind, "imagesrcset": kind} if kind == "image" else {"href": kind}
            return None if DROPPED_LINK_RELS.intersection(rels) else {}
        if tag == "source" and self._picture_depth:
            return {"srcset": "image", "src": "image"}
        if tag == "input" and (_first(attrs, "type") or "").strip().lower() == "image":
            return {"src": "image"}
        return RESOURCE_ATTRIBUTES.get(tag, {})

    # --- URLs -------------------------------------------------------------------------------

    def _style_attribute(self, value: str) -> str:
        lowered = value.lower()
        if "url" not in lowered and "image-set" not in lowered and "\\" not in value:
            return _inert_css(value)  # no URL can be in it: spare the CSS tokenizer (most are so)
        return _inert_css(rewrite_style_attribute(value, self._base_url(), self.make_url))

    def _resource_value(self, name: str, value: str, kind: str) -> str:
        if name not in ("srcset", "imagesrcset"):
            return self._resource(value, kind)
        return "".join(self._resource(piece, kind, in_srcset=True) if is_url else piece
                       for piece, is_url in srcset_pieces(value))

    def _resource(self, value: str, kind: str, in_srcset: bool = False) -> str:
        """``make_url`` of the absolute URL (its fragment kept after it); non-http(s) as written."""
        url = _url_text(value)
        absolute = self._resolve(url)
        if absolute is None:
            return value  # "#icon" in this document, data:, blob:, about: ... or no URL at all
        _, hash_sign, fragment = url.partition("#")
        made = self.make_url(absolute, kind) + hash_sign + fragment
        if in_srcset:
            # A space or a trailing comma would split the candidate; percent-encoding them keeps
            # the URL's meaning.
            made = re.sub(r"[\t\n\f\r ,]", lambda m: f"%{ord(m.group()):02X}", made)
        return made

    def _absolute(self, value: str) -> str:
        """A URL we do not sync, made absolute against the base (its fragment kept)."""
        url = _url_text(value)
        absolute = self._resolve(url)
        if absolute is None:
            return value  # "#top" (this document, the snapshot itself), mailto:, tel: ...
        _, hash_sign, fragment = url.partition("#")
        return absolute + hash_sign + fragment

    def _resolve(self, url: str) -> str | None:
        """``url`` made absolute against the base, or None: empty, "#..." or not http(s)."""
        if not url or url.startswith("#"):
            return None
        key = (url, self._base_url())
        if key not in self._resolved:  # pages repeat URLs (src and srcset, icons, sprites)
            try:
                self._resolved[key] = normalize_url(url, self.base)
            except BadURL:
                self._resolved[key] = None
        return self._resolved[key]

    # --- raw text ---------------------------------------------------------------------------

    def _raw_text_content(self, tag: str, start: int) -> int:
        """Consume a raw-text element's content and end tag from ``start``; return where it ends."""
        rawdata = self.rawdata
        if tag == "script":
            end = _script_data_end(rawdata, start)
        else:
            match = _RAW_TEXT_END[tag].search(rawdata, start)
            end = match.start() if match else len(rawdata)
        content = rawdata[start:end]
        if tag not in DROPPED_WITH_CONTENT:
            if tag == "style":
                css = rewrite_stylesheet(content, self._base_url(), self.make_url)
                self._out.append(_style_element_text(css))
            elif tag in ("title", "textarea"):
                # RCDATA: references are decoded as in text, so "&lt;" means "<" either way.
                self._out.append(content.replace("<", "&lt;"))
            elif tag in ("xmp", "plaintext"):
                self._out.append(escape(content, quote=False))
            # An <iframe>'s content is never shown.
            self._out.append(f"</{self._raw_text_name}>")
        if end == len(rawdata):
            return end
        close = rawdata.find(">", end)
        return len(rawdata) if close < 0 else close + 1
