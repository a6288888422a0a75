"""The ``compnet-png`` codec: a compression CNN's quantised representation, stored losslessly as PNG.

The design of Bian et al., "A Deep Image Compression Framework for Face Recognition" (arXiv
1907.01714): a Compression Network turns the image into a compact representation, an existing
lossless codec (PNG) stores it, and a Reconstruction Network restores the image. The networks,
quantiser and rate proxy are ours (see :mod:`taskcodec_plugins.codecs.compnet_png.models`). Each rate point
is one trained model, named by its nominal rate ``nominal_bpp = channels * log2(levels) /
downsampling**2`` (the representation's raw bits per pixel before PNG; the real rate is the bytes
written, usually far less)::

    codecs:
      - name: compnet-png
        options: {models: models/lfw/compnet-joint}
        rate_points: [0.25, 0.75, 2.0]   # default: every nominal bpp in the folder

Options:
  models              folder of checkpoints (``*.pt``, format in
                      :mod:`taskcodec_plugins.codecs.compnet_png.models`); two with the same nominal bpp are an
                      error. Its path is not part of the cache key; the weights' digests are.
  untrained_seed      instead of ``models``: deterministic UNTRAINED stand-ins for tests and
                      pipeline checks, never leaderboards (the identity says ``"untrained": true``).
  untrained_rate_points  the stand-ins' (channels, levels) pairs (default [[2, 4], [4, 8], [8, 16],
                      [16, 16]]: nominal bpp 0.25, 0.75, 2 and 4 at downsampling 4).
  downsampling, width, in_channels
                      the architecture (2/4/8/16, feature maps, 1 or 3 input channels). Stand-ins
                      default to 4, 32 and 3; with ``models`` they are read from the checkpoints
                      and, when given, must match every checkpoint.
  device              "cpu" (default) or "cuda" (part of the cache key: float results may differ).

Coding: the image is padded at the bottom and right to a multiple of the downsampling factor
(replicate; the padded area is coded and its bytes count), the encoder gives ``channels`` maps of
uint8 symbols (h x w each), stacked vertically into one gray ``channels*h x w`` image and written
by ``imagecodecs.png_encode`` at zlib level 9 after the header below. ``payload_bytes`` is the PNG
file; ``encode_with_stats`` adds ``estimated_bits``, the model's rate proxy (Sub-filter residuals
under its learned density; PNG's container, ~60 bytes, is not in it). Gray images on a 3-channel
model are coded as their RGB replication and decoded to the channel mean; an RGB image for a
1-channel model is an error.

Stream layout, version 1 (``V``: unsigned LEB128 varint, as in
:mod:`taskcodec_plugins.codecs.trained.bitstream`)::

    0   3  magic b"CNP"
    3   1  format version (1)
    4   8  model id: the first 8 bytes of the weights digest (sha256)
    12  1  flags: bit 0 RGB image (else gray); the other bits are 0
    13  V  image height H (1..65535)
    .   V  image width W (1..65535)
    .   4  CRC-32 (zlib, big-endian) of every byte before it and of the PNG
    .   .  the PNG file, to the end of the stream

19-23 header bytes. A stream that is cut, has trailing bytes, carries a field out of range, is not
a complete PNG or fails the CRC raises CodecError with a reason; a PNG whose size or symbols do not
fit the model is refused before the decoder network runs.
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import taskcodec
from taskcodec import CodecError
from taskcodec_plugins.codecs.compnet_png import models  # imports neither torch nor compressai at module level
from taskcodec_plugins.codecs.trained import bitstream
from taskcodec_plugins.codecs.trained import model_folder
from taskcodec_plugins.codecs.classical.headers import MalformedStream as MalformedPNG
from taskcodec_plugins.codecs.classical.headers import png_layout

FORMAT_REVISION = "1"  # bump when this plugin's bytes change for the same model and library versions
UNTRAINED_RATE_POINTS = ((2, 4), (4, 8), (8, 16), (16, 16))  # (channels, levels)
UNTRAINED_DEFAULTS = {"downsampling": 4, "width": models.DEFAULT_WIDTH, "in_channels": 3}
PNG_LEVEL = 9  # zlib's highest


# ---------------------------------------------------------------------------------------------- stream
MAGIC = b"CNP"
FORMAT_VERSION = 1
FIXED_BYTES = len(MAGIC) + 1 + bitstream.MODEL_ID_BYTES + 1  # magic, version, model id, flags
CRC_BYTES = 4
RGB_FLAG = 1


class StreamHeader(NamedTuple):
    model_id: bytes  # bitstream.MODEL_ID_BYTES bytes
    rgb: bool
    height: int
    width: int

    def padded_size(self, multiple: int) -> tuple[int, int]:
        return -(-self.height // multiple) * multiple, -(-self.width // multiple) * multiple


def pack_stream(header: StreamHeader, png: bytes) -> bytes:
    """The complete stream: header (CRC included) followed by the PNG file."""
    if len(header.model_id) != bitstream.MODEL_ID_BYTES:
        raise ValueError(f"model id must be {bitstream.MODEL_ID_BYTES} bytes, got {len(header.model_id)}")
    if not (1 <= header.height <= bitstream.MAX_SIDE and 1 <= header.width <= bitstream.MAX_SIDE):
        raise ValueError(f"image sides must be 1..{bitstream.MAX_SIDE}, got {header.height}x{header.width}")
    head = MAGIC + bytes([FORMAT_VERSION]) + header.model_id + bytes([RGB_FLAG if header.rgb else 0])
    head += bitstream.write_varint(header.height) + bitstream.write_varint(header.width)
    return head + struct.pack(">I", zlib.crc32(png, zlib.crc32(head))) + png


def _parse(data: bytes) -> tuple[StreamHeader, int]:
    """Header and offset of the PNG; checks every field and the PNG's structure, not the CRC."""
    n = len(data)
    if data[: len(MAGIC)] != MAGIC[:n]:
        raise bitstream.MalformedStream(f"not a compnet-png stream: it does not start with the magic bytes {MAGIC!r}")
    if n <= FIXED_BYTES:
        raise bitstream.MalformedStream(f"truncated stream: {n} bytes, shorter than the header")
    if data[3] != FORMAT_VERSION:
        raise bitstream.MalformedStream(f"stream format version {data[3]}; this decoder reads version {FORMAT_VERSION}")
    flags = data[FIXED_BYTES - 1]
    if flags & ~RGB_FLAG:
        raise bitstream.MalformedStream(f"corrupt header: unknown flags 0x{flags:02x}")
    height, pos = bitstream.read_varint(data, FIXED_BYTES, "height")
    width, pos = bitstream.read_varint(data, pos, "width")
    if not (1 <= height <= bitstream.MAX_SIDE and 1 <= width <= bitstream.MAX_SIDE):
        raise bitstream.MalformedStream(f"corrupt header: image size {height}x{width} outside 1..{bitstream.MAX_SIDE}")
    start = pos + CRC_BYTES
    if n <= start:
        raise bitstream.MalformedStream(f"truncated stream: {n} bytes, it ends inside the header")
    try:
        png_layout(data[start:])
    except MalformedPNG as exc:
        raise bitstream.MalformedStream(f"{'truncated' if 'truncated' in str(exc) else 'corrupt'} stream: {exc}") from None
    return StreamHeader(bytes(data[4 : 4 + bitstream.MODEL_ID_BYTES]), bool(flags & RGB_FLAG), height, width), start


