"""Encode, decode and measure one chunk of images with one codec at one rate point.

This is the unit of work the runner hands to worker processes, so it imports little:
the codec and metric objects arrive pickled, and the bitstreams are written straight
into the store's content-addressed folder. Encoding goes through
:meth:`Codec.encode_with_stats`; each stat the codec reports is kept as the image metric
``stat:<name>`` beside the real metrics (``encode_seconds`` includes computing them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .api import Codec, ImageMetric, check_image, image_digest
from .errors import CodecError
from .store import STAT_PREFIX, EncodingRecord, encoding_key, write_atomic


@dataclass
class ChunkResult:
    records: list[EncodingRecord] = field(default_factory=list)
    metrics: list[tuple[str, str, float | None]] = field(default_factory=list)  # (key, metric, value)
    decoded: dict[str, np.ndarray] = field(default_factory=dict)  # key -> decoded image, when asked


def encode_chunk(
    codec: Codec,
    codec_identity: dict[str, Any],
    row: str,
    setting: Any,
    items: Sequence[tuple[str, str, np.ndarray]],  # (sample id, image digest, image)
    streams_dir: str,
    metrics: Sequence[ImageMetric],
    keep_decoded: bool,
) -> ChunkResult:
    """Encode each image, store its bitstream, decode it, and measure it."""
    out = ChunkResult()
    for sample_id, digest, image in items:
        where = f"codec {codec.name!r} (row {row!r}) at {codec.rate_parameter or 'setting'}={setting!r} on image {sample_id!r}"
        key = encoding_key(codec_identity, setting, digest)
        t0 = time.perf_counter()
        try:
            data, stats = codec.encode_with_stats(image, setting)
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
        payload = codec.payload_bytes(data)
        stream = Path(streams_dir) / key[:2] / key
        write_atomic(stream, data, durable=False)  # the runner re-encodes a stream found damaged
        out.records.append(
            EncodingRecord(
                key=key, codec=codec.name, setting=setting, image_digest=digest,
                height=image.shape[0], width=image.shape[1], n_bytes=len(data),
                payload_bytes=payload, decoded_digest=image_digest(decoded),
                encode_seconds=t1 - t0, decode_seconds=t2 - t1,
            )
        )
        for metric in metrics:
            value = metric.compute(image, decoded)
            out.metrics.append((key, metric.name, None if value is None else float(value)))
        out.metrics.extend((key, STAT_PREFIX + name, float(value)) for name, value in stats.items())
        if keep_decoded:
            out.decoded[key] = decoded
    return out
