"""The job a codec worker process runs: encode, decode and measure one chunk of images with one
codec at one rate point.

This is the unit of work the runner hands to worker processes, so it imports little:
the codec and metric objects arrive pickled, and the chunk's bitstreams are written straight
into the store, as one pack file. Encoding goes through
:meth:`Codec.encode_batch_with_stats` (per image shape); each stat the codec reports is kept as
the image metric ``stat:<name>`` beside the real metrics (``encode_seconds`` includes computing
them).

Numbers from plugins are checked here, where the culprit is known: ``payload_bytes`` must be
None or an integer in 0..len(stream); an image metric must give a finite-or-infinite number
or None (undefined for that image, counted by the runner); NaN is an error.
With ``check_determinism`` each image is encoded and its stream decoded once more, alone: so a
codec whose batches differ from one-at-a-time coding is caught too.
"""
from __future__ import annotations

import functools
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .codec import Codec
from .errors import CodecError, PluginError
from .files import write_new
from .hashing import image_digest
from .image_transfer import ImageRef, release_mapping
from .images import check_image
from .metric import ImageMetric
from .store import PACKS, STAT_PREFIX, EncodingRecord, stream_sha256


Item = tuple[str, str, str, np.ndarray]  # (sample id, image digest, encoding key, image)
# as sent: the image may be an ImageRef into the run's image file (local workers)
SentItem = tuple[str, str, str, "np.ndarray | ImageRef"]


@dataclass
class ChunkResult:
    records: list[EncodingRecord] = field(default_factory=list)
    metrics: list[tuple[str, str, float | None]] = field(default_factory=list)  # (key, metric, value)
    decoded: dict[str, np.ndarray] = field(default_factory=dict)  # key -> decoded image, when asked


def encode_chunk(
    codec: Codec,
    row: str,
    rate_point: Any,
    items: Sequence[SentItem],
    streams_dir: str,
    metrics: Sequence[ImageMetric],
    keep_decoded: bool,
    check_determinism: bool = False,
) -> ChunkResult:
    """Encode each image, store its bitstream, decode it, and measure it.

    The images of one shape go to the codec together (:meth:`Codec.encode_batch_with_stats` and
    :meth:`Codec.decode_batch`, one image at a time unless the codec batches); a batch's seconds are
    shared out evenly over its images.
    """
    mapped = any(isinstance(image, ImageRef) for _, _, _, image in items)
    loaded = [(sid, digest, key, image.load() if isinstance(image, ImageRef) else image)
              for sid, digest, key, image in items]
    try:
        return _encode_chunk(loaded, codec, row, rate_point, streams_dir, metrics, keep_decoded, check_determinism)
    finally:
        if mapped:
            release_mapping()


def _encode_chunk(items: list[Item], codec: Codec, row: str, rate_point: Any, streams_dir: str,
                  metrics: Sequence[ImageMetric], keep_decoded: bool, check_determinism: bool) -> ChunkResult:
    out = ChunkResult()
    pack = f"{secrets.token_hex(16)}.pack"  # a new name: a pack is never rewritten (see taskcodec.store)
    streams: list[bytes] = []
    offset = 0
    for group in _by_shape(items):
        coded = _encode_group(codec, row, rate_point, group)
        decoded_images = _decode_group(codec, row, rate_point, group, [data for data, _ in coded[0]])
        encode_share, decode_share = coded[1] / len(group), decoded_images[1] / len(group)
        for (sample_id, digest, key, image), (data, stats), decoded in zip(group, coded[0], decoded_images[0]):
            where = functools.partial(describe_coding, codec, row, rate_point, sample_id)  # built if needed
            checked_decoded(decoded, image, where)
            if check_determinism:
                _check_determinism(codec, where(), image, rate_point, data, decoded)
            payload = checked_payload_bytes(codec.payload_bytes(data), len(data), where)
            out.records.append(
                EncodingRecord(
                    key=key, codec=codec.name, rate_point=rate_point, image_digest=digest,
                    height=image.shape[0], width=image.shape[1], n_bytes=len(data),
                    payload_bytes=payload, decoded_digest=image_digest(decoded),
                    encode_seconds=encode_share, decode_seconds=decode_share, stream_sha256=stream_sha256(data),
                    pack=pack, pack_offset=offset,
                )
            )
            streams.append(data)
            offset += len(data)
            for metric in metrics:
                out.metrics.append((key, metric.name, checked_metric_value(metric.compute(image, decoded), metric.name,
                                                                           where)))
            out.metrics.extend((key, STAT_PREFIX + name, float(value)) for name, value in stats.items())
            if keep_decoded:
                out.decoded[key] = decoded
    if streams:  # before the records go back: they are committed only once the pack is whole
        write_new(Path(streams_dir) / PACKS / pack, b"".join(streams))
    return out


def _by_shape(items: Sequence[Item]) -> list[list[Item]]:
    """The items grouped by image shape, groups in order of first appearance, items in order."""
    groups: dict[tuple[int, ...], list[Item]] = {}
    for item in items:
        groups.setdefault(item[3].shape, []).append(item)
    return list(groups.values())


