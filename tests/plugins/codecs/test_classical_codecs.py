"""Codec-specific facts of the classical codecs (the generic contract is in test_codec_contract.py)."""
from __future__ import annotations

import io
import math

import imagecodecs
import numpy as np
import pytest

from taskcodec import CodecError
from taskcodec.errors import ConfigError, OptionError
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec_plugins.codecs.classical import headers
from taskcodec_plugins.codecs.classical.codecs import (
    AvifCodec,
    Jpeg2000Codec,
    JpegCodec,
    JpegxlCodec,
    PngCodec,
    WebpCodec,
)
from tests.helpers import natural_image

Image = pytest.importorskip("PIL.Image")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


RGB = natural_image(96, 112, color=True, seed=1)  # a face-crop-sized image (h x w = 96 x 112)
GRAY = natural_image(48, 48, color=False, seed=2)  # a FER-sized image


def pillow_bytes(image: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, **save_args)
    return buffer.getvalue()


def test_registered_by_the_plugin() -> None:
    pm = get_plugin_manager()
    for name, cls in [("jpeg", JpegCodec), ("jpeg2000", Jpeg2000Codec), ("webp", WebpCodec),
                      ("avif", AvifCodec), ("jpegxl", JpegxlCodec), ("png", PngCodec)]:
        entry = pm.get("codec", name)
        assert entry.target is cls and entry.plugin == "classical-codecs"


@pytest.mark.parametrize(
    "cls, library",
    [(JpegCodec, "libjpeg_turbo"), (Jpeg2000Codec, "openjpeg"), (WebpCodec, "libwebp"),
     (AvifCodec, "libavif"), (JpegxlCodec, "libjxl"), (PngCodec, "libpng")],
)
def test_version_names_the_libraries(cls, library: str) -> None:
    assert library in cls.version and imagecodecs.__version__ in cls.version
    assert cls().version == cls.version == cls().identity()["version"]


# --------------------------------------------------------------------------- rate points and options
def test_rate_points_are_validated_and_canonical() -> None:
    jpeg = JpegCodec()
    assert jpeg.validate_rate_point(75.0) == 75 and type(jpeg.validate_rate_point(75.0)) is int
    assert jpeg.validate_rate_point(np.int64(30)) == 30
    for bad in (0, 101, 75.5, True, "75", None):
        with pytest.raises(CodecError, match=r"'jpeg'.*quality.*1\.\.100"):
            jpeg.validate_rate_point(bad)
    assert JpegxlCodec().validate_rate_point(92.5) == 92.5
    with pytest.raises(CodecError, match=r"'avif'.*0\.\.99"):
        AvifCodec().validate_rate_point(100)
    with pytest.raises(CodecError, match="'png' has no rate parameter"):
        PngCodec().validate_rate_point(90)
    assert Jpeg2000Codec().validate_rate_point(35) == 35
    with pytest.raises(CodecError, match="'jpeg2000'.*bpp"):
        Jpeg2000Codec(mode="bpp").validate_rate_point(0)


