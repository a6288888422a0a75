"""Overhead of the `compnet-png` codec over the bare pipeline it wraps, on the same tensors.

Run with ``python -m pytest benchmarks/test_compnet_throughput.py --benchmark-only -q``. One small
untrained model per rate point (width 32, downsampling 4, the encoder's last layer scaled as the
codec's stand-ins are so that the symbols spread over the levels; speed does not depend on
training) is saved as a checkpoint and loaded twice: by the codec (``models=FOLDER``) and as a bare
``CompNet`` (``load_state_dict``, eval mode). Timed work, four 96x112 RGB images (aligned face-crop
size, already a multiple of the downsampling: no padding):

  codec: ``encode`` + ``decode`` through the taskcodec Codec (uint8 in and out: conversion,
         padding, header, CRC, stream and symbol checks, cropping, rounding);
  bare:  compression CNN -> sigmoid -> ``round(y * (levels-1))`` -> uint8 -> ``imagecodecs.png_encode``
         (level 9, the channels stacked vertically as the codec does), then ``png_decode`` ->
         reconstruction CNN, on the already converted float tensors.

The PNG the codec writes is asserted to be the bare PNG byte for byte, and its decoded image the
bare reconstruction rounded to uint8, so the comparison is like for like. ``extra_info`` records
both medians, their ratio (1.0 = no overhead) and the PNG payload per image. Torch runs with the
process's threads; on the shared development machines run it with ``OMP_NUM_THREADS=1``.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from benchmarks.timing import median_seconds, natural_image

from taskcodec_plugins.codecs.compnet_png import codec as compnet_codec
from taskcodec_plugins.codecs.compnet_png import models as compnet_models
from taskcodec_plugins.codecs.compnet_png.codec import CompNetPngCodec

WIDTH, DOWNSAMPLING, SEED = 32, 4, 0
ROUNDS = 7
# (channels, levels): the lowest and highest nominal bpp of the codec's stand-ins (0.25 and 4)
RATE_POINTS = [(2, 4), (16, 16)]


IMAGES = [natural_image(96, 112, seed) for seed in range(4)]


def _bare_model(path, arch: compnet_models.CompNetArch):
    """The checkpoint's weights in a plain CompNet, without the codec's loading and digest checks."""
    import torch

    document = torch.load(path, map_location="cpu", weights_only=True)
    model = compnet_models.build_compnet(*arch)
    model.load_state_dict(document["state_dict"])
    return model.eval()


def _tensor(image: np.ndarray):
    """1 x 3 x H x W float in [0, 1], contiguous like the codec's (the same memory layout, the same floats)."""
    import torch

    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def _bare_encode(model, x, levels: int) -> bytes:
    """CNN -> sigmoid -> uniform quantiser -> PNG of the symbols stacked as one gray image."""
    import imagecodecs
    import torch

    symbols = torch.round(torch.sigmoid(model.encoder(x)) * (levels - 1)).to(torch.uint8)[0].numpy()
    return bytes(imagecodecs.png_encode(symbols.reshape(-1, symbols.shape[-1]), level=compnet_codec.PNG_LEVEL))


def _bare_decode(model, png: bytes, channels: int, levels: int):
    """PNG -> symbols -> reconstruction CNN: 1 x 3 x H x W float in [0, 1]."""
    import imagecodecs
    import torch

    symbols = imagecodecs.png_decode(png)
    s = torch.from_numpy(symbols.reshape(channels, -1, symbols.shape[-1]))[None].float()
    return model.decoder(s / (levels - 1)).clamp(0.0, 1.0)


def _as_uint8(x_hat) -> np.ndarray:
    """What the codec hands back for an RGB image: H x W x 3 uint8."""
    return x_hat[0].mul(255.0).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("channels,levels", RATE_POINTS, ids=[f"{c}ch-{l}lv" for c, l in RATE_POINTS])
def test_compnet_codec_vs_bare_pipeline(benchmark, tmp_path, channels: int, levels: int) -> None:
    import torch

    arch = compnet_models.CompNetArch(channels, levels, DOWNSAMPLING, 3, WIDTH)
    path = tmp_path / "m.pt"
    compnet_models.save_checkpoint(path, compnet_models.untrained_compnet(arch, SEED), mode="untrained", seed=SEED)
    codec = CompNetPngCodec(models=str(tmp_path))
    rate_point = arch.nominal_bpp
    bare_model = _bare_model(path, arch)
    tensors = [_tensor(image) for image in IMAGES]  # 96x112: a multiple of 4, the codec pads nothing

    def via_codec() -> int:
        return sum(codec.decode(codec.encode(image, rate_point)).size for image in IMAGES)

    def bare() -> int:
        with torch.inference_mode():
            return sum(_bare_decode(bare_model, _bare_encode(bare_model, x, levels), channels, levels).numel()
                       for x in tensors)

    with torch.inference_mode():  # the same PNG and the same pixels, so the comparison is like for like
        payload = []
        for image, x in zip(IMAGES, tensors):
            png = _bare_encode(bare_model, x, levels)
            data = codec.encode(image, rate_point)
            assert compnet_codec.unpack_stream(data)[1] == png and codec.payload_bytes(data) == len(png)
            assert np.array_equal(codec.decode(data), _as_uint8(_bare_decode(bare_model, png, channels, levels)))
            payload.append(len(png))

    benchmark.group = "compnet-png"
    benchmark.pedantic(via_codec, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    # --benchmark-disable runs the function once and keeps no stats: time it here then
    ours_s = benchmark.stats.stats.median if benchmark.stats is not None else median_seconds(via_codec, ROUNDS)
    bare_s = median_seconds(bare, ROUNDS)
    benchmark.extra_info.update(
        channels=channels, levels=levels, downsampling=DOWNSAMPLING, width=WIDTH, nominal_bpp=rate_point,
        images=f"{len(IMAGES)} x {IMAGES[0].shape}", png_bytes_per_image=round(statistics.mean(payload), 1),
        threads=torch.get_num_threads(),
        taskcodec_ms=round(ours_s * 1e3, 2), bare_ms=round(bare_s * 1e3, 2), ratio=round(ours_s / bare_s, 3),
    )
