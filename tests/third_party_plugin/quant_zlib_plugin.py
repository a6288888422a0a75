"""A throwaway codec plugin: quantise each pixel to `rate_point` levels, then zlib."""
import os
import struct
import time
import zlib

import numpy as np

import taskcodec


class QuantZlib(taskcodec.Codec):
    name = "quant-zlib"
    version = "1"
    rate_parameter = "levels"
    default_rate_points = (4, 16, 64)
    description = "uniform quantisation + zlib (test plugin)"

    def validate_rate_point(self, rate_point):
        if isinstance(rate_point, bool) or not isinstance(rate_point, int) or not 2 <= rate_point <= 256:
            raise taskcodec.CodecError(f"quant-zlib: levels must be an integer in 2..256, got {rate_point!r}")
        return rate_point

    def encode(self, image, rate_point):
        delay = float(os.environ.get("QUANT_ZLIB_DELAY", "0"))
        if delay:
            time.sleep(delay)
        step = 256 / int(rate_point)
        q = np.floor(image / step).astype(np.uint8)
        channels = 1 if image.ndim == 2 else 3
        header = struct.pack(">HHBB", image.shape[0], image.shape[1], channels, int(rate_point))
        return header + zlib.compress(q.tobytes(), 9)

    def decode(self, data):
        if len(data) < 6:
            raise taskcodec.CodecError("quant-zlib: stream shorter than its header")
        h, w, c, levels = struct.unpack(">HHBB", data[:6])
        try:
            q = np.frombuffer(zlib.decompress(data[6:]), np.uint8)
        except zlib.error as exc:
            raise taskcodec.CodecError(f"quant-zlib: corrupt stream: {exc}") from None
        step = 256 / levels
        image = np.clip((q.astype(np.float32) + 0.5) * step, 0, 255).astype(np.uint8)
        return image.reshape((h, w) if c == 1 else (h, w, 3))

    def payload_bytes(self, data):
        return len(data) - 6


@taskcodec.hookimpl
def register_codecs(register):
    register(QuantZlib)
