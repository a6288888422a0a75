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

from typing import Any, Callable, ClassVar, NamedTuple

import numpy as np

import taskcodec
from taskcodec import Codec, CodecError
from taskcodec_plugins.codecs.classical import headers

FORMAT_REVISION = "1"  # bump when taskcodec's own framing of any stream below changes


def _library_version(version_function: str) -> taskcodec.LazyVersion:
    """``version``: format revision, imagecodecs and codec library versions (read on first use, so that
    listing plugins does not load the codec extensions; a missing library: encode() will say so)."""

    def compute() -> str:
        import imagecodecs

        return f"{FORMAT_REVISION}; imagecodecs {imagecodecs.__version__}; {getattr(imagecodecs, version_function)()}"

    return taskcodec.LazyVersion(compute, lambda exc: f"{FORMAT_REVISION}; unavailable ({type(exc).__name__})")


class RateScale(NamedTuple):
    """A codec's rate points: the parameter's name (None: no rate parameter), default rate points, accepted
    range, integers only?"""

    parameter: str | None
    default_points: tuple[Any, ...]
    rate_point_range: tuple[float, float] | None
    integers: bool = True


class SizeLimit(NamedTuple):
    """The largest image the library codes (and decodes back): pixels per side, and in all (None: no limit of
    its own below the side limit's square); ``source`` says where the numbers come from."""

    max_side: int
    source: str
    max_pixels: int | None = None


class _ImagecodecsCodec(Codec):
    """Shared option handling, rate point validation, error wrapping and output checks."""

    # option name -> (default, check returning the value to use or raising ValueError), see taskcodec.read_options
    option_specs: ClassVar[dict[str, tuple[Any, Callable[[Any], Any]]]] = {}
    integer_rate_points: ClassVar[bool] = True
    rate: ClassVar[RateScale]  # sets rate_parameter, default_rate_points, rate_point_range, integer_rate_points
    # checked in encode() before calling the library; sets max_side, max_pixels, limit_source
    size_limit: ClassVar[SizeLimit] = SizeLimit(2**31 - 1, "")
    # Decoding: imagecodecs' ``<library>_decode`` with these keyword arguments, after the stream's headers are parsed
    # (``stream_layout``, from :mod:`.headers`: it refuses a truncated stream, which some libraries decode
    # without an error). Without a stream_layout the headers are not separated (``payload_bytes`` None).
    decoder_options: ClassVar[dict[str, Any]] = {}
    stream_layout: ClassVar[Callable[[bytes], headers.Layout] | None] = None

    library: ClassVar[str] = ""  # imagecodecs' name for it: <library>_encode, _decode, _version

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.accepted_options = tuple(cls.option_specs)  # what a config's options are checked against
        cls.version = _library_version(f"{cls.library}_version")
        cls.rate_parameter, cls.default_rate_points, cls.rate_point_range, cls.integer_rate_points = cls.rate
        cls.max_side, cls.limit_source, cls.max_pixels = cls.size_limit

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
        if max(height, width) > self.max_side:
            raise CodecError(f"codec {self.name!r}: image {width}x{height} (width x height) exceeds its limit of "
                             f"{self.max_side} pixels per side ({self.limit_source})")
        if self.max_pixels is not None and height * width > self.max_pixels:
            raise CodecError(f"codec {self.name!r}: image {width}x{height} (width x height) has {height * width:,} "
                             f"pixels, more than its limit of {self.max_pixels:,} ({self.limit_source})")

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
        except headers.MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        if self.stream_layout is not None:
            self._layout(data)
        return getattr(imagecodecs, f"{self.library}_decode")(data, **self.decoder_options)

    def _layout(self, data: bytes) -> headers.Layout:
        # the runner decodes a stream, then asks its payload_bytes: parse it once (the same bytes object,
        # kept alive here, so `is` cannot match another stream; bytes are immutable)
        last = self.__dict__.get("_last_layout")
        if last is not None and last[0] is data:
            return last[1]
        layout = self.stream_layout(data)
        self._last_layout = (data, layout)
        return layout

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_last_layout"}  # no stream in a pickled codec

    # subclasses implement this
    def _encode(self, image: np.ndarray, rate_point: Any) -> bytes:
        raise NotImplementedError


