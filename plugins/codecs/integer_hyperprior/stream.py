"""The ``integer-hyperprior`` bitstream: an 8-byte header for small images, then one rANS string.

Every byte counts in the rate, and at 48x48 one byte is 0.0035 bpp, so the header carries only what
the decoder cannot know. Layout, version 1 (``V``: unsigned LEB128 varint, 1 byte below 128)::

    0  1  magic b"I"
    1  1  format version (1) in the high 4 bits; bit 0: a gray image coded by a 3-channel model (as
          its RGB replication; it decodes to the channels' mean); the other bits are 0
    2  2  stream id: the first 2 bytes of sha256(model digest, rate point index); the decoder picks
          the model and rate point by it (ids are unique among a codec's rate points)
    4  V  image height H (1..65535)
    .  V  image width W (1..65535)
    .  2  CRC-16/CCITT (``binascii.crc_hqx``, big-endian) of the full 32-byte id, every header byte
          before it and the string: a stream of another model or a damaged one fails it
    .  .  the rANS string (``z`` then ``y``, CompressAI's buffered coder), to the end

The channels, the padding (replicate, to the model's downsampling factor) and the latent shapes
follow from the model and H, W. A stream that is cut, carries a size out of range or fails the CRC
raises :class:`MalformedStream` before any entropy decoding.
"""
from __future__ import annotations

import binascii
import struct
from typing import NamedTuple

from taskcodec_plugins.codecs.trained.bitstream import MalformedStream, read_varint, write_varint

MAGIC = b"I"
FORMAT_VERSION = 1
ID_BYTES = 2
MAX_SIDE = 65535
CRC_BYTES = 2
MIN_STREAM_BYTES = len(MAGIC) + 1 + ID_BYTES + 2 + CRC_BYTES


class Header(NamedTuple):
    stream_id: bytes
    gray_on_color: bool
    height: int
    width: int
    payload_start: int  # offset of the rANS string


def pack(stream_id: bytes, full_id: bytes, gray_on_color: bool, height: int, width: int, string: bytes) -> bytes:
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ValueError(f"image size {height}x{width} outside 1..{MAX_SIDE}")
    head = MAGIC + bytes([FORMAT_VERSION << 4 | int(gray_on_color)]) + stream_id + write_varint(height) + write_varint(width)
    crc = binascii.crc_hqx(string, binascii.crc_hqx(head, binascii.crc_hqx(full_id, 0)))
    return head + struct.pack(">H", crc) + string


def parse(data: bytes) -> Header:
    """The header, structure checked (the CRC needs the model's full id: :func:`check_crc`)."""
    n = len(data)
    if data[: len(MAGIC)] != MAGIC[:n]:
        raise MalformedStream(f"not an integer-hyperprior stream: it does not start with the magic byte {MAGIC!r}")
    if n < MIN_STREAM_BYTES:
        raise MalformedStream(f"truncated stream: {n} bytes, shorter than the smallest header ({MIN_STREAM_BYTES} bytes)")
    if data[1] >> 4 != FORMAT_VERSION:
        raise MalformedStream(f"stream format version {data[1] >> 4}; this decoder reads version {FORMAT_VERSION}")
    if data[1] & 0x0E:
        raise MalformedStream(f"corrupt header: unknown flags {data[1] & 0x0F:#x}")
    stream_id = bytes(data[2 : 2 + ID_BYTES])
    height, pos = read_varint(data, 2 + ID_BYTES, "height")
    width, pos = read_varint(data, pos, "width")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise MalformedStream(f"corrupt header: image size {height}x{width} outside 1..{MAX_SIDE}")
    if n < pos + CRC_BYTES:
        raise MalformedStream(f"truncated stream: {n} bytes end inside the header")
    return Header(stream_id, bool(data[1] & 1), height, width, pos + CRC_BYTES)


def check_crc(data: bytes, header: Header, full_id: bytes) -> None:
    start = header.payload_start
    stored = struct.unpack_from(">H", data, start - CRC_BYTES)[0]
    crc = binascii.crc_hqx(data[start:], binascii.crc_hqx(data[: start - CRC_BYTES], binascii.crc_hqx(full_id, 0)))
    if crc != stored:
        raise MalformedStream(f"corrupt stream (or another model's): CRC-16 mismatch (stored {stored:04x}, "
                              f"computed {crc:04x})")
