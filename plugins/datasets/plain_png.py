"""A fast reader for the commonest image file: an 8-bit gray or RGB PNG without transparency.

Pillow costs ~0.1 ms of Python per file, more than decoding a 48x48 FER+ image; imagecodecs' libpng decodes
such a file 2-3x faster here (0.037 vs 0.072-0.105 ms per FER+ file). This reader takes only files whose
pixels both give identically (the PNG stores them losslessly, and neither applies gamma or colour profiles):
8 bits per sample, colour type 0 (gray) or 2 (RGB), not interlaced, no tRNS chunk (a transparent colour), no
acTL (an animation), every chunk's CRC right and an IEND at the end. Anything else returns None, and
Pillow's path (the rule of :mod:`taskcodec_plugins.datasets.image_files`) reads, converts or refuses it with
its own message.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3}  # colour type -> samples per pixel
_REFUSED_CHUNKS = (b"tRNS", b"acTL")


def read_plain_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The pixels of the PNG file ``data`` (``H x W`` or ``H x W x 3`` uint8), or None where this
    reader does not apply (another format or kind, a damaged file, more than ``max_pixels`` pixels)."""
    header = _plain_header(data)
    if header is None:
        return None
    height, width, channels = header
    if height * width > max_pixels:
        return None
    import imagecodecs

    try:
        pixels = imagecodecs.png_decode(data)
    except Exception:  # noqa: BLE001 - Pillow's path reports the damage, naming the file
        return None
    expected = (height, width) if channels == 1 else (height, width, 3)
    if pixels.dtype != np.uint8 or pixels.shape != expected:
        return None
    return np.ascontiguousarray(pixels)


def _plain_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, channels) of a sound, non-interlaced 8-bit gray/RGB PNG without transparency, else None."""
    if not data.startswith(_SIGNATURE):
        return None
    view = memoryview(data)
    pos, header, have_data = len(_SIGNATURE), None, False
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return None
        kind = bytes(view[pos + 4:pos + 8])
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end], "big"):
            return None
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            width, height = int.from_bytes(view[pos + 8:pos + 12], "big"), int.from_bytes(view[pos + 12:pos + 16], "big")
            depth, colour, interlace = view[pos + 16], view[pos + 17], view[pos + 20]
            if depth != 8 or colour not in _CHANNELS or interlace != 0 or width == 0 or height == 0:
                return None
            header = (height, width, _CHANNELS[colour])
        elif kind in _REFUSED_CHUNKS:
            return None
        elif kind == b"IDAT":
            have_data = True
        elif kind == b"IEND":
            return header if have_data else None
        pos = end
    return None