def describe_coding(codec: Codec, row: str, rate_point: Any, sample_id: str) -> str:
    """The codec, row, rate point and image an error is about."""
    return f"codec {codec.name!r} (row {row!r}) at {codec.rate_parameter or 'rate_point'}={rate_point!r} on image {sample_id!r}"


def _encode_group(codec: Codec, row: str, rate_point: Any,
                  group: list[Item]) -> tuple[list[tuple[bytes, dict[str, float]]], float]:
    """The streams and stats of a group's images and the seconds it took; errors name the image."""
    t0 = time.perf_counter()
    try:
        coded = codec.encode_batch_with_stats([image for _, _, _, image in group], rate_point)
    except CodecError as exc:
        for sample_id, _, _, image in group:  # one at a time, to name the image that fails
            try:
                codec.encode_with_stats(image, rate_point)
            except CodecError as single:
                raise CodecError(f"{describe_coding(codec, row, rate_point, sample_id)}: encode failed: {single}") from None
        raise CodecError(f"{describe_coding(codec, row, rate_point, group[0][0])} and the next {len(group) - 1} images: "
                         f"encoding them as a batch failed (one at a time works): {exc}") from None
    seconds = time.perf_counter() - t0
    for (sample_id, _, _, _), (data, _) in zip(group, coded):
        if not isinstance(data, (bytes, bytearray)):
            raise CodecError(f"{describe_coding(codec, row, rate_point, sample_id)}: encode returned {type(data).__name__}, "
                             f"expected bytes")
    return [(bytes(data), stats) for data, stats in coded], seconds


def _decode_group(codec: Codec, row: str, rate_point: Any, group: list[Item],
                  streams: list[bytes]) -> tuple[list[np.ndarray], float]:
    t0 = time.perf_counter()
    try:
        images = codec.decode_batch(streams)
    except CodecError as exc:
        for (sample_id, _, _, _), data in zip(group, streams):
            try:
                codec.decode(data)
            except CodecError as single:
                raise CodecError(f"{describe_coding(codec, row, rate_point, sample_id)}: decoding its own bitstream failed: "
                                 f"{single}") from None
        raise CodecError(f"{describe_coding(codec, row, rate_point, group[0][0])} and the next {len(group) - 1} images: "
                         f"decoding their streams as a batch failed (one at a time works): {exc}") from None
    return images, time.perf_counter() - t0


# The checks below run on every image: ``where`` (the codec, row, rate point and image, for the message)
# is a callable, built only for a value that fails, and the usual value takes the first test.
def checked_decoded(decoded: Any, image: np.ndarray, where: Callable[[], str]) -> None:
    """CodecError unless ``decoded`` is an image of the original's shape."""
    if isinstance(decoded, np.ndarray) and decoded.dtype == np.uint8 and decoded.shape == image.shape:
        return
    check_image(decoded, f"{where()}: decode output")
    raise CodecError(f"{where()}: decoded shape {decoded.shape} differs from the original {image.shape}")


def checked_payload_bytes(value: Any, n_bytes: int, where: Callable[[], str]) -> int | None:
    """``Codec.payload_bytes`` as a Python int in 0..n_bytes, or None; else CodecError."""
    if value is None or (type(value) is int and 0 <= value <= n_bytes):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value <= n_bytes:
        raise CodecError(
            f"{where()}: payload_bytes returned {value!r} ({type(value).__name__}); expected None or an integer "
            f"in 0..{n_bytes} (the stream's length)"
        )
    return int(value)


def checked_metric_value(value: Any, metric: str, where: Callable[[], str]) -> float | None:
    """An image metric's value as a Python float, or None (undefined for this image).

    NaN is refused: it would be dropped from the row's mean like None but says nothing of why;
    a metric that cannot be computed for an image returns None, which the runner counts.
    """
    if value is None:
        return None
    if isinstance(value, float) and not math.isnan(value):
        return float(value)  # numpy's float64 as Python's float
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or math.isnan(float(value)):
        raise PluginError(
            f"metric {metric!r} on {where()} returned {value!r} ({type(value).__name__}); expected a number "
            f"(inf allowed) or None where the metric is undefined for the image"
        )
    return float(value)


def _check_determinism(codec: Codec, where: str, image: np.ndarray, rate_point: Any, data: bytes,
                       decoded: np.ndarray) -> None:
    """Encode ``image`` and decode ``data`` once more; CodecError if either result differs."""
    again, _ = codec.encode_with_stats(image.copy(), rate_point)
    if bytes(again) != data:
        raise CodecError(
            f"{where}: the encoder is not deterministic: encoding the same image twice (in its batch, then "
            f"alone) gave different bytes "
            f"({len(data)} and {len(again)} bytes, sha256 {stream_sha256(data)[:12]} and "
            f"{stream_sha256(bytes(again))[:12]}); its results would differ from one fresh store to another"
        )
    redecoded = codec.decode(data)
    if image_digest(redecoded) != image_digest(decoded):
        raise CodecError(
            f"{where}: the decoder is not deterministic: decoding the same {len(data)}-byte stream twice (in its "
            f"batch, then alone) gave "
            f"different pixels"
        )
