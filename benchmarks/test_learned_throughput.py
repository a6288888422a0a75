"""Overhead of the `learned` codec over calling the bare CompressAI model on the same tensors.

Run with ``python -m pytest benchmarks/test_learned_throughput.py --benchmark-only -q``. One
small untrained model per architecture (N=64, M=96, CompressAI's initialisation scaled as the
codec's stand-ins are; speed does not depend on training) is saved as a checkpoint and loaded
twice: by the codec (``models=FOLDER``) and as a bare CompressAI model (its own
``load_state_dict`` + ``update(force=True)``). Timed work, four 96x112 RGB images (aligned face-crop size):

  codec: ``encode`` + ``decode`` through the taskcodec Codec (uint8 in and out: conversion,
         padding (to 128x128 for the hyperprior models; 96x112 is already a multiple of 16),
         header, CRC, checks, cropping, rounding);
  bare:  ``model.compress`` + ``model.decompress`` on the already padded float tensors.

The same strings are asserted, so the comparison is like for like. ``extra_info`` records both
medians, their ratio (1.0 = no overhead) and the cost of ``encode_with_stats`` (what the runner
calls: one extra forward pass for the estimated rate). Torch runs with the process's threads; on
the shared development machines run it with ``OMP_NUM_THREADS=1``.
"""
from __future__ import annotations


import numpy as np
import pytest

from benchmarks.timing import median_seconds, natural_image

from taskcodec_plugins.codecs.learned import models as learned_models
from taskcodec_plugins.codecs.learned.codec import LearnedCodec

N, M, LAMBDA = 64, 96, 0.0067
ROUNDS = 7


IMAGES = [natural_image(96, 112, seed) for seed in range(4)]


@pytest.mark.parametrize("arch", list(learned_models.ARCHITECTURES))
def test_learned_codec_vs_bare_compressai(benchmark, tmp_path, arch: str) -> None:
    import torch
    import torch.nn.functional as F

    model = learned_models.untrained_model(arch, N, M, 3, seed=0, lmbda=LAMBDA)
    learned_models.save_checkpoint(tmp_path / "m.pt", model, arch=arch, N=N, M=M, in_channels=3, lmbda=LAMBDA, mode="untrained",
                       seed=0)
    codec = LearnedCodec(models=str(tmp_path))

    import compressai.models

    document = torch.load(tmp_path / "m.pt", weights_only=True)
    bare_model = getattr(compressai.models, learned_models.ARCHITECTURES[arch].compressai_class)(N, M)
    bare_model.load_state_dict(document["state_dict"])
    bare_model.eval().update(force=True)
    multiple = learned_models.ARCHITECTURES[arch].downsampling  # 96x112 -> 128x128 (hyperpriors), unchanged (factorized)
    pad = (0, -112 % multiple, 0, -96 % multiple)
    tensors = [F.pad(torch.from_numpy(im.astype(np.float32) / 255).permute(2, 0, 1)[None], pad, mode="replicate")
               for im in IMAGES]

    def via_codec() -> int:
        return sum(codec.decode(codec.encode(image, LAMBDA)).size for image in IMAGES)

    def bare() -> int:
        with torch.inference_mode():
            total = 0
            for x in tensors:
                out = bare_model.compress(x)
                total += bare_model.decompress(out["strings"], out["shape"])["x_hat"].numel()
            return total

    def with_stats() -> int:
        return sum(len(codec.encode_with_stats(image, LAMBDA)[0]) for image in IMAGES)

    with torch.inference_mode():  # same strings, so the comparison is like for like
        for image, x in zip(IMAGES, tensors):
            strings = [s[0] for s in bare_model.compress(x)["strings"]]
            data = codec.encode(image, LAMBDA)
            assert data.endswith(b"".join(strings)) and codec.payload_bytes(data) == sum(map(len, strings))

    benchmark.group = f"learned {arch}"
    benchmark.pedantic(via_codec, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    ours_s = benchmark.stats.stats.median if benchmark.stats is not None else median_seconds(via_codec, ROUNDS)
    bare_s = median_seconds(bare, ROUNDS)
    encode_s = median_seconds(lambda: [codec.encode(image, LAMBDA) for image in IMAGES], ROUNDS)
    stats_s = median_seconds(with_stats, ROUNDS)
    benchmark.extra_info.update(
        arch=arch, N=N, M=M, images=f"{len(IMAGES)} x {IMAGES[0].shape}", coded_size=list(tensors[0].shape[-2:]),
        threads=torch.get_num_threads(),
        taskcodec_ms=round(ours_s * 1e3, 2), bare_ms=round(bare_s * 1e3, 2), ratio=round(ours_s / bare_s, 3),
        encode_ms=round(encode_s * 1e3, 2), encode_with_stats_ms=round(stats_s * 1e3, 2),
        stats_cost=round(stats_s / encode_s, 3),
    )