def _as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


# --------------------------------------------------------------------------- JPEG
class JpegCodec(_ImagecodecsCodec):
    name = "jpeg"
    library = "jpeg8"
    rate = RateScale("quality", (5, 10, 20, 30, 50, 75, 90), (1, 100))
    description = (
        "JPEG (libjpeg-turbo via imagecodecs), quality 1..100; defaults = Pillow/CompressAI "
        "(baseline, 4:2:0, standard Huffman tables); options: subsampling, optimize"
    )
    size_limit = SizeLimit(65500, "libjpeg-turbo's JPEG_MAX_DIMENSION; the format's 16-bit fields allow 65535 and "
                                  "some builds accept that, so the portable limit is used")
    option_specs = {
        "subsampling": ("420", taskcodec.Accept.one_of("444", "422", "420", "440", "411")),
        "optimize": (False, taskcodec.Accept.boolean),
    }
    stream_layout = staticmethod(headers.jpeg_layout)  # libjpeg-turbo decodes a stream cut before EOI without an error

    def _encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return imagecodecs.jpeg8_encode(
            image, level=quality, subsampling=self._options["subsampling"], optimize=self._options["optimize"]
        )


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
    library = "jpeg2k"
    PSNR_POINTS = (24, 28, 32, 36, 40, 44)
    BPP_POINTS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    rate = RateScale("psnr", PSNR_POINTS, (1, 100), integers=False)
    BPP_RATE = RateScale("bpp", BPP_POINTS, (0.01, 24), integers=False)  # mode "bpp"
    description = (
        "JPEG 2000 (OpenJPEG via imagecodecs, 9/7 wavelet, raw .j2k); option mode: 'psnr' "
        "(rate_point = target PSNR dB, 1..100) or 'bpp' (rate_point = target bits/pixel, found by bisection)"
    )
    option_specs = {"mode": ("psnr", taskcodec.Accept.one_of("psnr", "bpp"))}
    size_limit = SizeLimit(2**32 - 1, "the 32-bit image size fields of the J2K SIZ marker")
    decoder_options = {"numthreads": 1}
    stream_layout = staticmethod(headers.j2k_layout)
    BISECTION_STEPS = 13  # resolution (100 - 1) / 2**13 ~ 0.012 dB

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self._options["mode"] == "bpp":
            self.rate_parameter, self.default_rate_points, self.rate_point_range, self.integer_rate_points = self.BPP_RATE

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


# --------------------------------------------------------------------------- WebP
_GRAY_MARKER = b"G"  # precedes the RIFF file of a grayscale image; RGB streams are plain WebP files


class WebpCodec(_ImagecodecsCodec):
    """Lossy WebP (libwebp). libwebp codes only YUV 4:2:0 colour; a grayscale image is coded as
    R=G=B and its stream is ``b"G" + WebP file`` (1 byte, counted in the rate). The decoder
    returns the BT.601 luma of the decoded RGB, which is the decoded Y plane up to rounding.
    """

    name = "webp"
    library = "webp"
    rate = RateScale("quality", (5, 20, 40, 60, 80, 95), (0, 100))
    description = (
        "WebP lossy (libwebp via imagecodecs), quality 0..100, option method 0..6 (default 4 = Pillow); "
        "grayscale streams carry a 1-byte marker"
    )
    option_specs = {"method": (4, taskcodec.Accept.integer(0, 6))}
    size_limit = SizeLimit(16382, "libwebp's WEBP_MAX_DIMENSION is 16383, but imagecodecs' webp_encode refuses 16383 "
                                  "too (measured with imagecodecs 2026.1.14)")

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
        headers.webp_layout(riff)
        rgb = imagecodecs.webp_decode(riff, hasalpha=False)
        if not gray:
            return rgb
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)

    def _layout(self, data: bytes) -> headers.Layout:
        gray, riff = self._split(data)
        layout = headers.webp_layout(riff)
        return headers.Layout(layout.header + int(gray), layout.payload)


