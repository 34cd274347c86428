"""Regenerates the sample site's binary assets (images and the web font), deterministically.

    python static_test_site/tools/make_assets.py

Images use only the standard library (the reference app's PNG writer and a tiny GIF writer
below). The font needs fontTools and brotli, which the project does not depend on:
``pip install fonttools brotli`` in a throwaway venv, and Debian's fonts-dejavu-core. Running it
again writes the same bytes, so a diff after a run means an asset really changed.
"""

from __future__ import annotations

import struct
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent

def _load_png_writer():
    """reference_app/images.py on its own: importing the package would import the middleware."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_images", SITE.parent / "reference_app" / "images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.encode_png


encode_png = _load_png_writer()

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")


def gradient(width: int, height: int) -> bytes:
    """A smooth two-axis colour gradient: any scaling or colour change shows in a screenshot."""
    return bytes(
        channel
        for y in range(height)
        for x in range(width)
        for channel in (x * 255 // (width - 1), y * 255 // (height - 1), 160)
    )


def checker(width: int, height: int, cell: int, a: tuple, b: tuple) -> bytes:
    return bytes(
        channel
        for y in range(height)
        for x in range(width)
        for channel in (a if (x // cell + y // cell) % 2 == 0 else b)
    )


def stripes(width: int, height: int, colours: list[tuple], band: int) -> bytes:
    return bytes(
        channel
        for y in range(height)
        for x in range(width)
        for channel in colours[(x // band) % len(colours)]
    )


def encode_gif(width: int, height: int, palette: list[tuple], pixels: bytes) -> bytes:
    """A GIF89a of up to 4 colours, LZW-coded without ever growing the code table.

    With a minimum code size of 2 the codes start 3 bits wide (clear = 4, end = 5). Sending a clear
    code before every two pixels means the decoder adds at most one table entry (6) between
    clears, so codes never widen and no real LZW compressor is needed: valid, just not small.
    """
    if len(palette) != 4 or len(pixels) != width * height:
        raise ValueError("4 colours and one palette index per pixel")
    clear, end = 4, 5
    codes: list[int] = []
    for i in range(0, len(pixels), 2):
        codes.append(clear)
        codes.extend(pixels[i : i + 2])
    codes.append(end)
    bits = 0
    for n, code in enumerate(codes):  # 3-bit codes, least significant bit first
        bits |= code << (3 * n)
    data = bits.to_bytes((3 * len(codes) + 7) // 8, "little")
    blocks = b"".join(
        bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)
    )
    return (
        b"GIF89a"
        # global colour table of 4 entries (size field 1), colour resolution 2 bits
        + struct.pack("<HHBBB", width, height, 0x91, 0, 0)
        + b"".join(bytes(rgb) for rgb in palette)
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + bytes([2])
        + blocks
        + b"\x00"
        + b";"
    )


def write(relative: str, data: bytes) -> None:
    path = SITE / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{relative}: {len(data)} bytes")


def make_font() -> None:
    """ASCII subset of DejaVu Sans Mono Bold as WOFF2, renamed so it cannot pass for a system font.

    Monospace bold on a page whose fallback is a proportional serif: if the web font fails to
    load for the agent, the screenshots differ, which is the point of having it.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(DEJAVU, recalcTimestamp=False)  # keep head.modified: same bytes every run
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep the copyright and licence records
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=range(0x20, 0x7F))
    subsetter.subset(font)
    # The Bitstream Vera licence asks modified fonts to be renamed (away from "Bitstream"/"Vera");
    # a distinct family name also shows at once whether the page got this file or a local font.
    family = "Cobrowse Sample Mono"
    for record in font["name"].names:
        if record.nameID in (1, 16):
            record.string = family
        elif record.nameID in (4, 18):
            record.string = f"{family} Bold"
        elif record.nameID == 6:
            record.string = "CobrowseSampleMono-Bold"
        elif record.nameID == 3:
            record.string = f"{family} Bold (subset of DejaVu Sans Mono Bold)"
    font.flavor = "woff2"
    out = SITE / "fonts" / "sample-mono.woff2"
    font.save(out, reorderTables=False)
    print(f"fonts/sample-mono.woff2: {out.stat().st_size} bytes")


