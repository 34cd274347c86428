"""PNG writing with the standard library only, and the sample site's large public image.

The large image exists to be refused: it is bigger than the default ``max_size`` (10 MiB), so the
customer's upload of it is rejected and the agent loads it directly (SPEC 10). It is made in
memory on first use rather than committed, and it is the same bytes in every worker process, so
its size and ETag agree whichever worker answers.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# 2000 x 2000 RGB at 8 bits: 2000 * (1 filter byte + 6000) = 12,002,000 bytes of image data,
# which zlib level 0 stores as they are: about 11.45 MiB, over 11 MiB.
LARGE_SIDE = 2000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, rgb: bytes, level: int = 9) -> bytes:
    """A truecolour 8-bit PNG of ``rgb`` (``width * height * 3`` bytes, rows top to bottom)."""
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of RGB, got {len(rgb)}")
    # Filter type 0 (None) before every row: simplest, and fine for noise and tiny images.
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, level))
        + _chunk(b"IEND", b"")
    )


@functools.cache
def large_png() -> bytes:
    """The large public image: seeded noise, stored uncompressed (zlib level 0).

    SHAKE-256 gives the noise because its output is fixed by the standard, whatever the Python
    version, unlike ``random``'s byte streams. Noise does not compress, so nothing on the way
    (a gzip-ing proxy, say) can bring it under the size limit.
    """
    noise = hashlib.shake_256(b"cobrowse sample site: large.png").digest(
        LARGE_SIDE * LARGE_SIDE * 3
    )
    return encode_png(LARGE_SIDE, LARGE_SIDE, noise, level=0)
