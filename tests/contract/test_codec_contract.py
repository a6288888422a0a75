"""The contract every registered codec must keep, whoever wrote it.

Parametrised over every codec in the plugin manager's registry (built-in and third-party),
constructed with its default options. A codec that declares ``needs_options = True`` (it cannot
work without configuration, e.g. a folder of trained models) is skipped here; its plugin's tests
run these same functions on a configured instance by providing their own ``codec`` fixture
(see ``tests/plugins/codecs/test_learned_codec.py``). A codec passes when:
  * its metadata is usable (name = registry key, version, rate parameter, rate points, options);
  * ``encode`` returns ``bytes``, deterministically (also from a fresh instance and a pickled
    copy, at every default rate point; ``decode`` likewise), for gray (HxW) and RGB (HxWx3) uint8 images of
    any size (37x53 included), at every default rate point;
  * ``decode`` returns a uint8 image of the original shape (exact for lossless codecs);
  * ``encode_batch_with_stats`` and ``decode_batch`` (what the runner calls) give exactly the bytes,
    stats and pixels of one-at-a-time coding;
  * more bytes for a higher rate point on a natural-looking image (direction from the rate
    parameter's name where known, else from the end points);
  * bad rate points and bad images raise CodecError naming the codec;
  * empty/truncated/corrupt streams raise CodecError or decode to a valid image, never another error;
  * ``payload_bytes`` is None or between 0 and ``len(data)``.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from taskcodec import Codec, CodecError
from taskcodec.pluginmanager import get_plugin_manager
from tests.helpers import natural_image

PM = get_plugin_manager()
CODEC_NAMES = PM.registry.names("codec")
INCREASING = {"quality", "psnr", "bpp", "bitrate", "rate", "lambda", "lmbda"}  # larger rate point -> more bytes
DECREASING = {"distance", "qp", "crf", "quantizer", "q-index"}  # larger rate point -> fewer bytes


@pytest.fixture(scope="module", params=CODEC_NAMES)
def codec(request: pytest.FixtureRequest) -> Codec:
    cls = PM.get("codec", request.param).target
    if cls.needs_options:
        pytest.skip(f"codec {cls.name!r} needs options (needs_options = True): its own tests run this contract")
    return cls()


SHAPES = [(37, 53), (37, 53, 3), (53, 37, 3), (48, 48), (64, 64, 3)]


@pytest.fixture(scope="module")
def images() -> dict[tuple[int, ...], np.ndarray]:
    return {shape: natural_image(shape[0], shape[1], color=len(shape) == 3, seed=len(shape)) for shape in SHAPES}


def test_some_codecs_are_registered() -> None:
    assert CODEC_NAMES, f"no codec registered; plugin failures: {[(p.name, p.error) for p in PM.failures]}"


def test_metadata(codec: Codec) -> None:
    entry = PM.get("codec", codec.name)
    assert entry.target is type(codec)
    assert isinstance(codec.version, str) and codec.version
    assert isinstance(codec.description, str) and codec.description
    assert codec.rate_parameter is None or isinstance(codec.rate_parameter, str)
    points = tuple(codec.default_rate_points)
    assert points, "default_rate_points is empty"
    if codec.rate_parameter is None:
        assert points == (None,)
    else:
        assert None not in points
        for point in points:
            codec.validate_rate_point(point)
    options = codec.options()
    json.dumps(options)
    json.dumps(codec.identity(), default=str)
    assert type(codec)(**options).options() == options  # options() round-trips through the constructor


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_round_trip_every_rate_point(codec: Codec, images: dict, shape: tuple[int, ...]) -> None:
    image = images[shape]
    for rate_point in codec.default_rate_points:
        data = codec.encode(image, rate_point)
        assert type(data) is bytes and len(data) > 0
        decoded = codec.decode(data)
        assert isinstance(decoded, np.ndarray)
        assert decoded.dtype == np.uint8 and decoded.shape == image.shape, (rate_point, decoded.dtype, decoded.shape)
        if codec.rate_parameter is None:
            np.testing.assert_array_equal(decoded, image)
        payload = codec.payload_bytes(data)
        assert payload is None or (isinstance(payload, int) and 0 <= payload <= len(data)), payload


@pytest.mark.parametrize("color", [False, True], ids=["gray", "rgb"])
def test_deterministic(codec: Codec, color: bool) -> None:
    """Encode determinism (same bytes twice, from a fresh instance and from a pickled copy, as the
    runner's workers get it) and decode determinism (same pixels twice, from a fresh instance and a
    pickled copy), at every default rate point: the store caches bytes and decoded digests, and
    ``taskcodec run --check-determinism`` refuses a codec that breaks this."""
    image = natural_image(40, 56, color=color, seed=7)
    fresh = type(codec)(**codec.options())
    copied = pickle.loads(pickle.dumps(codec))
    for rate_point in codec.default_rate_points:
        first = codec.encode(image, rate_point)
        assert codec.encode(image.copy(), rate_point) == first, f"encode at {rate_point!r} gave other bytes"
        assert fresh.encode(image, rate_point) == first, f"a fresh instance encodes other bytes at {rate_point!r}"
        assert copied.encode(image, rate_point) == first, f"a pickled copy encodes other bytes at {rate_point!r}"
        decoded = codec.decode(first)
        for decoder in (codec, fresh, copied):
            np.testing.assert_array_equal(decoder.decode(first), decoded, err_msg=f"decode at {rate_point!r}")


@pytest.mark.parametrize("color", [False, True], ids=["gray", "rgb"])
def test_batches_equal_one_at_a_time(codec: Codec, color: bool) -> None:
    images = [natural_image(40, 56, color=color, seed=s) for s in (11, 12, 13)]
    for rate_point in codec.default_rate_points:
        alone = [codec.encode_with_stats(image, rate_point) for image in images]
        batch = codec.encode_batch_with_stats(images, rate_point)
        assert [data for data, _ in batch] == [data for data, _ in alone], f"batch bytes differ at {rate_point!r}"
        assert [stats for _, stats in batch] == [stats for _, stats in alone], f"batch stats differ at {rate_point!r}"
        streams = [data for data, _ in batch]
        for decoded, data in zip(codec.decode_batch(streams[::-1])[::-1], streams):
            np.testing.assert_array_equal(decoded, codec.decode(data), err_msg=f"decode_batch at {rate_point!r}")


def test_a_batch_of_mixed_shapes_or_bad_streams_is_refused(codec: Codec) -> None:
    point = codec.default_rate_points[0]
    with pytest.raises(CodecError, match=f"codec '{codec.name}'.*one shape"):
        codec.encode_batch_with_stats([natural_image(16, 16, color=False), natural_image(16, 24, color=False)], point)
    with pytest.raises(CodecError, match=f"codec '{codec.name}'.*stream 1"):
        codec.decode_batch([codec.encode(natural_image(16, 16, color=False), point), b""])


def test_more_bytes_at_higher_rate(codec: Codec) -> None:
    if codec.rate_parameter is None or len(codec.default_rate_points) < 2:
        pytest.skip("no rate parameter")
    image = natural_image(96, 112, color=True, seed=3)
    points = sorted(codec.default_rate_points)
    sizes = [len(codec.encode(image, p)) for p in points]
    name = codec.rate_parameter.lower()
    direction = 1 if name in INCREASING else -1 if name in DECREASING else (1 if sizes[-1] >= sizes[0] else -1)
    ordered = sizes if direction == 1 else sizes[::-1]
    assert ordered[-1] > ordered[0], f"{codec.rate_parameter} {points} -> bytes {sizes}"
    for smaller, larger in zip(ordered, ordered[1:]):
        assert larger >= smaller - (0.02 * smaller + 4), f"{codec.rate_parameter} {points} -> bytes {sizes}"


def test_bad_rate_points_raise(codec: Codec) -> None:
    image = natural_image(16, 16, color=True)
    bad = ["not-a-number", float("nan"), float("inf"), -1e9]
    if codec.rate_parameter is not None:
        bad.append(None)
    for rate_point in bad:
        with pytest.raises(CodecError) as info:
            codec.validate_rate_point(rate_point)
        assert codec.name in str(info.value)
        with pytest.raises(CodecError):
            codec.encode(image, rate_point)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8), dtype=np.float32),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((0, 8), dtype=np.uint8),
        [[0, 1], [2, 3]],
    ],
    ids=["float32", "rgba", "empty", "list"],
)
def test_bad_images_raise(codec: Codec, image: object) -> None:
    with pytest.raises(CodecError) as info:
        codec.encode(image, codec.default_rate_points[0])
    assert codec.name in str(info.value)


def _valid_or_codec_error(codec: Codec, data: bytes) -> bool:
    """True if ``decode`` raised CodecError; else the result must still be a well-formed image."""
    try:
        decoded = codec.decode(data)
    except CodecError:
        return True
    assert isinstance(decoded, np.ndarray) and decoded.dtype == np.uint8
    assert decoded.ndim == 2 or (decoded.ndim == 3 and decoded.shape[2] == 3)
    return False


def test_corrupt_streams(codec: Codec) -> None:
    image = natural_image(37, 53, color=True, seed=5)
    data = codec.encode(image, codec.default_rate_points[0])
    with pytest.raises(CodecError):
        codec.decode(b"")
    for cut in (1, 2, len(data) // 2, len(data) - 1):
        _valid_or_codec_error(codec, data[:cut])
    rng = np.random.default_rng(11)
    for _ in range(8):
        corrupt = bytearray(data)
        for position in rng.integers(0, len(data), 3):
            corrupt[position] ^= 0xFF
        _valid_or_codec_error(codec, bytes(corrupt))
    _valid_or_codec_error(codec, bytes(rng.integers(0, 256, 300, dtype=np.uint8)))


def contract_for_configured_codecs() -> dict[str, object]:
    """The contract's tests and image fixture, for a codec's own test module to run on its configured
    instances (a codec with ``needs_options`` is skipped above): ``globals().update(...)`` there,
    next to a ``codec`` fixture. Each test is named ``test_contract_<name>``."""
    tests = (test_metadata, test_round_trip_every_rate_point, test_deterministic, test_batches_equal_one_at_a_time,
             test_a_batch_of_mixed_shapes_or_bad_streams_is_refused, test_more_bytes_at_higher_rate,
             test_bad_rate_points_raise, test_bad_images_raise, test_corrupt_streams)
    return {"images": images, **{f"test_contract_{t.__name__[len('test_'):]}": t for t in tests}}
