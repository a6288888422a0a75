"""The codec contract: what every codec plugin must keep, checked on an instance.

``taskcodec check codec NAME [--option K=V ...]`` runs it on an installed codec (no clone of this
repository needed); the test suite runs the same checks over every registered codec
(``tests/contract/test_codec_contract.py``). A codec passes when:

  * metadata: ``version`` is a non-empty str, ``description`` too, ``rate_parameter`` a str or None,
    ``default_rate_points`` non-empty and valid (``(None,)`` for a codec without a rate parameter),
    ``options()`` JSON and accepted by the constructor, ``identity()`` JSON;
  * round-trip: ``encode`` returns ``bytes``; ``decode`` a uint8 image of the original shape (exact
    for a lossless codec) for gray (H x W) and RGB (H x W x 3) images of odd sizes, at every default
    rate point; ``payload_bytes`` is None or an int in 0..len(stream);
  * determinism: the same bytes and pixels twice, from a fresh instance and from a pickled copy (as
    the runner's workers get it);
  * another-process: a fresh Python process decodes the streams to the same pixels and encodes the
    images to the same bytes;
  * batches: ``encode_batch_with_stats`` / ``decode_batch`` give exactly one-at-a-time coding's bytes,
    stats and pixels; a batch of two shapes and an empty stream are refused with CodecError;
  * rate-order: more bytes at a higher rate point on a natural-looking image;
  * bad-rate-points and bad-images: CodecError naming the codec;
  * damaged-streams: an empty stream raises CodecError; truncated, corrupted and random streams raise
    CodecError or decode to a well-formed image, never another exception.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..codec import Codec
from ..errors import CodecError
from .common import ContractFailure, natural_image, require

INCREASING = {"quality", "psnr", "bpp", "bitrate", "rate", "lambda", "lmbda"}  # larger rate point -> more bytes
DECREASING = {"distance", "qp", "crf", "quantizer", "q-index"}  # larger rate point -> fewer bytes
SHAPES = ((37, 53), (37, 53, 3), (53, 37, 3), (48, 48), (64, 64, 3))


def _raises_codec_error(codec: Codec, call: Callable[[], Any], what: str) -> None:
    try:
        call()
    except CodecError as exc:
        require(codec.name in str(exc), f"{what}: the CodecError does not name the codec: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - the contract is that nothing else escapes
        raise ContractFailure(f"{what}: raised {type(exc).__name__} ({exc}), expected CodecError") from exc
    raise ContractFailure(f"{what}: no CodecError raised")


# ---------------------------------------------------------------------------------------------- the checks
def check_metadata(codec: Codec) -> None:
    require(isinstance(codec.version, str) and bool(codec.version), f"version {codec.version!r}: expected a non-empty str")
    require(isinstance(codec.description, str) and bool(codec.description), "description: expected a non-empty str")
    require(codec.rate_parameter is None or isinstance(codec.rate_parameter, str),
             f"rate_parameter {codec.rate_parameter!r}: expected a str or None")
    points = tuple(codec.default_rate_points)
    require(bool(points), "default_rate_points is empty")
    if codec.rate_parameter is None:
        require(points == (None,), f"default_rate_points {points}: a codec without a rate parameter has (None,)")
    else:
        require(None not in points, f"default_rate_points {points} holds None but rate_parameter is set")
        for point in points:
            try:
                codec.validate_rate_point(point)
            except CodecError as exc:
                raise ContractFailure(f"default rate point {point!r} is refused by validate_rate_point: {exc}") from None
    options = codec.options()
    try:
        json.dumps(options)
        json.dumps(codec.identity(), default=str)
    except (TypeError, ValueError) as exc:
        raise ContractFailure(f"options() or identity() is not JSON: {exc}") from None
    again = type(codec)(**options).options()
    require(again == options, f"options() does not round-trip through the constructor: {options} -> {again}")


def check_round_trip(codec: Codec) -> None:
    for shape in SHAPES:
        image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=len(shape))
        for point in codec.default_rate_points:
            where = f"{'x'.join(map(str, shape))} image at {codec.rate_parameter}={point!r}"
            data = codec.encode(image, point)
            require(type(data) is bytes and len(data) > 0, f"{where}: encode returned {type(data).__name__} "
                     f"of length {len(data) if hasattr(data, '__len__') else '?'}, expected non-empty bytes")
            decoded = codec.decode(data)
            require(isinstance(decoded, np.ndarray) and decoded.dtype == np.uint8 and decoded.shape == image.shape,
                     f"{where}: decode returned {type(decoded).__name__} {getattr(decoded, 'dtype', '')} "
                     f"{getattr(decoded, 'shape', '')}, expected uint8 {image.shape}")
            if codec.rate_parameter is None:
                require(np.array_equal(decoded, image), f"{where}: a lossless codec changed pixels")
            payload = codec.payload_bytes(data)
            require(payload is None or (isinstance(payload, int) and not isinstance(payload, bool)
                                         and 0 <= payload <= len(data)),
                     f"{where}: payload_bytes {payload!r}: expected None or an int in 0..{len(data)}")


def check_determinism(codec: Codec) -> None:
    fresh = type(codec)(**codec.options())
    copied = pickle.loads(pickle.dumps(codec))
    for color in (False, True):
        image = natural_image(40, 56, color=color, seed=7)
        for point in codec.default_rate_points:
            where = f"{'RGB' if color else 'gray'} image at {codec.rate_parameter}={point!r}"
            first = codec.encode(image, point)
            for name, encoder in (("the same instance", codec), ("a fresh instance", fresh), ("a pickled copy", copied)):
                require(encoder.encode(image.copy(), point) == first, f"{where}: {name} encodes other bytes")
            decoded = codec.decode(first)
            for name, decoder in (("the same instance", codec), ("a fresh instance", fresh), ("a pickled copy", copied)):
                require(np.array_equal(decoder.decode(first), decoded), f"{where}: {name} decodes other pixels")


_OTHER_PROCESS = """
import pickle, sys
with open(sys.argv[1], "rb") as f:
    codec, images, points, streams = pickle.load(f)