def diagonal(width: int, height: int, a: tuple, b: tuple, band: int) -> bytes:
    return bytes(
        channel
        for y in range(height)
        for x in range(width)
        for channel in (a if ((x + y) // band) % 2 == 0 else b)
    )


def make_more_images() -> None:
    """The images of the pages that cover every reference kind of SPEC 8 (see README.md).

    Each one looks different from every other, so a wrong candidate or a missing image shows.
    """
    blue, white, orange, green, purple = (30, 90, 160), (255, 255, 255), (240, 140, 30), (30, 150, 80), (130, 50, 170)
    # srcset with x descriptors: the 2x file is twice the pixels and another colour.
    write("img/set-1x.png", encode_png(80, 40, checker(80, 40, 10, blue, white)))
    write("img/set-2x.png", encode_png(160, 80, checker(160, 80, 10, orange, white)))
    # srcset with w descriptors.
    write("img/w-160.png", encode_png(160, 60, stripes(160, 60, [green, white], 8)))
    write("img/w-320.png", encode_png(320, 120, stripes(320, 120, [purple, white], 8)))
    # <picture>: a wide and a narrow art direction.
    write("img/pic-wide.png", encode_png(200, 50, diagonal(200, 50, blue, orange, 10)))
    write("img/pic-narrow.png", encode_png(100, 50, diagonal(100, 50, green, purple, 10)))
    # SVG <image>, video poster, input type=image.
    write("img/svg-image.png", encode_png(60, 60, checker(60, 60, 6, purple, (250, 230, 120))))
    write("img/poster.png", encode_png(160, 90, gradient(160, 90)))
    write("img/go.png", encode_png(48, 24, stripes(48, 24, [(200, 60, 60), white], 6)))
    # Reached only through stylesheets: a two-deep @import chain, CSSOM rules, a shadow root.
    write("img/deep.png", encode_png(48, 48, diagonal(48, 48, (200, 60, 60), (250, 230, 120), 6)))
    write("img/cssom.png", encode_png(48, 48, checker(48, 48, 12, green, (250, 230, 120))))
    write("img/adopted.png", encode_png(48, 48, stripes(48, 48, [blue, (250, 230, 120)], 12)))
    write("img/shadow.png", encode_png(48, 48, diagonal(48, 48, purple, white, 4)))
    write("img/form-bg.png", encode_png(8, 8, checker(8, 8, 4, (244, 246, 250), (232, 236, 244))))


def main() -> None:
    make_more_images()
    write("img/photo.png", encode_png(120, 80, gradient(120, 80)))
    write("img/bg.png", encode_png(16, 16, checker(16, 16, 8, (250, 250, 250), (236, 240, 246))))
    write(
        "img/hero.png",
        encode_png(240, 60, stripes(240, 60, [(30, 90, 160), (240, 180, 40), (200, 60, 60)], 20)),
    )
    write(
        "img/style-tag.png", encode_png(40, 40, checker(40, 40, 5, (20, 140, 90), (255, 255, 255)))
    )
    write(
        "img/style-attr.png",
        encode_png(40, 40, stripes(40, 40, [(120, 40, 160), (255, 230, 120)], 4)),
    )
    write("img/favicon.png", encode_png(16, 16, checker(16, 16, 4, (30, 90, 160), (240, 180, 40))))
    palette = [(255, 255, 255), (220, 40, 40), (40, 160, 40), (40, 40, 220)]
    write(
        "img/dots.gif",
        encode_gif(
            24, 24, palette, bytes((x // 6 + y // 6) % 4 for y in range(24) for x in range(24))
        ),
    )
    make_font()


if __name__ == "__main__":
    main()
