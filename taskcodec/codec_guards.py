"""The checks wrapped around every codec's ``encode``, ``encode_with_stats`` and ``decode``.

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
    """Wrap the ``encode``, ``encode_with_stats`` and ``decode`` that ``cls`` itself defines (once each)."""
    wrappers = {"encode": _guard_encode, "encode_with_stats": _guard_encode_with_stats, "decode": _guard_decode}
    for name, wrap in wrappers.items():
        method = cls.__dict__.get(name)
        if method is not None and not getattr(method, "_guarded", False):
            setattr(cls, name, wrap(method))


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
