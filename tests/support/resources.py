"""Small, valid sample resources made in code (no binary fixtures to keep in step)."""

import struct
import zlib


def png(width: int = 4, height: int = 4, seed: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 40 + seed) % 256 for x in range(width * 3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


CSS = b'@import "theme.css";\nbody { background: url(../img/bg.png) no-repeat; }\n.logo { background-image: url("logo.svg"); }\n'
#: Not a real font program, but a WOFF2 header and bytes that must round-trip exactly.
WOFF2 = b"wOF2\x00\x01\x00\x00" + bytes(range(256)) * 4
