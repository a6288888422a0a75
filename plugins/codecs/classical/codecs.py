"""Classical image codecs through imagecodecs: jpeg, jpeg2000, webp, avif, jpegxl, png.

Every codec writes a self-contained stream; the framework counts all of its bytes. Where a
codec's library cannot carry "this image was grayscale" (libwebp), taskcodec adds a 1-byte
marker and that byte counts in the rate. ``payload_bytes`` splits off the fixed headers
as described in :mod:`taskcodec_plugins.codecs.classical.headers`.

Comparability with CompressAI's published classical-codec numbers: ``jpeg`` at its defaults
writes the same bytes as Pillow's ``Image.save(format="JPEG", quality=q)`` (4:2:0, baseline,
standard Huffman tables), and ``webp`` the same bytes as Pillow's WebP writer (method 4), for
RGB images. Streams are deterministic: encoders run single-threaded (libavif/aom writes
different bytes with 1 and 2 threads).

Only the public taskcodec API is used; imagecodecs is imported inside methods.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

import taskcodec
from taskcodec import Codec, CodecError
from taskcodec_plugins.codecs.classical import headers as bh

FORMAT_REVISION = "1"  # bump when taskcodec's own framing of any stream below changes


def _library_version(version_function: str) -> taskcodec.LazyVersion:
    """``version``: format revision, imagecodecs and codec library versions (read on first use, so that
    listing plugins does not load the codec extensions; a missing library: encode() will say so)."""

    def compute() -> str:
        import imagecodecs

        return f"{FORMAT_REVISION}; imagecodecs {imagecodecs.__version__}; {getattr(imagecodecs, version_function)()}"

    return taskcodec.LazyVersion(compute, lambda exc: f"{FORMAT_REVISION}; unavailable ({type(exc).__name__})")


class _ImagecodecsCodec(Codec):
    """Shared option handling, rate point validation, error wrapping and output checks."""

    # option name -> (default, check returning the value to use or raising ValueError), see taskcodec.read_options
    option_specs: ClassVar[dict[str, tuple[Any, Callable[[Any], Any]]]] = {}
    integer_rate_points: ClassVar[bool] = True
    # The largest image the library codes (and decodes back), checked in encode() before calling it:
    # pixels per side, and in all (None: no limit of its own below the side limit's square).
    max_side: ClassVar[int] = 2**31 - 1
    max_pixels: ClassVar[int | None] = None
    limit_source: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.accepted_options = tuple(cls.option_specs)  # what a config's options are checked against

    def __init__(self, **options: Any) -> None:
        self._options: dict[str, Any] = taskcodec.read_options(self, options, self.option_specs)

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    # taskcodec.Codec wraps these two: it checks the image, validates the rate point against
    # rate_point_range/integer_rate_points, and turns library exceptions into CodecError.
    def encode(self, image: np.ndarray, rate_point: Any) -> bytes:
        self._check_size(image)
        return bytes(self._encode(np.ascontiguousarray(image), rate_point))

    def _check_size(self, image: np.ndarray) -> None:
        """Refuse an image larger than the library's limits, naming them (its own error would not)."""
        height, width = image.shape[:2]
        size = f"{width}x{height} (width x height)"
        if max(height, width) > self.max_side:
            raise CodecError(f"codec {self.name!r}: image {size} exceeds its limit of {self.max_side} pixels per "
                             f"side ({self.limit_source})")
        if self.max_pixels is not None and height * width > self.max_pixels:
            raise CodecError(f"codec {self.name!r}: image {size} has {height * width:,} pixels, more than its limit "
                             f"of {self.max_pixels:,} ({self.limit_source})")

    def decode(self, data: bytes) -> np.ndarray:
        image = self._decode(bytes(data))
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
        ):
            raise CodecError(
                f"codec {self.name!r}: the stream decodes to {getattr(image, 'dtype', '?')} "
                f"{getattr(image, 'shape', '?')}, not an 8-bit gray or RGB image; it was not written by this codec"
            )
        return image

    def payload_bytes(self, data: bytes) -> int | None:
        try:
            return self._layout(bytes(data)).payload
        except bh.MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None

    # subclasses implement these
    def _encode(self, image: np.ndarray, rate_point: Any) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def _layout(self, data: bytes) -> bh.Layout:
        raise NotImplementedError


def _as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


# --------------------------------------------------------------------------- JPEG
class JpegCodec(_ImagecodecsCodec):
    name = "jpeg"
    version = _library_version("jpeg8_version")
    rate_parameter = "quality"
    default_rate_points = (5, 10, 20, 30, 50, 75, 90)
    description = (
        "JPEG (libjpeg-turbo via imagecodecs), quality 1..100; defaults = Pillow/CompressAI "
        "(baseline, 4:2:0, standard Huffman tables); options: subsampling, optimize"
    )
    rate_point_range = (1, 100)
    max_side = 65500
    limit_source = ("libjpeg-turbo's JPEG_MAX_DIMENSION; the format's 16-bit fields allow 65535 and some builds "
                    "accept that, so the portable limit is used")
    option_specs = {
        "subsampling": ("420", taskcodec.Accept.one_of("444", "422", "420", "440", "411")),
        "optimize": (False, taskcodec.Accept.boolean),
    }

    def _encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return imagecodecs.jpeg8_encode(
            image, level=quality, subsampling=self._options["subsampling"], optimize=self._options["optimize"]
        )

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        self._layout(data)  # libjpeg-turbo decodes a stream cut before EOI without an error
        return imagecodecs.jpeg8_decode(data)

    def _layout(self, data: bytes) -> bh.Layout:
        return bh.jpeg_layout(data)


