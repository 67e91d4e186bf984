"""PNG bytes of an 8-bit grayscale image, written without an imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def encode_png(gray: np.ndarray) -> bytes:
    """Minimal 8-bit grayscale PNG encoder: deterministic bytes, no imaging library needed.

    >>> encode_png(np.zeros((2, 3), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    height, width = gray.shape
    raw = np.hstack([np.zeros((height, 1), np.uint8), gray.astype(np.uint8)]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
