"""What exact integer coding costs: the ``integer-hyperprior`` codec, one at a time and batched, against a bare
CompressAI scale hyperprior of the same widths coding float tensors.

Run with ``OMP_NUM_THREADS=1 python -m pytest benchmarks/test_integer_hyperprior_throughput.py --benchmark-only -q``.
Timed work, 64 FER+-sized 48x48 gray images, encode + decode:

  single:  ``encode`` + ``decode`` per image through the Codec (what the runner calls today);
  batched: ``encode_batch_with_stats`` + ``decode_batch`` (the same bytes and pixels, asserted);
  bare:    CompressAI ``ScaleHyperprior(96, 128)`` ``compress`` + ``decompress`` on one batch of float tensors
           (64x64 inputs: its 64x downsampling; float arithmetic, whose streams are not portable).

``extra_info``: images/s of each and the ratios. The codec's transforms run in float64 on integers
(``unfold`` + matmul), about twice the work of float32, and its entropy coding goes image by image.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.timing import median_seconds

ROUNDS = 5
COUNT = 64


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:48]
    return [np.clip(100 + 60 * np.sin(x / (3 + i % 5)) + 40 * np.cos(y / 7) + rng.normal(0, 8, (48, 48)), 0, 255)
            .astype(np.uint8) for i in range(COUNT)]


def test_integer_hyperprior_single_batched_and_bare(benchmark, images) -> None:
    import torch

    import taskcodec
    from taskcodec_plugins.codecs.integer_hyperprior.codec import IntegerHyperpriorCodec

    codec = IntegerHyperpriorCodec(untrained_seed=0, N=96, M=128, Nz=64, stages=3)
    point = codec.default_rate_points[1]

    def single() -> int:
        return sum(codec.decode(codec.encode(im, point)).size for im in images)

    def batched() -> int:
        streams = [data for data, _ in codec.encode_batch_with_stats(images, point)]
        return sum(im.size for im in codec.decode_batch(streams))

    streams = [data for data, _ in codec.encode_batch_with_stats(images, point)]
    assert streams == [codec.encode(im, point) for im in images]

    taskcodec.ensure_torchvision()
    from compressai.models import ScaleHyperprior

    bare_model = ScaleHyperprior(96, 128).eval()
    bare_model.update(force=True)
    x = torch.from_numpy(np.stack(images)).float().div(255)[:, None].repeat(1, 3, 1, 1)
    x = torch.nn.functional.pad(x, (0, 16, 0, 16), mode="replicate")

    def bare() -> int:
        with torch.inference_mode():
            out = bare_model.compress(x)
            return bare_model.decompress(out["strings"], out["shape"])["x_hat"].numel()

    benchmark.group = "integer-hyperprior"
    benchmark.pedantic(batched, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    batched_s = benchmark.stats.stats.median if benchmark.stats is not None else median_seconds(batched, ROUNDS)
    single_s = median_seconds(single, ROUNDS)
    bare_s = median_seconds(bare, ROUNDS)
    benchmark.extra_info.update(
        images=COUNT, threads=torch.get_num_threads(),
        batched_images_per_s=round(COUNT / batched_s, 1), single_images_per_s=round(COUNT / single_s, 1),
        bare_compressai_images_per_s=round(COUNT / bare_s, 1),
        batched_vs_single=round(single_s / batched_s, 3), bare_vs_batched=round(batched_s / bare_s, 3))
