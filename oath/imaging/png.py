"""PNG bytes of an 8-bit grayscale or indexed-colour image, written without an imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def encode_png(gray: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Minimal 8-bit PNG encoder: deterministic bytes, no imaging library needed.

    ``gray`` holds grey values, or with ``palette`` (n x 3 RGB values 0-255, n <= 256) the
    palette index of each pixel (an indexed-colour PNG).

    >>> encode_png(np.zeros((2, 3), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    >>> len(encode_png(np.zeros((2, 3), np.uint8), palette=np.zeros((2, 3), np.uint8)))
    86
    """
    height, width = gray.shape
    raw = np.hstack([np.zeros((height, 1), np.uint8), gray.astype(np.uint8)]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    colour = 0 if palette is None else 3
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    plte = b"" if palette is None else chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + plte
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
