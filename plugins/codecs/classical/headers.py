"""Split classical-codec bitstreams into header bytes and payload bytes, and check their structure.

Each ``*_layout(data)`` function walks one container/codestream format and returns a
:class:`Layout` (``header + payload == len(data)``), or raises :class:`MalformedStream`
when the stream is truncated, has trailing bytes, or is not that format. The codecs in
:mod:`taskcodec_plugins.codecs.classical.codecs` use them for ``payload_bytes`` and to reject
truncated streams that a library would otherwise decode without complaint (libjpeg-turbo
decodes a JPEG that lost its EOI marker; libpng one that lost the end of its IEND chunk).

What counts as payload (everything else is header):
  JPEG:     the entropy-coded data after each SOS segment, including the RSTn markers and
            stuffed zero bytes inside it. SOI, every marker segment (APPn, DQT, SOF, DHT,
            SOS, DRI, COM...) and EOI are header. A progressive JPEG's several scans are
            handled alike (DHT segments between scans are header).
  JPEG 2000 (raw J2K codestream): the packet data after each SOD marker. SOC, the main
            header (SIZ, COD, QCD...), every tile-part header (SOT...SOD) and EOC are header.
  WebP:     the data of the ``VP8 ``/``VP8L`` chunk (the VP8 frame header inside it is
            counted as payload). The RIFF header and chunk headers are header.
  AVIF:     the contents of the ``mdat`` box (the AV1 OBUs, including the ~10-byte sequence
            header OBU). ``ftyp``, ``meta`` (item properties, ~250-300 bytes) and the box
            headers are header.
  PNG:      the data of the IDAT chunks. Signature, IHDR, other chunks, every chunk's
            length/type/CRC and IEND are header.

Only the standard library is used; no codec library is imported here.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "Layout",
    "MalformedStream",
    "avif_layout",
    "j2k_layout",
    "jpeg_layout",
    "png_layout",
    "webp_layout",
]


class MalformedStream(ValueError):
    """The bytes are not a complete, well-formed stream of the expected format."""


class Layout(NamedTuple):
    """Byte counts of a stream: ``header + payload == len(data)``."""

    header: int
    payload: int


def _u16(data: bytes, pos: int, what: str) -> int:
    if pos + 2 > len(data):
        raise MalformedStream(f"truncated {what} at byte {pos} of {len(data)}")
    return (data[pos] << 8) | data[pos + 1]


def _u32(data: bytes, pos: int, what: str, little: bool = False) -> int:
    if pos + 4 > len(data):
        raise MalformedStream(f"truncated {what} at byte {pos} of {len(data)}")
    return struct.unpack_from("<I" if little else ">I", data, pos)[0]


# --------------------------------------------------------------------------- JPEG
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = 0xD8, 0xD9, 0xDA
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0..RST7: markers without a length


def _jpeg_scan_end(data: bytes, pos: int) -> int:
    """Index of the marker that ends the entropy-coded data starting at ``pos``."""
    n = len(data)
    while True:
        i = data.find(b"\xff", pos)
        if i < 0 or i + 1 >= n:
            raise MalformedStream("truncated JPEG: entropy-coded data is not followed by a marker")
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:  # stuffed 0xFF byte, or a restart marker
            pos = i + 2
        elif nxt == 0xFF:  # fill byte before a marker
            pos = i + 1
        else:
            return i


def jpeg_layout(data: bytes) -> Layout:
    """Header/payload split of a JPEG (JFIF) file; the stream must end exactly with EOI."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != _JPEG_SOI:
        raise MalformedStream("not a JPEG stream: it does not start with the SOI marker FF D8")
    pos, payload, seen_scan = 2, 0, False
    while True:
        if pos + 2 > n:
            raise MalformedStream("truncated JPEG: no EOI marker")
        if data[pos] != 0xFF:
            raise MalformedStream(f"corrupt JPEG: expected a marker at byte {pos}, found 0x{data[pos]:02X}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _JPEG_EOI:
            if not seen_scan:
                raise MalformedStream("corrupt JPEG: EOI before any scan")
            if pos + 2 != n:
                raise MalformedStream(f"JPEG has {n - pos - 2} trailing bytes after EOI")
            return Layout(n - payload, payload)
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == _JPEG_SOI or marker == 0x00:
            raise MalformedStream(f"corrupt JPEG: unexpected marker FF {marker:02X} at byte {pos}")
        length = _u16(data, pos + 2, "JPEG marker segment length")
        end = pos + 2 + length
        if length < 2 or end > n:
            raise MalformedStream(f"truncated JPEG: marker segment FF {marker:02X} at byte {pos} overruns the data")
        pos = end
        if marker == _JPEG_SOS:
            seen_scan = True
            scan_end = _jpeg_scan_end(data, pos)
            payload += scan_end - pos
            pos = scan_end


# --------------------------------------------------------------------------- JPEG 2000
_J2K_SOC, _J2K_SOT, _J2K_SOD, _J2K_EOC = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9


def j2k_layout(data: bytes) -> Layout:
    """Header/payload split of a raw JPEG 2000 codestream (SOC ... EOC, no JP2 boxes)."""
    n = len(data)
    if _u16(data, 0, "J2K SOC marker") != _J2K_SOC:
        raise MalformedStream("not a raw JPEG 2000 codestream: it does not start with the SOC marker FF 4F")
    pos = 2
    # main header: marker segments up to the first SOT
    while (marker := _u16(data, pos, "J2K main header")) != _J2K_SOT:
        if marker >> 8 != 0xFF or marker == _J2K_EOC:
            raise MalformedStream(f"corrupt JPEG 2000 main header: 0x{marker:04X} at byte {pos}")
        pos += 2 + _u16(data, pos + 2, "J2K marker segment length")
        if pos > n:
            raise MalformedStream("truncated JPEG 2000 main header")
    payload = 0
    while (marker := _u16(data, pos, "J2K tile-part")) != _J2K_EOC:
        if marker != _J2K_SOT:
            raise MalformedStream(
                f"corrupt JPEG 2000 codestream: expected SOT or EOC at byte {pos}, found 0x{marker:04X}"
            )
        start = pos
        psot = _u32(data, pos + 6, "J2K SOT segment")  # tile-part length, from SOT to its last byte
        pos += 2 + _u16(data, pos + 2, "J2K SOT length")
        while (marker := _u16(data, pos, "J2K tile-part header")) != _J2K_SOD:
            if marker >> 8 != 0xFF:
                raise MalformedStream(f"corrupt JPEG 2000 tile-part header at byte {pos}")
            pos += 2 + _u16(data, pos + 2, "J2K marker segment length")
        pos += 2  # SOD
        end = n - 2 if psot == 0 else start + psot  # Psot 0: the last tile-part runs up to EOC
        if end < pos or end > n - 2:
            raise MalformedStream(f"truncated JPEG 2000 codestream: tile-part at byte {start} claims {psot} bytes")
        payload += end - pos
        pos = end
    if pos + 2 != n:
        raise MalformedStream(f"JPEG 2000 codestream has {n - pos - 2} trailing bytes after EOC")
    return Layout(n - payload, payload)


# --------------------------------------------------------------------------- WebP
def webp_layout(data: bytes) -> Layout:
    """Header/payload split of a WebP (RIFF) file; the RIFF size must match the data."""
    n = len(data)
    if n < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedStream("not a WebP file: no RIFF/WEBP signature")
    riff_size = _u32(data, 4, "RIFF size", little=True)
    if riff_size + 8 != n:
        raise MalformedStream(f"WebP RIFF size says {riff_size + 8} bytes, the data has {n}")
    pos, payload, image_chunk = 12, 0, False
    while pos < n:
        fourcc = data[pos : pos + 4]
        size = _u32(data, pos + 4, "WebP chunk header", little=True)
        pos += 8
        if pos + size > n:
            raise MalformedStream(f"truncated WebP chunk {fourcc!r}")
        if fourcc in (b"VP8 ", b"VP8L"):
            payload += size
            image_chunk = True
        pos += size + (size & 1)  # chunks are padded to an even size
    if pos != n or not image_chunk:
        raise MalformedStream("corrupt WebP file: chunks do not fill the RIFF container or no image chunk")
    return Layout(n - payload, payload)


# --------------------------------------------------------------------------- AVIF (ISOBMFF)
def avif_layout(data: bytes) -> Layout:
    """Header/payload split of an AVIF file: its top-level boxes must tile the data exactly."""
    n = len(data)
    if n < 8 or data[4:8] != b"ftyp":
        raise MalformedStream("not an AVIF file: it does not start with an ftyp box")
    pos, payload, seen_mdat = 0, 0, False
    while pos < n:
        size = _u32(data, pos, "ISOBMFF box header")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:  # 64-bit size follows
            if pos + 16 > n:
                raise MalformedStream("truncated ISOBMFF box header")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:  # box extends to the end of the file
            size = n - pos
        if size < header or pos + size > n:
            raise MalformedStream(f"truncated or corrupt AVIF box {kind!r} at byte {pos}")
        if kind == b"mdat":
            payload += size - header
            seen_mdat = True
        pos += size
    if not seen_mdat:
        raise MalformedStream("corrupt AVIF file: no mdat box")
    return Layout(n - payload, payload)


# --------------------------------------------------------------------------- PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_layout(data: bytes) -> Layout:
    """Header/payload split of a PNG file; it must end exactly with the IEND chunk."""
    n = len(data)
    if data[:8] != _PNG_SIGNATURE:
        raise MalformedStream("not a PNG file: no PNG signature")
    pos, payload = 8, 0
    while True:
        length = _u32(data, pos, "PNG chunk header")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length  # length, type, data, CRC
        if len(kind) < 4 or end > n:
            raise MalformedStream(f"truncated PNG chunk {kind!r} at byte {pos}")
        if kind == b"IDAT":
            payload += length
        pos = end
        if kind == b"IEND":
            if pos != n:
                raise MalformedStream(f"PNG has {n - pos} trailing bytes after IEND")
            return Layout(n - payload, payload)
