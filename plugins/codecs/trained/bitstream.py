"""The self-describing bitstream of the ``learned`` codec: a small header, then CompressAI's strings.

Every byte below is part of the stream the framework measures, so the header counts in the
rate. Layout of format version 1 (``V`` = unsigned LEB128 varint: 7 bits per byte, low
group first, high bit set on every byte but the last; 1 byte below 128, 2 below 16384):

=========  =====  ==========================================================================
offset     bytes  field
=========  =====  ==========================================================================
0          2      magic ``b"LC"``
2          1      format version (1)
3          8      model id: the first 8 bytes of the model's weights digest (sha256); the
                  decoder picks the checkpoint by it and refuses a stream of another model
11         1      flags: bit 0 RGB image (else grayscale); bit 1 zero padding (else
                  replicate); bits 2-5 log2 of the padding multiple (the image is padded at
                  the bottom and right to the next multiple); bits 6-7 number of
                  entropy-coded strings minus 1
12         V      image height H (1..65535)
.          V      image width W (1..65535)
.          V      latent height: the spatial shape CompressAI's ``decompress`` takes (``y``
.          V      latent width    for factorized models, ``z`` for hyperprior models);
                  redundant with the padded size, kept so the decoder can check it
.          V x n  byte length of each string, in CompressAI's order (``y`` then ``z``)
.          4      CRC-32 (zlib, big-endian) of every header byte before it and all strings
.          ...    the strings, concatenated
=========  =====  ==========================================================================

A 48x48 image coded by a hyperprior model has a 22-23 byte header (12 fixed + 4 one-byte
varints + 1-2 bytes per string length + 4 CRC). ``payload`` is the strings alone.

Parsing never trusts a length without checking it: a stream that is cut, has trailing bytes,
carries a field out of range or fails the CRC raises :class:`MalformedStream` with a reason,
so a corrupted stream never reaches the entropy decoder. Only the standard library is used.
"""
from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

MAGIC = b"LC"
FORMAT_VERSION = 1
MODEL_ID_BYTES = 8
MAX_SIDE = 65535
MAX_STRINGS = 4
FIXED_BYTES = len(MAGIC) + 1 + MODEL_ID_BYTES + 1  # magic, version, model id, flags
CRC_BYTES = 4
MIN_STREAM_BYTES = FIXED_BYTES + 4 + 1 + CRC_BYTES  # four 1-byte varints, one string length


class MalformedStream(ValueError):
    """The bytes are not a complete, intact stream of this format."""