result = {"decoded": [codec.decode(s) for s in streams],
          "encoded": [codec.encode(image, point) for image, point in zip(images, points)]}
with open(sys.argv[2], "wb") as f:
    pickle.dump(result, f)
"""


def check_another_process(codec: Codec) -> None:
    jobs = [(natural_image(40, 56, color=color, seed=9), point) for color in (False, True)
            for point in codec.default_rate_points]
    streams = [codec.encode(image, point) for image, point in jobs]
    with tempfile.TemporaryDirectory(prefix="taskcodec-check-") as folder:
        job, out = Path(folder) / "job.pkl", Path(folder) / "out.pkl"
        job.write_bytes(pickle.dumps((codec, [i for i, _ in jobs], [p for _, p in jobs], streams)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(job), str(out)], env=env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise ContractFailure(f"another process could not decode and encode with a pickled copy of the codec: "
                                  f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        result = pickle.loads(out.read_bytes())
    for (image, point), data, decoded, encoded in zip(jobs, streams, result["decoded"], result["encoded"]):
        where = f"{'RGB' if image.ndim == 3 else 'gray'} image at {codec.rate_parameter}={point!r}"
        require(np.array_equal(decoded, codec.decode(data)), f"{where}: another process decodes other pixels")
        require(encoded == data, f"{where}: another process encodes other bytes")


def check_batches(codec: Codec) -> None:
    for color in (False, True):
        images = [natural_image(40, 56, color=color, seed=s) for s in (11, 12, 13)]
        for point in codec.default_rate_points:
            where = f"{'RGB' if color else 'gray'} images at {codec.rate_parameter}={point!r}"
            alone = [codec.encode_with_stats(image, point) for image in images]
            batch = codec.encode_batch_with_stats(images, point)
            require([d for d, _ in batch] == [d for d, _ in alone], f"{where}: encode_batch_with_stats gives other bytes")
            require([s for _, s in batch] == [s for _, s in alone], f"{where}: encode_batch_with_stats gives other stats")
            streams = [d for d, _ in batch]
            for decoded, data in zip(codec.decode_batch(streams[::-1])[::-1], streams):
                require(np.array_equal(decoded, codec.decode(data)), f"{where}: decode_batch gives other pixels")
    point = codec.default_rate_points[0]
    mixed = [natural_image(16, 16, color=False), natural_image(16, 24, color=False)]
    _raises_codec_error(codec, lambda: codec.encode_batch_with_stats(mixed, point), "a batch of two shapes")
    good = codec.encode(mixed[0], point)
    _raises_codec_error(codec, lambda: codec.decode_batch([good, b""]), "decode_batch with an empty stream")


def check_rate_order(codec: Codec) -> None:
    if codec.rate_parameter is None or len(codec.default_rate_points) < 2:
        return
    image = natural_image(96, 112, color=True, seed=3)
    points = sorted(codec.default_rate_points)
    sizes = [len(codec.encode(image, p)) for p in points]
    name = codec.rate_parameter.lower()
    direction = 1 if name in INCREASING else -1 if name in DECREASING else (1 if sizes[-1] >= sizes[0] else -1)
    ordered = sizes if direction == 1 else sizes[::-1]
    trend = f"{codec.rate_parameter} {points} -> bytes {sizes}"
    require(ordered[-1] > ordered[0], f"no more bytes at the higher rate: {trend}")
    for smaller, larger in zip(ordered, ordered[1:]):
        require(larger >= smaller - (0.02 * smaller + 4), f"bytes fall as the rate rises: {trend}")


def check_bad_rate_points(codec: Codec) -> None:
    image = natural_image(16, 16, color=True)
    bad: list[Any] = ["not-a-number", float("nan"), float("inf"), -1e9]
    if codec.rate_parameter is not None:
        bad.append(None)
    for point in bad:
        _raises_codec_error(codec, lambda: codec.validate_rate_point(point), f"validate_rate_point({point!r})")
        _raises_codec_error(codec, lambda: codec.encode(image, point), f"encode at rate point {point!r}")


def check_bad_images(codec: Codec) -> None:
    bad = {"a float32 image": np.zeros((8, 8), dtype=np.float32), "an RGBA image": np.zeros((8, 8, 4), dtype=np.uint8),
           "an empty image": np.zeros((0, 8), dtype=np.uint8), "a list": [[0, 1], [2, 3]]}
    for what, image in bad.items():
        _raises_codec_error(codec, lambda: codec.encode(image, codec.default_rate_points[0]), f"encoding {what}")


def _decodes_or_refuses(codec: Codec, data: bytes, what: str) -> None:
    try:
        decoded = codec.decode(data)
    except CodecError:
        return
    except Exception as exc:  # noqa: BLE001
        raise ContractFailure(f"{what}: decode raised {type(exc).__name__} ({exc}), expected CodecError or an image") from exc
    require(isinstance(decoded, np.ndarray) and decoded.dtype == np.uint8
             and (decoded.ndim == 2 or (decoded.ndim == 3 and decoded.shape[2] == 3)),
             f"{what}: decode returned neither CodecError nor a uint8 gray or RGB image")


def check_damaged_streams(codec: Codec) -> None:
    data = codec.encode(natural_image(37, 53, color=True, seed=5), codec.default_rate_points[0])
    _raises_codec_error(codec, lambda: codec.decode(b""), "decoding an empty stream")
    for cut in (1, 2, len(data) // 2, len(data) - 1):
        _decodes_or_refuses(codec, data[:cut], f"a stream cut to {cut} of {len(data)} bytes")
    rng = np.random.default_rng(11)
    for _ in range(8):
        corrupt = bytearray(data)
        positions = rng.integers(0, len(data), 3)
        for position in positions:
            corrupt[position] ^= 0xFF
        _decodes_or_refuses(codec, bytes(corrupt), f"a stream with bytes {sorted(positions.tolist())} flipped")
    _decodes_or_refuses(codec, bytes(rng.integers(0, 256, 300, dtype=np.uint8)), "300 random bytes")


CODEC_CHECKS: dict[str, Callable[[Codec], None]] = {
    "metadata": check_metadata, "round-trip": check_round_trip, "determinism": check_determinism,
    "another-process": check_another_process, "batches": check_batches, "rate-order": check_rate_order,
    "bad-rate-points": check_bad_rate_points, "bad-images": check_bad_images, "damaged-streams": check_damaged_streams,
}
