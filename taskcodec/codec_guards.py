"""The checks wrapped around every codec's ``encode``, ``encode_with_stats``, ``decode`` and their batch forms.

The image is checked, the rate point validated, the stats checked, and any exception other than
CodecError from the underlying library is re-raised as a CodecError naming the codec, so that a
codec plugin needs no error handling of its own.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CodecError
from .images import check_image

if TYPE_CHECKING:
    from .codec import Codec, RatePoint


def guard_methods(cls: type) -> None:
    """Wrap the coding methods that ``cls`` itself defines (once each)."""
    wrappers = {"encode": _guard_encode, "encode_with_stats": _guard_encode_with_stats, "decode": _guard_decode,
                "encode_batch_with_stats": _guard_encode_batch, "decode_batch": _guard_decode_batch}
    for name, wrap in wrappers.items():
        method = cls.__dict__.get(name)
        abstract = getattr(method, "__isabstractmethod__", False)
        if method is not None and not abstract and not getattr(method, "_guarded", False):
            setattr(cls, name, wrap(method))


def unguarded(codec: Codec, name: str):
    """``codec``'s own implementation of the coding method ``name``, without its guard (bound).

    For the default methods that call another coding method on input their own guard has already
    checked (a batch's images, a validated rate point): checking each again cost a quarter of a cheap
    codec's coding time. Errors still become CodecError in the outer guard.
    """
    method = getattr(type(codec), name)
    return getattr(method, "__wrapped__", method).__get__(codec)


def _call_encoder(codec: Codec, fn, image: np.ndarray, rate_point: RatePoint):
    """Check the image, validate the rate point, run ``fn``; library errors become CodecError."""
    check_image(image, f"codec {codec.name!r}")
    rate_point = codec.validate_rate_point(rate_point)
    try:
        return fn(codec, image, rate_point)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(
            f"codec {codec.name!r}: encoding a {image.shape} image at {codec.rate_parameter}={rate_point!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _guard_encode(encode):
    @functools.wraps(encode)
    def guarded(self: Codec, image: np.ndarray, rate_point: RatePoint) -> bytes:
        return _call_encoder(self, encode, image, rate_point)

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _guard_encode_with_stats(encode_with_stats):
    @functools.wraps(encode_with_stats)
    def guarded(self: Codec, image: np.ndarray, rate_point: RatePoint) -> tuple[bytes, dict[str, float]]:
        return _check_stats_result(self, _call_encoder(self, encode_with_stats, image, rate_point))

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _check_stats_result(codec: Codec, result: Any) -> tuple[bytes, dict[str, float]]:
    where = f"codec {codec.name!r}: encode_with_stats"
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise CodecError(f"{where} must return (bytes, dict of stats), got {type(result).__name__}")
    data, stats = result
    checked: dict[str, float] = {}
    for name, value in stats.items():
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not isinstance(name, str) or not name or not number or not np.isfinite(value):
            raise CodecError(f"{where}: stat {name!r} = {value!r}; expected a non-empty name and a finite number")
        checked[name] = float(value)
    return data, checked


def _guard_decode(decode):
    @functools.wraps(decode)
    def guarded(self: Codec, data: bytes) -> np.ndarray:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"codec {self.name!r}: decode expects bytes, got {type(data).__name__}")
        if len(data) == 0:
            raise CodecError(f"codec {self.name!r}: cannot decode an empty bitstream")
        try:
            return decode(self, data)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(
                f"codec {self.name!r}: cannot decode a {len(data)}-byte stream (corrupt or not this codec's?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _guard_encode_batch(encode_batch):
    @functools.wraps(encode_batch)
    def guarded(self: Codec, images: Any, rate_point: RatePoint) -> list[tuple[bytes, dict[str, float]]]:
        images = list(images)
        for i, image in enumerate(images):
            check_image(image, f"codec {self.name!r}: batch image {i}")
        if len({image.shape for image in images}) > 1:
            raise CodecError(f"codec {self.name!r}: a batch holds images of one shape, got "
                             f"{sorted({image.shape for image in images})}")
        rate_point = self.validate_rate_point(rate_point)
        try:
            results = encode_batch(self, images, rate_point)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(
                f"codec {self.name!r}: encoding a batch of {len(images)} images at {self.rate_parameter}="
                f"{rate_point!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        results = _checked_count(self, "encode_batch_with_stats", list(results), len(images))
        return [_check_stats_result(self, result) for result in results]

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _guard_decode_batch(decode_batch):
    @functools.wraps(decode_batch)
    def guarded(self: Codec, streams: Any) -> list[np.ndarray]:
        streams = list(streams)
        for i, data in enumerate(streams):
            if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
                raise CodecError(f"codec {self.name!r}: decode_batch: stream {i} is not a non-empty bytes object")
        try:
            images = decode_batch(self, streams)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(
                f"codec {self.name!r}: cannot decode a batch of {len(streams)} streams (corrupt or not this "
                f"codec's?): {type(exc).__name__}: {exc}"
            ) from exc
        return _checked_count(self, "decode_batch", list(images), len(streams))

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _checked_count(codec: Codec, method: str, results: list[Any], expected: int) -> list[Any]:
    if len(results) != expected:
        raise CodecError(f"codec {codec.name!r}: {method} returned {len(results)} results for {expected} inputs")
    return results