class StreamHeader(NamedTuple):
    model_id: bytes  # MODEL_ID_BYTES bytes
    rgb: bool
    zero_padding: bool
    pad_log2: int  # the image is padded to a multiple of 2**pad_log2
    height: int
    width: int
    latent_height: int
    latent_width: int

    @property
    def pad_multiple(self) -> int:
        return 1 << self.pad_log2

    @property
    def padded_size(self) -> tuple[int, int]:
        m = self.pad_multiple
        return -(-self.height // m) * m, -(-self.width // m) * m


class Layout(NamedTuple):
    header: int  # bytes before the first string (CRC included)
    payload: int  # bytes of the strings


def write_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varints are unsigned, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """(value, position after it); rejects truncated and over-long (non-minimal) varints."""
    value = shift = 0
    start = pos
    while True:
        if pos >= len(data):
            raise MalformedStream(f"truncated stream: it ends inside the {what} field (byte {start})")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and pos - start > 1:
                raise MalformedStream(f"corrupt header: over-long varint in the {what} field (byte {start})")
            return value, pos
        shift += 7
        if shift > 28:
            raise MalformedStream(f"corrupt header: the {what} field (byte {start}) is not a valid varint")


def pack(header: StreamHeader, strings: list[bytes]) -> bytes:
    """The complete stream: header (with CRC) followed by ``strings``."""
    if len(header.model_id) != MODEL_ID_BYTES:
        raise ValueError(f"model id must be {MODEL_ID_BYTES} bytes, got {len(header.model_id)}")
    if not 1 <= len(strings) <= MAX_STRINGS:
        raise ValueError(f"1..{MAX_STRINGS} strings, got {len(strings)}")
    if not 0 <= header.pad_log2 <= 15:
        raise ValueError(f"pad_log2 must be 0..15, got {header.pad_log2}")
    if not (1 <= header.height <= MAX_SIDE and 1 <= header.width <= MAX_SIDE):
        raise ValueError(f"image sides must be 1..{MAX_SIDE}, got {header.height}x{header.width}")
    flags = int(header.rgb) | int(header.zero_padding) << 1 | header.pad_log2 << 2 | (len(strings) - 1) << 6
    head = bytearray(MAGIC)
    head.append(FORMAT_VERSION)
    head += header.model_id
    head.append(flags)
    for value in (header.height, header.width, header.latent_height, header.latent_width):
        head += write_varint(value)
    for s in strings:
        head += write_varint(len(s))
    crc = zlib.crc32(bytes(head))
    for s in strings:
        crc = zlib.crc32(s, crc)
    return bytes(head) + struct.pack(">I", crc) + b"".join(strings)


def _parse(data: bytes) -> tuple[StreamHeader, list[int], int]:
    """Header, string lengths, offset of the first string; checks everything but the CRC."""
    n = len(data)
    if data[: len(MAGIC)] != MAGIC[:n]:
        raise MalformedStream(f"not a learned-codec stream: it does not start with the magic bytes {MAGIC!r}")
    if n < MIN_STREAM_BYTES:
        raise MalformedStream(f"truncated stream: {n} bytes, shorter than the smallest header ({MIN_STREAM_BYTES} bytes)")
    if data[2] != FORMAT_VERSION:
        raise MalformedStream(f"stream format version {data[2]}; this decoder reads version {FORMAT_VERSION}")
    model_id = bytes(data[3 : 3 + MODEL_ID_BYTES])
    flags = data[3 + MODEL_ID_BYTES]
    pos = FIXED_BYTES
    fields = []
    for what in ("height", "width", "latent height", "latent width"):
        value, pos = read_varint(data, pos, what)
        fields.append(value)
    height, width, latent_h, latent_w = fields
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise MalformedStream(f"corrupt header: image size {height}x{width} outside 1..{MAX_SIDE}")
    header = StreamHeader(model_id, bool(flags & 1), bool(flags & 2), (flags >> 2) & 0xF, height, width, latent_h, latent_w)
    lengths = []
    for i in range((flags >> 6) + 1):
        length, pos = read_varint(data, pos, f"string {i} length")
        lengths.append(length)
    start = pos + CRC_BYTES
    expected = start + sum(lengths)
    if n < expected:
        raise MalformedStream(f"truncated stream: the header announces {expected} bytes, the stream has {n}")
    if n > expected:
        raise MalformedStream(f"corrupt stream: {n - expected} bytes after the {expected} the header announces")
    return header, lengths, start


def layout(data: bytes) -> Layout:
    """Header and payload byte counts (structure checked, CRC not)."""
    _, lengths, start = _parse(bytes(data))
    return Layout(start, sum(lengths))


def unpack(data: bytes) -> tuple[StreamHeader, list[bytes]]:
    """Parse and verify a stream: its header and its strings, or :class:`MalformedStream`."""
    data = bytes(data)
    header, lengths, start = _parse(data)
    stored = struct.unpack_from(">I", data, start - CRC_BYTES)[0]
    crc = zlib.crc32(data[: start - CRC_BYTES])
    crc = zlib.crc32(data[start:], crc)
    if crc != stored:
        raise MalformedStream(f"corrupt stream: CRC-32 mismatch (stored {stored:08x}, computed {crc:08x})")
    strings, pos = [], start
    for length in lengths:
        strings.append(data[pos : pos + length])
        pos += length
    return header, strings


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MIN_STREAM_BYTES",
    "MODEL_ID_BYTES",
    "Layout",
    "MalformedStream",
    "StreamHeader",
    "layout",
    "pack",
    "read_varint",
    "unpack",
    "write_varint",
]