def test_options_are_validated() -> None:
    unknown = r"^codec 'jpeg': unknown option\(s\) \['quality'\]; its options are optimize, subsampling$"
    with pytest.raises(CodecError, match=unknown):
        JpegCodec(quality=5)
    invalid = (r"^codec 'jpeg': option 'subsampling' = '421' is invalid; "
               r"expected one of \['444', '422', '420', '440', '411'\]$")
    with pytest.raises(OptionError, match=invalid):
        JpegCodec(subsampling="421")
    with pytest.raises(CodecError, match="'jpeg2000'.*option 'mode' = 'rate'"):
        Jpeg2000Codec(mode="rate")
    with pytest.raises(CodecError, match="'avif'.*option 'speed' = 11 is invalid; expected an integer in 0..10"):
        AvifCodec(speed=11)
    with pytest.raises(CodecError, match="'png'.*its options are \\(none\\)"):
        PngCodec(level=9)
    assert AvifCodec(speed=6).options() == {"speed": 6, "pixelformat": "444"}
    with pytest.raises(ConfigError):  # one option error type: also a ConfigError, as the tasks' are
        WebpCodec(method=7)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(CodecError, match="'jpeg'.*expects bytes"):
        JpegCodec().decode("not bytes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- JPEG
@pytest.mark.parametrize("quality", [10, 75])
def test_jpeg_is_byte_identical_to_pillow(quality: int) -> None:
    assert JpegCodec().encode(RGB, quality) == pillow_bytes(RGB, format="JPEG", quality=quality)
    assert JpegCodec().encode(GRAY, quality) == pillow_bytes(GRAY, format="JPEG", quality=quality)


def test_jpeg_header_of_a_48x48_gray_baseline_file() -> None:
    # Hand count: SOI 2 + APP0/JFIF 18 + DQT 69 (one 8-bit table) + SOF0 13 (one component)
    # + DHT 33 (DC) + 183 (AC) + SOS 10 + EOI 2 = 330 bytes (PROTOCOLS.md: 330 bytes, 1.146 bpp).
    data = JpegCodec().encode(GRAY, 10)
    layout = headers.jpeg_layout(data)
    assert layout.header == 2 + 18 + 69 + 13 + 33 + 183 + 10 + 2 == 330
    assert layout.header + layout.payload == len(data)
    assert JpegCodec().payload_bytes(data) == len(data) - 330
    # RGB 4:2:0: two DQT, SOF0 with three components, four DHT, SOS with three components
    rgb = JpegCodec().encode(RGB, 10)
    assert headers.jpeg_layout(rgb).header == 2 + 18 + 2 * 69 + 19 + 2 * (33 + 183) + 14 + 2 == 625
    # optimised Huffman tables shrink the header (PROTOCOLS.md: 162-203 bytes)
    optimized = JpegCodec(optimize=True).encode(GRAY, 10)
    assert 150 <= headers.jpeg_layout(optimized).header <= 210
    assert len(optimized) < len(data)


def test_jpeg_options_change_the_stream() -> None:
    assert len(JpegCodec(subsampling="444").encode(RGB, 50)) > len(JpegCodec().encode(RGB, 50))
    assert JpegCodec(subsampling="444").encode(RGB, 50) == pillow_bytes(RGB, format="JPEG", quality=50, subsampling=0)


def test_jpeg_progressive_and_restart_markers_are_parsed() -> None:
    baseline = pillow_bytes(RGB, format="JPEG", quality=75)
    progressive = pillow_bytes(RGB, format="JPEG", quality=75, progressive=True)
    restarts = pillow_bytes(RGB, format="JPEG", quality=75, restart_marker_blocks=1)
    for data in (progressive, restarts):
        layout = headers.jpeg_layout(data)
        assert layout.header + layout.payload == len(data)
        assert 0 < layout.payload < len(data)
        assert JpegCodec().decode(data).shape == RGB.shape
    # a progressive file has several scans, each with its own SOS (and DHT) segments; libjpeg
    # writes optimised Huffman tables for it, so its header need not exceed the baseline one
    scans = progressive.count(b"\xff\xda")
    assert scans > 1
    assert headers.jpeg_layout(progressive).header >= 2 + 18 + 2 * 69 + 19 + scans * 10 + 2
    # restart markers inside the entropy-coded data count as payload
    assert headers.jpeg_layout(restarts).header == headers.jpeg_layout(baseline).header + 6  # + DRI segment


@pytest.mark.parametrize("codec_cls", [JpegCodec, PngCodec, Jpeg2000Codec, WebpCodec, AvifCodec, JpegxlCodec])
def test_truncated_streams_raise(codec_cls) -> None:
    codec = codec_cls()
    for image in (RGB, GRAY):
        data = codec.encode(image, codec.default_rate_points[1 if len(codec.default_rate_points) > 1 else 0])
        for cut in (len(data) // 2, len(data) - 2, len(data) - 1):
            with pytest.raises(CodecError, match=f"'{codec.name}'"):
                codec.decode(data[:cut])


@pytest.mark.parametrize("codec_cls", [JpegCodec, Jpeg2000Codec, WebpCodec])
def test_a_stream_parsed_for_decoding_gives_its_own_payload_bytes(codec_cls) -> None:
    import pickle

    codec = codec_cls()
    first, second = (codec.encode(image, codec.default_rate_points[0]) for image in (RGB, GRAY))
    fresh = [codec_cls().payload_bytes(d) for d in (first, second)]
    codec.decode(first)  # remembers first's layout
    assert codec.payload_bytes(second) == fresh[1] and codec.payload_bytes(first) == fresh[0]
    assert codec.payload_bytes(bytearray(second)) == fresh[1]
    codec.decode(first)
    with pytest.raises(CodecError):
        codec.payload_bytes(first[:-1])  # a shorter copy is parsed, not taken for the stream before it
    assert len(pickle.dumps(codec)) < len(first)  # a pickled codec (sent to workers) carries no stream


@pytest.mark.parametrize("codec_cls", [JpegCodec, PngCodec, Jpeg2000Codec, WebpCodec, AvifCodec])
def test_trailing_bytes_raise(codec_cls) -> None:
    codec = codec_cls()
    data = codec.encode(RGB, codec.default_rate_points[0])
    with pytest.raises(CodecError):
        codec.decode(data + b"\x00\x01")


# --------------------------------------------------------------------------- JPEG 2000
def test_jpeg2000_writes_a_raw_codestream() -> None:
    data = Jpeg2000Codec().encode(RGB, 36)
    assert data[:4] == b"\xff\x4f\xff\x51" and data[-2:] == b"\xff\xd9"  # SOC, SIZ ... EOC: no JP2 boxes
    layout = headers.j2k_layout(data)
    assert layout.header + layout.payload == len(data)
    assert 60 < layout.header < 250  # SIZ, COD, QCD, COM, SOT, SOD, EOC for 3 components


def test_jpeg2000_psnr_mode_lands_near_the_target() -> None:
    codec = Jpeg2000Codec()
    sizes = []
    for target in (28, 32, 36, 40):
        data = codec.encode(RGB, target)
        sizes.append(len(data))
        assert abs(psnr(RGB, codec.decode(data)) - target) < 2.5
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("image", [RGB, GRAY, natural_image(37, 53, color=True)], ids=["rgb", "gray", "37x53"])
def test_jpeg2000_bpp_mode_stays_at_or_under_the_target(image: np.ndarray) -> None:
    codec = Jpeg2000Codec(mode="bpp")
    assert codec.rate_parameter == "bpp" and codec.default_rate_points == Jpeg2000Codec.BPP_POINTS
    assert Jpeg2000Codec.rate_parameter == "psnr"  # the class attribute is untouched
    pixels = image.shape[0] * image.shape[1]
    smallest = len(Jpeg2000Codec().encode(image, 1)) * 8 / pixels  # the lowest PSNR target
    rates = []
    for target in (0.5, 1.0, 2.0, 4.0):
        data = codec.encode(image, target)
        rates.append(len(data) * 8 / pixels)
        if smallest <= target:
            assert rates[-1] <= target
            assert rates[-1] > 0.6 * target or target > 3  # not far below it either
        else:  # nothing fits: the smallest stream is returned
            assert rates[-1] == smallest
        assert codec.decode(data).shape == image.shape
    assert rates == sorted(rates)


# --------------------------------------------------------------------------- WebP
def test_webp_is_lossy_and_matches_pillow() -> None:
    codec = WebpCodec()
    data = codec.encode(RGB, 75)
    lossless = imagecodecs.webp_encode(RGB, level=75)  # imagecodecs' default: lossless WebP
    assert len(data) < 0.5 * len(lossless)
    assert 25 < psnr(RGB, codec.decode(data)) < 60
    assert data == pillow_bytes(RGB, format="WEBP", quality=75)


def test_webp_gray_carries_a_one_byte_marker() -> None:
    codec = WebpCodec()
    gray = codec.encode(GRAY, 60)
    rgb3 = codec.encode(np.repeat(GRAY[..., None], 3, axis=2), 60)
    assert gray[:5] == b"GRIFF" and rgb3[:4] == b"RIFF"
    assert gray[1:] == rgb3 and len(gray) == len(rgb3) + 1
    decoded = codec.decode(gray)
    assert decoded.shape == GRAY.shape and psnr(GRAY, decoded) > 30
    assert codec.payload_bytes(gray) == codec.payload_bytes(rgb3)


# --------------------------------------------------------------------------- AVIF
def test_avif_gray_is_lossy_monochrome() -> None:
    codec = AvifCodec()
    lossless_size = len(imagecodecs.avif_encode(GRAY))  # a 2-D array is always lossless in imagecodecs
    low = codec.encode(GRAY, 10)
    decoded = codec.decode(low)
    assert decoded.shape == GRAY.shape and decoded.ndim == 2
    assert len(low) < 0.5 * lossless_size
    assert 20 < psnr(GRAY, decoded) < 50
    assert len(codec.encode(GRAY, 10)) < len(codec.encode(GRAY, 85))


def test_avif_options() -> None:
    assert len(AvifCodec(pixelformat="420").encode(RGB, 60)) < len(AvifCodec().encode(RGB, 60))
    assert AvifCodec(speed=6).encode(RGB, 40) != AvifCodec().encode(RGB, 40)
    layout = headers.avif_layout(AvifCodec().encode(RGB, 40))
    assert 150 < layout.header < 400  # ftyp + meta boxes: a large share of a small image's rate


# --------------------------------------------------------------------------- JPEG XL
def test_jpegxl_quality_maps_to_distance_and_gray_is_native() -> None:
    codec = JpegxlCodec()
    assert codec.encode(RGB, 90) == imagecodecs.jpegxl_encode(RGB, distance=1.0, effort=7, numthreads=1)
    decoded = codec.decode(codec.encode(GRAY, 50))
    assert decoded.shape == GRAY.shape and 25 < psnr(GRAY, decoded) < 60
    assert codec.payload_bytes(codec.encode(GRAY, 50)) is None


# --------------------------------------------------------------------------- PNG
@pytest.mark.parametrize("image", [RGB, GRAY, natural_image(37, 53, color=False)], ids=["rgb", "gray", "37x53"])
def test_png_is_lossless(image: np.ndarray) -> None:
    codec = PngCodec()
    data = codec.encode(image, None)
    np.testing.assert_array_equal(codec.decode(data), image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0 < codec.payload_bytes(data) < len(data)


def test_size_limits_are_checked_before_the_library_and_not_tighter_than_it():
    from taskcodec_plugins.codecs.classical.codecs import CODECS, WebpCodec

    assert all(c.max_side >= 16382 and c.limit_source for c in CODECS)
    at_limit = np.full((2, WebpCodec.max_side, 3), 90, np.uint8)  # the largest side WebP takes still codes
    assert WebpCodec().decode(WebpCodec().encode(at_limit, 50)).shape == at_limit.shape
    with pytest.raises(CodecError, match=r"16383x2 \(width x height\) exceeds its limit of 16382 pixels per side"):
        WebpCodec().encode(np.zeros((2, 16383, 3), np.uint8), 50)