# --------------------------------------------------------------------------- JPEG 2000
class Jpeg2000Codec(_ImagecodecsCodec):
    """OpenJPEG, irreversible 9/7 wavelet, raw J2K codestream (no JP2 boxes: ~85 bytes less).

    mode "psnr": the rate point is OpenJPEG's fixed-quality target PSNR in dB (``level=``); the
    encoder stops adding layers' data once it reaches it, so the actual PSNR lands near it.
    mode "bpp": the rate point is a target rate in bits per pixel of the whole stream. OpenJPEG
    has no rate mode in imagecodecs, so the PSNR target is bisected (15 encodes) and the
    stream returned is the largest one found whose size is <= the target (file size grows with
    the PSNR target). If even the lowest target (1 dB) overshoots, that smallest stream is
    returned. Deterministic.
    """

    name = "jpeg2000"
    version = _library_version("jpeg2k_version")
    rate_parameter = "psnr"
    default_rate_points = (24, 28, 32, 36, 40, 44)
    description = (
        "JPEG 2000 (OpenJPEG via imagecodecs, 9/7 wavelet, raw .j2k); option mode: 'psnr' "
        "(rate_point = target PSNR dB, 1..100) or 'bpp' (rate_point = target bits/pixel, found by bisection)"
    )
    integer_rate_points = False
    rate_point_range = (1, 100)
    option_specs = {"mode": ("psnr", taskcodec.Accept.one_of("psnr", "bpp"))}
    max_side = 2**32 - 1
    limit_source = "the 32-bit image size fields of the J2K SIZ marker"
    PSNR_POINTS = (24, 28, 32, 36, 40, 44)
    BPP_POINTS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    BISECTION_STEPS = 13  # resolution (100 - 1) / 2**13 ~ 0.012 dB

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self._options["mode"] == "bpp":
            self.rate_parameter = "bpp"
            self.default_rate_points = self.BPP_POINTS
            self.rate_point_range = (0.01, 24)

    def _encode_level(self, image: np.ndarray, level: float) -> bytes:
        import imagecodecs

        return imagecodecs.jpeg2k_encode(image, level=level, codecformat="j2k", reversible=False, numthreads=1)

    def _encode(self, image: np.ndarray, rate_point: float) -> bytes:
        if self._options["mode"] == "psnr":
            return self._encode_level(image, rate_point)
        budget = rate_point * image.shape[0] * image.shape[1] / 8.0  # bytes
        lo, hi = 1.0, 100.0
        best = self._encode_level(image, lo)
        if len(best) > budget:
            return best  # nothing fits: the smallest stream is the closest
        top = self._encode_level(image, hi)
        if len(top) <= budget:
            return top
        for _ in range(self.BISECTION_STEPS):  # invariant: size(lo) <= budget < size(hi)
            mid = (lo + hi) / 2
            data = self._encode_level(image, mid)
            if len(data) <= budget:
                lo, best = mid, data
            else:
                hi = mid
        return best

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        self._layout(data)
        return imagecodecs.jpeg2k_decode(data, numthreads=1)

    def _layout(self, data: bytes) -> bh.Layout:
        return bh.j2k_layout(data)


# --------------------------------------------------------------------------- WebP
_GRAY_MARKER = b"G"  # precedes the RIFF file of a grayscale image; RGB streams are plain WebP files


class WebpCodec(_ImagecodecsCodec):
    """Lossy WebP (libwebp). libwebp codes only YUV 4:2:0 colour; a grayscale image is coded as
    R=G=B and its stream is ``b"G" + WebP file`` (1 byte, counted in the rate). The decoder
    returns the BT.601 luma of the decoded RGB, which is the decoded Y plane up to rounding.
    """

    name = "webp"
    version = _library_version("webp_version")
    rate_parameter = "quality"
    default_rate_points = (5, 20, 40, 60, 80, 95)
    description = (
        "WebP lossy (libwebp via imagecodecs), quality 0..100, option method 0..6 (default 4 = Pillow); "
        "grayscale streams carry a 1-byte marker"
    )
    rate_point_range = (0, 100)
    option_specs = {"method": (4, taskcodec.Accept.integer(0, 6))}
    max_side = 16382
    limit_source = ("libwebp's WEBP_MAX_DIMENSION is 16383, but imagecodecs' webp_encode refuses 16383 too "
                    "(measured with imagecodecs 2026.1.14)")

    def _encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        # lossless=False is essential: imagecodecs' default is lossless WebP at any level
        data = imagecodecs.webp_encode(_as_rgb(image), level=quality, lossless=False, method=self._options["method"])
        return _GRAY_MARKER + bytes(data) if image.ndim == 2 else data

    def _split(self, data: bytes) -> tuple[bool, bytes]:
        gray = data[:1] == _GRAY_MARKER
        return gray, data[1:] if gray else data

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        gray, riff = self._split(data)
        bh.webp_layout(riff)
        rgb = imagecodecs.webp_decode(riff, hasalpha=False)
        if not gray:
            return rgb
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)

    def _layout(self, data: bytes) -> bh.Layout:
        gray, riff = self._split(data)
        layout = bh.webp_layout(riff)
        return bh.Layout(layout.header + int(gray), layout.payload)