def stream_layout(data: bytes) -> bitstream.Layout:
    """Header and payload (PNG file) byte counts (structure checked, CRC not)."""
    _, start = _parse(bytes(data))
    return bitstream.Layout(start, len(data) - start)


def unpack_stream(data: bytes) -> tuple[StreamHeader, bytes]:
    """Parse and verify a stream: its header and its PNG file, or :class:`bitstream.MalformedStream`."""
    data = bytes(data)
    header, start = _parse(data)
    stored = struct.unpack_from(">I", data, start - CRC_BYTES)[0]
    crc = zlib.crc32(data[start:], zlib.crc32(data[: start - CRC_BYTES]))
    if crc != stored:
        raise bitstream.MalformedStream(f"corrupt stream: CRC-32 mismatch (stored {stored:08x}, computed {crc:08x})")
    return header, data[start:]


# ---------------------------------------------------------------------------------------------- options
def _version() -> str:
    """``version``: format revision and the versions of what makes the bytes, read without importing them."""
    libraries = [taskcodec.LazyVersion.installed(package) for package in ("imagecodecs", "torch")]
    return "; ".join([FORMAT_REVISION, f"stream v{FORMAT_VERSION}", f"png level {PNG_LEVEL}", *libraries])


def _pair_ok(pair: Any) -> bool:
    """A [channels, levels] pair, both in range."""
    return isinstance(pair, (list, tuple)) and len(pair) == 2 and not models.CompNetArch(pair[0], pair[1], 4).problems()


