"""The fast PNG reader gives exactly Pillow's pixels, and steps aside for every file it does not cover."""
from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from taskcodec_plugins.datasets import image_files
from taskcodec_plugins.datasets.labelled_arrays import read_image
from taskcodec_plugins.datasets.plain_png import read_plain_png

RNG = np.random.default_rng(5)
GRAY = RNG.integers(0, 256, (37, 29), dtype=np.uint8)
RGB = RNG.integers(0, 256, (23, 41, 3), dtype=np.uint8)


def png(array: np.ndarray, mode: str | None = None, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG", **save)
    return buffer.getvalue()


def pillow_rule(path, color: str) -> np.ndarray:
    image = image_files.open_image(path, color)
    return np.asarray(image, dtype=np.uint8)


@pytest.mark.parametrize("array", [GRAY, RGB], ids=["gray", "rgb"])
@pytest.mark.parametrize("save", [{}, {"optimize": True}, {"compress_level": 0}], ids=["default", "optimize", "stored"])
@pytest.mark.parametrize("color", ["keep", "rgb", "gray"])
def test_plain_pngs_read_as_pillow_reads_them(tmp_path, array, save, color):
    path = tmp_path / "image.png"
    path.write_bytes(png(array, **save))
    fast = image_files.read_plain_image(path, color)
    assert fast is not None and fast.dtype == np.uint8 and fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, pillow_rule(path, color))
    np.testing.assert_array_equal(image_files.read_image_file(path, color), fast)
    np.testing.assert_array_equal(read_image(path, "test", None, color), fast)


def chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def with_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """``data`` with a chunk inserted after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return data[:33] + chunk(kind, body) + data[33:]


def saved(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def interlaced(data: bytes) -> bytes:
    """``data`` with IHDR's interlace flag set (and its CRC fixed): no longer a plain file."""
    ihdr = bytearray(data[12:29])
    ihdr[-1] = 1
    return data[:8] + data[8:12] + bytes(ihdr) + zlib.crc32(bytes(ihdr)).to_bytes(4, "big") + data[33:]


OTHER_FILES = {
    "transparent colour": lambda: with_chunk(png(RGB), b"tRNS", b"\x00\x01\x00\x02\x00\x03"),
    "animation": lambda: with_chunk(png(RGB), b"acTL", b"\x00\x00\x00\x01\x00\x00\x00\x00"),
    "interlaced": lambda: interlaced(png(RGB)),
    "palette": lambda: saved(Image.fromarray(RGB).convert("P")),
    "16-bit": lambda: saved(Image.fromarray(GRAY.astype(np.uint16) * 257)),
    "rgba": lambda: png(np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])),
    "gray+alpha": lambda: saved(Image.fromarray(GRAY).convert("LA")),
    "1-bit": lambda: saved(Image.fromarray(GRAY).convert("1")),
    "bad crc": lambda: (lambda d: d[:40] + bytes([d[40] ^ 1]) + d[41:])(png(RGB)),
    "truncated": lambda: png(RGB)[: len(png(RGB)) // 2],
    "no IEND": lambda: png(RGB)[:-12],
    "jpeg named png": lambda: saved(Image.fromarray(RGB), "JPEG"),
    "over max_pixels": lambda: png(RGB),
}


@pytest.mark.parametrize("case", sorted(OTHER_FILES))
def test_other_files_are_left_to_pillow(tmp_path, case):
    data = OTHER_FILES[case]()
    limit = 100 if case == "over max_pixels" else image_files.MAX_PIXELS
    assert read_plain_png(data, limit) is None
    path = tmp_path / "image.png"
    path.write_bytes(data)
    assert image_files.read_plain_image(path, "keep", limit) is None


def test_ancillary_chunks_do_not_change_the_pixels(tmp_path):
    data = with_chunk(png(GRAY), b"gAMA", (45455).to_bytes(4, "big"))
    data = with_chunk(data, b"tEXt", b"Comment\x00made in a test")
    path = tmp_path / "image.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(image_files.read_plain_image(path, "keep"), pillow_rule(path, "keep"))


def test_other_extensions_are_not_sniffed(tmp_path):
    path = tmp_path / "image.jpg"
    path.write_bytes(png(GRAY))  # a PNG under another name: Pillow's path, as before
    assert image_files.read_plain_image(path, "keep") is None
    np.testing.assert_array_equal(image_files.read_image_file(path, "keep"), GRAY)