# --------------------------------------------------------------------------- AVIF
class AvifCodec(_ImagecodecsCodec):
    """AVIF (libavif + libaom). Grayscale images are coded as AV1 monochrome (4:0:0), lossy, and
    decode to 2-D arrays, so the stream itself says "gray". imagecodecs codes a 2-D array
    losslessly whatever the level, so gray images are passed as R=G=B with pixelformat yuv400.
    Quality 100 is excluded: imagecodecs switches to lossless 4:4:4 with an identity matrix
    there (a gray image would come back as RGB).
    """

    name = "avif"
    version = _library_version("avif_version")
    rate_parameter = "quality"
    default_rate_points = (10, 25, 40, 55, 70, 85)
    description = (
        "AVIF (libavif/libaom via imagecodecs), quality 0..99, options speed 0..10 (default 8), "
        "pixelformat for RGB '444' (default)/'422'/'420'; gray coded as AV1 monochrome"
    )
    rate_point_range = (0, 99)
    option_specs = {
        "speed": (8, taskcodec.Accept.integer(0, 10)),
        "pixelformat": ("444", taskcodec.Accept.one_of("444", "422", "420")),
    }
    max_side = 32768
    max_pixels = 16384 * 16384
    limit_source = ("libavif's default decoder limits, 32768 per side and 16384 x 16384 pixels: libaom encodes up "
                    "to 65536 per side, but such streams do not decode")

    def _encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        pixelformat = "yuv400" if image.ndim == 2 else "yuv" + self._options["pixelformat"]
        return imagecodecs.avif_encode(
            _as_rgb(image), level=quality, speed=self._options["speed"], pixelformat=pixelformat, numthreads=1
        )

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        bh.avif_layout(data)
        return imagecodecs.avif_decode(data, numthreads=1)

    def _layout(self, data: bytes) -> bh.Layout:
        return bh.avif_layout(data)


# --------------------------------------------------------------------------- JPEG XL
class JpegxlCodec(_ImagecodecsCodec):
    """JPEG XL (libjxl), raw codestream. The rate point is libjxl's quality (as ``cjxl -q``):
    distance = 0.1 + (100 - q) * 0.09 for q >= 30 (q 90 = distance 1.0, "visually lossless"),
    a quadratic below 30 up to distance 25 at q 0. Grayscale is coded natively. Effort defaults
    to 7, libjxl's and cjxl's default (imagecodecs' own default is 5).
    """

    name = "jpegxl"
    version = _library_version("jpegxl_version")
    rate_parameter = "quality"
    default_rate_points = (10, 30, 50, 70, 85, 95)
    description = (
        "JPEG XL (libjxl via imagecodecs), quality 0..100 as cjxl -q (90 = distance 1.0), "
        "option effort 1..10 (default 7)"
    )
    integer_rate_points = False
    rate_point_range = (0, 100)
    option_specs = {"effort": (7, taskcodec.Accept.integer(1, 10))}
    max_side = 2**30
    max_pixels = 2**40
    limit_source = "JPEG XL codestream level 10, which libjxl selects when level 5's 2**18 per side is exceeded"

    def _encode(self, image: np.ndarray, quality: float) -> bytes:
        import imagecodecs

        return imagecodecs.jpegxl_encode(image, level=quality, effort=self._options["effort"], numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpegxl_decode(data, numthreads=1)

    def payload_bytes(self, data: bytes) -> int | None:
        return None  # headers are bit-packed inside the codestream (a few bytes); not separated


# --------------------------------------------------------------------------- PNG
class PngCodec(_ImagecodecsCodec):
    name = "png"
    version = _library_version("png_version")
    rate_parameter = None
    default_rate_points = (None,)
    description = "PNG (libpng via imagecodecs, zlib level 6), lossless reference"
    rate_point_range = None
    max_side = 1_000_000
    limit_source = "libpng's default user limit PNG_USER_WIDTH_MAX / PNG_USER_HEIGHT_MAX, applied on writing too"

    def _encode(self, image: np.ndarray, rate_point: None) -> bytes:
        import imagecodecs

        return imagecodecs.png_encode(image)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        self._layout(data)  # libpng decodes a stream cut inside the IEND chunk without an error
        return imagecodecs.png_decode(data)

    def _layout(self, data: bytes) -> bh.Layout:
        return bh.png_layout(data)


CODECS = (JpegCodec, Jpeg2000Codec, WebpCodec, AvifCodec, JpegxlCodec, PngCodec)