def _optional_pairs(value: Any) -> list[list[int]] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(_pair_ok(p) for p in value):
        raise ValueError(f"a non-empty list of [channels, levels] pairs (channels 1..{models.MAX_CHANNELS}, "
                         f"levels 2..{models.MAX_LEVELS}) or null")
    return [[int(c), int(l)] for c, l in value]


OPTION_SPECS = model_folder.option_specs("untrained_rate_points", _optional_pairs, {
    "downsampling": (None, taskcodec.Accept.one_of(*models.DOWNSAMPLINGS, optional=True)),
    "width": (None, taskcodec.Accept.integer(1, 4096, optional=True)),
})
ARCH_OPTIONS = ("downsampling", "width", "in_channels")


# ---------------------------------------------------------------------------------------------- codec
class CompNetPngCodec(model_folder.ModelFolderCodec):
    name = "compnet-png"
    version = taskcodec.LazyVersion(_version)  # type: ignore[assignment]
    rate_parameter = "nominal_bpp"
    default_rate_points = ()  # per instance: the nominal bpp of its models
    needs_options = True
    description = (
        "CNN representation stored losslessly as PNG (Bian et al. 2019, arXiv 1907.01714), one trained model per "
        "nominal bpp; options: models=FOLDER (or untrained_seed=N: untrained stand-ins for tests, never leaderboards)"
    )

    models_module = models
    arch_options = ARCH_OPTIONS
    accepted_options = tuple(OPTION_SPECS)

    def __init__(self, **options: Any) -> None:
        super().__init__(model_folder.checked_options(self, options, OPTION_SPECS, "untrained_rate_points"))
        if self._entries is not None:
            rate_points = [e.rate_point for e in self._entries]
        else:
            rate_points = self._check_distinct([a.nominal_bpp for a in self._untrained_archs()], "untrained_rate_points")
        self.default_rate_points = tuple(sorted(rate_points))  # type: ignore[misc]

    @classmethod
    def train(cls, request: taskcodec.CodecTrainingRequest) -> dict[str, Any]:
        """``taskcodec train-codec``: one model per nominal bpp (see :mod:`taskcodec_plugins.codecs.compnet_png.training`)."""
        from taskcodec_plugins.codecs.compnet_png.training import train_compnet

        return train_compnet(request)

    # models --------------------------------------------------------------------------
    def _arch_option(self, key: str) -> Any:
        value = self._options[key]
        return UNTRAINED_DEFAULTS[key] if value is None else value

    def _untrained_archs(self) -> list[models.CompNetArch]:
        pairs = self._options["untrained_rate_points"] or UNTRAINED_RATE_POINTS
        arch = {k: self._arch_option(k) for k in ARCH_OPTIONS}
        return [models.CompNetArch(c, l, **arch) for c, l in pairs]

    def _check_distinct(self, rate_points: list[float], where: str) -> list[float]:
        ordered = sorted(rate_points)
        for a, b in zip(ordered, ordered[1:]):
            if math.isclose(a, b, rel_tol=1e-6):
                raise CodecError(f"codec {self.name!r}: two models for nominal bpp {a:g} in {where}")
        return ordered

    def _entry_from(self, document: dict[str, Any], path: Path) -> models.ModelEntry:
        return models.ModelEntry(models.checkpoint_arch(document), document["digest"], document["mode"], document["seed"],
                             str(path.resolve()))

    def _describe_entry(self, entry: models.ModelEntry) -> str:
        return f"{entry.path or entry.digest} ({entry.arch.channels} channels, {entry.arch.levels} levels)"

    def entries(self) -> list[models.ModelEntry]:
        """The rate points' models, lowest nominal bpp first (builds untrained stand-ins on first use)."""
        if self._entries is None:
            seed, device = self._options["untrained_seed"], self._options["device"]
            entries = []
            for arch in self._untrained_archs():
                model = models.untrained_compnet(arch, seed)
                entry = models.ModelEntry(arch, models.model_digest(model), "untrained", seed)
                model_folder.cache_model((entry.digest, device), models.prepare_for_coding(model, device))
                entries.append(entry)
            self._entries = self._checked(entries, "untrained stand-ins")
        return self._entries

    def _rebuild_stand_in(self, entry: models.ModelEntry) -> tuple[Any, str]:
        model = models.untrained_compnet(entry.arch, entry.seed)
        return model, models.model_digest(model)

    # coding --------------------------------------------------------------------------
    def _input(self, image: np.ndarray, arch: models.CompNetArch):
        """The padded in_channels x H' x W' tensor of ``image`` on the codec's device."""
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        d = arch.downsampling
        x = torch.from_numpy(image.astype(np.float32)).div_(255.0)  # a copy: the image may be read-only
        x = x.permute(2, 0, 1) if image.ndim == 3 else x[None].expand(arch.in_channels, -1, -1)
        x = x[None].contiguous().to(self._options["device"])
        return F.pad(x, (0, -width % d, 0, -height % d), mode="replicate")[0]

    def _encode(self, image: np.ndarray, rate_point: float, estimate: bool) -> tuple[bytes, dict[str, float]]:
        import imagecodecs
        import torch

        entry = self._entry(rate_point)
        rgb = image.ndim == 3
        if rgb and entry.arch.in_channels == 1:
            raise CodecError(f"codec {self.name!r}: the model for nominal bpp {rate_point:g} takes 1-channel (gray) "
                             f"images, got an RGB image {image.shape}")
        model = self._model(entry)
        with torch.inference_mode():
            symbols = model.encode_symbols(self._input(image, entry.arch))  # C x h x w uint8
            stats = {}
            if estimate:
                s = torch.from_numpy(symbols[None]).to(self._options["device"], torch.float32)
                stats["estimated_bits"] = float(model.rate_bits(s)[0])
        png = imagecodecs.png_encode(symbols.reshape(-1, symbols.shape[-1]), level=PNG_LEVEL)
        header = StreamHeader(entry.model_id, rgb, *image.shape[:2])
        return pack_stream(header, bytes(png)), stats

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        try:
            header, png = unpack_stream(data)
        except bitstream.MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None
        entry = self._entry_for_stream(header.model_id)
        symbols = self._symbols(png, header, entry)
        model = self._model(entry)
        with torch.inference_mode():
            x = model.decode_symbols(symbols)[:, : header.height, : header.width]
            if not header.rgb:
                x = x.mean(dim=0) if x.shape[0] == 3 else x[0]
            pixels = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
        return np.ascontiguousarray(pixels.transpose(1, 2, 0)) if header.rgb else pixels

    def _symbols(self, png: bytes, header: StreamHeader, entry: models.ModelEntry) -> np.ndarray:
        """The PNG's symbols as C x h x w, checked against the model and the image size."""
        import imagecodecs

        arch = entry.arch
        padded_h, padded_w = header.padded_size(arch.downsampling)
        h, w = padded_h // arch.downsampling, padded_w // arch.downsampling
        symbols = imagecodecs.png_decode(png)
        problems = []
        if header.rgb and arch.in_channels == 1:
            problems.append("an RGB image from a 1-channel model")
        if symbols.dtype != np.uint8 or symbols.shape != (arch.channels * h, w):
            problems.append(f"the PNG holds a {symbols.shape} {symbols.dtype} image, the model writes uint8 "
                            f"{(arch.channels * h, w)} for a {header.height}x{header.width} image")
        elif int(symbols.max()) >= arch.levels:
            problems.append(f"symbol {int(symbols.max())} outside the model's {arch.levels} levels")
        if problems:
            raise CodecError(f"codec {self.name!r}: inconsistent stream: {'; '.join(problems)}")
        return symbols.reshape(arch.channels, h, w)

    def _stream_layout(self, data: bytes) -> bitstream.Layout:
        return stream_layout(data)
