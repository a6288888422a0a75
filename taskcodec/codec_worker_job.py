"""The job a codec worker process runs: encode, decode and measure one chunk of images with one
codec at one rate point.

This is the unit of work the runner hands to worker processes, so it imports little:
the codec and metric objects arrive pickled, and the bitstreams are written straight
into the store's content-addressed folder. Encoding goes through
:meth:`Codec.encode_with_stats`; each stat the codec reports is kept as the image metric
``stat:<name>`` beside the real metrics (``encode_seconds`` includes computing them).

Numbers from plugins are checked here, where the culprit is known: ``payload_bytes`` must be
None or an integer in 0..len(stream); an image metric must give a finite-or-infinite number
or None (undefined for that image, counted by the runner); NaN is an error.
With ``check_determinism`` each image is encoded twice and its stream decoded twice.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .codec import Codec
from .errors import CodecError, PluginError
from .files import write_atomic
from .hashing import image_digest
from .images import check_image
from .metric import ImageMetric
from .store import STAT_PREFIX, EncodingRecord, encoding_key, stream_sha256


@dataclass
class ChunkResult:
    records: list[EncodingRecord] = field(default_factory=list)
    metrics: list[tuple[str, str, float | None]] = field(default_factory=list)  # (key, metric, value)
    decoded: dict[str, np.ndarray] = field(default_factory=dict)  # key -> decoded image, when asked


def encode_chunk(
    codec: Codec,
    codec_identity: dict[str, Any],
    row: str,
    rate_point: Any,
    items: Sequence[tuple[str, str, np.ndarray]],  # (sample id, image digest, image)
    streams_dir: str,
    metrics: Sequence[ImageMetric],
    keep_decoded: bool,
    check_determinism: bool = False,
) -> ChunkResult:
    """Encode each image, store its bitstream, decode it, and measure it."""
    out = ChunkResult()
    for sample_id, digest, image in items:
        where = f"codec {codec.name!r} (row {row!r}) at {codec.rate_parameter or 'rate_point'}={rate_point!r} on image {sample_id!r}"
        key = encoding_key(codec_identity, rate_point, digest)
        t0 = time.perf_counter()
        try:
            data, stats = codec.encode_with_stats(image, rate_point)
        except CodecError as exc:
            raise CodecError(f"{where}: encode failed: {exc}") from None
        t1 = time.perf_counter()
        if not isinstance(data, (bytes, bytearray)):
            raise CodecError(f"{where}: encode returned {type(data).__name__}, expected bytes")
        data = bytes(data)
        try:
            decoded = codec.decode(data)
        except CodecError as exc:
            raise CodecError(f"{where}: decoding its own bitstream failed: {exc}") from None
        t2 = time.perf_counter()
        check_image(decoded, f"{where}: decode output")
        if decoded.shape != image.shape:
            raise CodecError(f"{where}: decoded shape {decoded.shape} differs from the original {image.shape}")
        if check_determinism:
            _check_determinism(codec, where, image, rate_point, data, decoded)
        payload = checked_payload_bytes(codec.payload_bytes(data), len(data), where)
        stream = Path(streams_dir) / key[:2] / key
        write_atomic(stream, data, durable=False)  # the runner re-encodes a stream found damaged
        out.records.append(
            EncodingRecord(
                key=key, codec=codec.name, rate_point=rate_point, image_digest=digest,
                height=image.shape[0], width=image.shape[1], n_bytes=len(data),
                payload_bytes=payload, decoded_digest=image_digest(decoded),
                encode_seconds=t1 - t0, decode_seconds=t2 - t1, stream_sha256=stream_sha256(data),
            )
        )
        for metric in metrics:
            value = checked_metric_value(metric.compute(image, decoded), metric.name, where)
            out.metrics.append((key, metric.name, value))
        out.metrics.extend((key, STAT_PREFIX + name, float(value)) for name, value in stats.items())
        if keep_decoded:
            out.decoded[key] = decoded
    return out


def checked_payload_bytes(value: Any, n_bytes: int, where: str) -> int | None:
    """``Codec.payload_bytes`` as a Python int in 0..n_bytes, or None; else CodecError."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value <= n_bytes:
        raise CodecError(
            f"{where}: payload_bytes returned {value!r} ({type(value).__name__}); expected None or an integer "
            f"in 0..{n_bytes} (the stream's length)"
        )
    return int(value)


def checked_metric_value(value: Any, metric: str, where: str) -> float | None:
    """An image metric's value as a Python float, or None (undefined for this image).

    NaN is refused: it would be dropped from the row's mean like None but says nothing of why;
    a metric that cannot be computed for an image returns None, which the runner counts.
    """
    if value is None:
        return None
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or math.isnan(float(value)):
        raise PluginError(
            f"metric {metric!r} on {where} returned {value!r} ({type(value).__name__}); expected a number "
            f"(inf allowed) or None where the metric is undefined for the image"
        )
    return float(value)


def _check_determinism(codec: Codec, where: str, image: np.ndarray, rate_point: Any, data: bytes,
                       decoded: np.ndarray) -> None:
    """Encode ``image`` and decode ``data`` once more; CodecError if either result differs."""
    again, _ = codec.encode_with_stats(image.copy(), rate_point)
    if bytes(again) != data:
        raise CodecError(
            f"{where}: the encoder is not deterministic: encoding the same image twice gave different bytes "
            f"({len(data)} and {len(again)} bytes, sha256 {stream_sha256(data)[:12]} and "
            f"{stream_sha256(bytes(again))[:12]}); its results would differ from one fresh store to another"
        )
    redecoded = codec.decode(data)
    if image_digest(redecoded) != image_digest(decoded):
        raise CodecError(
            f"{where}: the decoder is not deterministic: decoding the same {len(data)}-byte stream twice gave "
            f"different pixels"
        )
