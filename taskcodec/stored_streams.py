"""The runner's checks on streams in the store: before one is reused, when one is decoded again, and when
one a worker wrote is decoded in the main process. ``where`` names the codec, row, rate point and image."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .codec import Codec
from .errors import CodecError, StoreError
from .hashing import image_digest
from .store import EncodingRecord, Store, stream_sha256


def stream_reusable(store: Store, codec: Codec, rec: EncodingRecord, where: str, log: Callable[[str], None]) -> bool:
    """Whether the stored stream of ``rec`` may be decoded again; logs why not.

    Rows migrated from a version 1 store have no sha256 yet: they are verified by decoding
    the stream and comparing with ``decoded_digest``, and the sha256 is recorded if it agrees.
    """
    data = store.read_stream_if_present(rec)
    problem = store.stream_problem(rec, data)
    if problem is None and rec.stream_sha256 is None:
        try:
            if image_digest(codec.decode(data)) == rec.decoded_digest:
                store.set_stream_sha256(rec.key, stream_sha256(data))
            else:
                problem = f"{store.stream_location(rec)}: decodes to other pixels than were recorded"
        except CodecError as exc:
            problem = f"{store.stream_location(rec)}: does not decode: {exc}"
    if problem is None:
        return True
    log(f"taskcodec: {where}: the stored stream is damaged ({problem}); encoding it again")
    return False


def decode_stored(store: Store, codec: Codec, rec: EncodingRecord, where: str) -> np.ndarray:
    """Decode a stored stream (checked against its sha256) and check its pixels against the record."""
    path = store.stream_location(rec)
    try:
        data = store.read_stream(rec)
    except StoreError as exc:  # checked while planning: it changed since
        raise StoreError(f"{where}: {exc}") from None
    try:
        decoded = codec.decode(data)
    except CodecError as exc:
        raise CodecError(f"{where}: the stored stream ({path}, sha256 as recorded) no longer decodes: {exc}") from None
    if image_digest(decoded) != rec.decoded_digest:
        raise CodecError(
            f"{where}: decoding the stored stream ({path}, sha256 as recorded) again gives other pixels than "
            f"when it was encoded: the decoder of codec {codec.name!r} is not deterministic"
        )
    return decoded


def check_decodes_here(store: Store, codec: Codec, rec: EncodingRecord, where: str) -> None:
    """Decode in this process a stream a worker encoded and decoded; CodecError if it differs."""
    path = store.stream_location(rec)
    data = store.read_stream_if_present(rec)
    problem = store.stream_problem(rec, data)
    if problem:
        raise StoreError(f"{where}: the stream a worker just wrote is unusable: {problem}")
    try:
        decoded = codec.decode(data)
    except CodecError as exc:
        raise CodecError(
            f"{where}: codec {codec.name!r} decodes its stream ({path}) only in the process that encoded it "
            f"(here it fails: {exc}); its round trip must not depend on process state such as a global cache"
        ) from None
    if image_digest(decoded) != rec.decoded_digest:
        raise CodecError(
            f"{where}: codec {codec.name!r} decodes its stream ({path}) to other pixels in another process "
            f"than in the process that encoded it: its round trip depends on process state (a global cache?) "
            f"or its decoder is not deterministic"
        )