# --------------------------------------------------------------------------- AVIF
class AvifCodec(_ImagecodecsCodec):
    """AVIF (libavif + libaom). Grayscale images are coded as AV1 monochrome (4:0:0), lossy, and
    decode to 2-D arrays, so the stream itself says "gray". imagecodecs codes a 2-D array
    losslessly whatever the level, so gray images are passed as R=G=B with pixelformat yuv400.
    Quality 100 is excluded: imagecodecs switches to lossless 4:4:4 with an identity matrix
    there (a gray image would come back as RGB).
    """

    name = "avif"
    description = ("AVIF (libavif/libaom via imagecodecs), quality 0..99, options speed 0..10 (default 8), "
                   "pixelformat for RGB '444' (default)/'422'/'420'; gray coded as AV1 monochrome")
    library = "avif"
    rate = RateScale("quality", (10, 25, 40, 55, 70, 85), (0, 99))
    option_specs = {"speed": (8, taskcodec.Accept.integer(0, 10)),
                    "pixelformat": ("444", taskcodec.Accept.one_of("444", "422", "420"))}
    size_limit = SizeLimit(32768, "libavif's default decoder limits, 32768 per side and 16384 x 16384 pixels: libaom "
                                  "encodes up to 65536 per side, but such streams do not decode", 16384 * 16384)
    decoder_options = {"numthreads": 1}
    stream_layout = staticmethod(headers.avif_layout)

    def _encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        pixelformat = "yuv400" if image.ndim == 2 else "yuv" + self._options["pixelformat"]
        return imagecodecs.avif_encode(
            _as_rgb(image), level=quality, speed=self._options["speed"], pixelformat=pixelformat, numthreads=1
        )


# --------------------------------------------------------------------------- JPEG XL
class JpegxlCodec(_ImagecodecsCodec):
    """JPEG XL (libjxl), raw codestream. The rate point is libjxl's quality (as ``cjxl -q``):
    distance = 0.1 + (100 - q) * 0.09 for q >= 30 (q 90 = distance 1.0, "visually lossless"),
    a quadratic below 30 up to distance 25 at q 0. Grayscale is coded natively. Effort defaults
    to 7, libjxl's and cjxl's default (imagecodecs' own default is 5).
    """

    name = "jpegxl"
    library = "jpegxl"
    rate = RateScale("quality", (10, 30, 50, 70, 85, 95), (0, 100), integers=False)
    description = (
        "JPEG XL (libjxl via imagecodecs), quality 0..100 as cjxl -q (90 = distance 1.0), "
        "option effort 1..10 (default 7)"
    )
    option_specs = {"effort": (7, taskcodec.Accept.integer(1, 10))}
    size_limit = SizeLimit(2**30, "JPEG XL codestream level 10, which libjxl selects when level 5's 2**18 per side is "
                                  "exceeded", 2**40)
    decoder_options = {"numthreads": 1}

    def _encode(self, image: np.ndarray, quality: float) -> bytes:
        import imagecodecs

        return imagecodecs.jpegxl_encode(image, level=quality, effort=self._options["effort"], numthreads=1)

    def payload_bytes(self, data: bytes) -> int | None:
        return None  # headers are bit-packed inside the codestream (a few bytes); not separated


# --------------------------------------------------------------------------- PNG
class PngCodec(_ImagecodecsCodec):
    name = "png"
    library = "png"
    rate = RateScale(None, (None,), None)
    description = "PNG (libpng via imagecodecs, zlib level 6), lossless reference"
    size_limit = SizeLimit(1_000_000, "libpng's default user limit PNG_USER_WIDTH_MAX / PNG_USER_HEIGHT_MAX, applied "
                                      "on writing too")
    stream_layout = staticmethod(headers.png_layout)  # libpng decodes a stream cut inside the IEND chunk without an error

    def _encode(self, image: np.ndarray, rate_point: None) -> bytes:
        import imagecodecs

        return imagecodecs.png_encode(image)



CODECS = (JpegCodec, Jpeg2000Codec, WebpCodec, AvifCodec, JpegxlCodec, PngCodec)
