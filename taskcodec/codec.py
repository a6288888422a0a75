"""The codec interface: ``encode(image, rate point) -> bytes`` and ``decode(bytes) -> image``.

Images are ``numpy.uint8`` arrays, ``H x W`` (grayscale) or ``H x W x 3`` (RGB). Keep module-level
imports light in a codec plugin: import torch or codec libraries inside methods so that
``taskcodec plugins`` stays fast.
"""
from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from .codec_guards import guard_methods, unguarded
from .errors import CodecError

if TYPE_CHECKING:
    from .codec_training import CodecTrainingRequest

RatePoint = Any  # a rate point: a number, or None for codecs without a rate parameter


class Codec(abc.ABC):
    """An image codec: ``encode(image, rate_point) -> bytes`` and ``decode(bytes) -> image``.

    The framework, never the codec, computes the rate from the returned bytes:
    ``8 * len(data) / (H * W)`` of the original image. Everything the decoder needs
    must be inside ``data``.

    Class attributes:
      name: registry key, lowercase-hyphen (``"jpeg"``).
      version: bump when the bytes the codec writes change; part of every cache key (a
        :class:`taskcodec.LazyVersion` computes one from library versions on first read).
      rate_parameter: what a rate point means (``"quality"``), or None for a lossless codec.
      default_rate_points: rate points used when a config gives none.
      rate_point_range: ``(low, high)`` accepted by the default :meth:`validate_rate_point`.
      integer_rate_points: whether the default :meth:`validate_rate_point` demands integers.
      description: one line for ``taskcodec list codecs``.
      needs_options: True when the codec cannot work with its default options (e.g. it
        needs a folder of trained models). ``tests/test_codec_contract.py`` then skips it,
        and the plugin runs the contract itself on an instance with working options
        (see ``tests/test_learned_codec.py``). A codec may set ``default_rate_points``
        per instance when its rate points depend on its options.
    Constructor keyword arguments are the codec's options (from the config's
    ``options:``); :meth:`options` must return them so that they enter cache keys.
    A config's option names are checked at load time against the keyword parameters of
    ``__init__``; a codec whose ``__init__`` takes ``**options`` lists its names in the class
    attribute ``accepted_options`` (see :func:`taskcodec.options.option_names`). Check the values
    with :func:`taskcodec.read_options`, so that a bad one is the same error as everywhere.

    Subclasses' ``encode``, ``encode_with_stats``, ``decode`` and the batch methods are wrapped (see
    ``__init_subclass__``): the image is checked, the rate_point validated, and any
    exception other than CodecError from the underlying library is re-raised as a
    CodecError naming the codec, so a plugin needs no error handling of its own.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    rate_parameter: ClassVar[str | None] = "quality"
    default_rate_points: ClassVar[tuple[RatePoint, ...]] = ()
    rate_point_range: ClassVar[tuple[float, float] | None] = None
    integer_rate_points: ClassVar[bool] = False
    description: ClassVar[str] = ""
    needs_options: ClassVar[bool] = False
    accepted_options: ClassVar[tuple[str, ...] | None] = None  # None: the keyword parameters of __init__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_methods(cls)

    def __init__(self, **options: Any) -> None:
        if options:
            raise CodecError(f"codec {self.name!r} takes no options, got {sorted(options)}")

    def options(self) -> dict[str, Any]:
        """The options this instance was built with (JSON-serialisable)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What makes this codec's output what it is: name, version, library versions, options."""
        return {"name": self.name, "version": self.version, "options": self.options()}

    def validate_rate_point(self, rate_point: RatePoint) -> RatePoint:
        """Return the (canonical) rate point if this codec accepts it, else raise CodecError naming it.

        The default accepts None when ``rate_parameter`` is None, else a finite number
        (an integer if ``integer_rate_points``) inside ``rate_point_range``.
        """
        if self.rate_parameter is None:
            if rate_point is not None:
                raise CodecError(f"codec {self.name!r} has no rate parameter; its only rate point is null, got {rate_point!r}")
            return None
        number = isinstance(rate_point, (int, float, np.integer, np.floating)) and not isinstance(rate_point, bool)
        if not number or not _finite(rate_point):
            raise self._rate_point_problem(rate_point)
        if self.integer_rate_points and float(rate_point) != int(rate_point):
            raise self._rate_point_problem(rate_point)
        canonical = int(rate_point) if float(rate_point) == int(rate_point) else float(rate_point)
        if self.rate_point_range is not None and not self.rate_point_range[0] <= canonical <= self.rate_point_range[1]:
            raise self._rate_point_problem(rate_point)
        return canonical

    def _rate_point_problem(self, rate_point: RatePoint) -> CodecError:
        # built only when raised: validate_rate_point runs on every encode and decode
        expected = "an integer" if self.integer_rate_points else "a finite number"
        if self.rate_point_range is not None:
            expected += f" in {self.rate_point_range[0]:g}..{self.rate_point_range[1]:g}"
        return CodecError(f"codec {self.name!r}: {self.rate_parameter} must be {expected}, got {rate_point!r}")

    @abc.abstractmethod
    def encode(self, image: np.ndarray, rate_point: RatePoint) -> bytes:
        """Compress one image at one rate point into a self-contained bitstream."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Reconstruct an image of the original shape and dtype uint8 from ``encode``'s bytes."""

    def encode_with_stats(self, image: np.ndarray, rate_point: RatePoint) -> tuple[bytes, dict[str, float]]:
        """``encode``, plus numbers the codec measured while encoding this image: ``(data, stats)``.

        The framework calls this (not ``encode``) when it runs a benchmark, stores each stat as
        the image metric ``stat:<name>`` (store table ``image_metrics``) and adds to each
        result row the mean over images of every stat that all of the row's images have
        (column ``stat_<name>``). A stat named ``estimated_bits`` (the rate a codec's own
        model predicts, e.g. a learned codec's ``-log2`` likelihoods) becomes the column
        ``estimated_bpp`` instead: bits / pixels of the original image, per image, then the
        mean. Stats never replace the rate: ``bpp`` always comes from the bytes written.
        Values must be finite numbers. Default: ``(self.encode(image, rate point), {})``.
        """
        return unguarded(self, "encode")(image, rate_point), {}  # checked by this method's guard

    def encode_batch_with_stats(self, images: Sequence[np.ndarray],
                                rate_point: RatePoint) -> list[tuple[bytes, dict[str, float]]]:
        """:meth:`encode_with_stats` of each of ``images`` (all of one shape), in order.

        The runner encodes a chunk's images of one shape with one call. The default encodes them one at
        a time; a codec that is faster on a batch (a network) overrides it, and must give exactly the
        bytes and stats of one-at-a-time coding (the codec contract checks it).
        """
        encode_with_stats = unguarded(self, "encode_with_stats")  # the batch guard checks inputs and outputs
        return [encode_with_stats(image, rate_point) for image in images]

    def decode_batch(self, streams: Sequence[bytes]) -> list[np.ndarray]:
        """:meth:`decode` of each of ``streams``, in order; overridden like :meth:`encode_batch_with_stats`,
        with exactly the pixels of one-at-a-time decoding."""
        decode = unguarded(self, "decode")  # the batch guard checks the streams and wraps errors
        return [decode(data) for data in streams]

    def payload_bytes(self, data: bytes) -> int | None:
        """Bytes of ``data`` that are not fixed headers/tables, where separable; else None."""
        return None

    @classmethod
    def train(cls, request: "CodecTrainingRequest") -> dict[str, Any]:
        """Optional: train this codec's models (``taskcodec train-codec CONFIG``).

        ``request`` carries the training data, the task model (for task-aware losses), the
        mode, the rate points and the codec's training options; write one model per rate point
        into ``request.out``, resumably (state under ``request.state_dir``). Returns facts to
        report (JSON types). Codecs that cannot be trained keep this default, which raises.
        """
        raise CodecError(f"codec {cls.name!r} has no training command (it does not implement Codec.train)")


def _finite(number: Any) -> bool:
    """Whether a number is finite and representable as a float (math: 10x numpy's speed on a scalar, and it
    runs on every encode; an int beyond the float range is refused rather than raising OverflowError)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


guard_methods(Codec)  # the defaults too (the batch methods), so that every codec's are checked
