"""Overhead of the taskcodec Codec wrappers over bare imagecodecs calls (encode + decode).

Run with ``python -m pytest benchmarks --benchmark-only -q`` (skipped by default). Each
benchmark times encode + decode of an image set through the taskcodec Codec object; the same
work done by the bare imagecodecs calls, with the same parameters, is timed alongside and
``extra_info`` records both medians and their ratio (taskcodec / bare; 1.0 = no overhead).
Image sets: "faces" = four 96x112 RGB images (aligned face-crop size), "kodak" = one 512x768 RGB.
"""
from __future__ import annotations

from typing import Any, Callable

import imagecodecs
import numpy as np
import pytest

from benchmarks.timing import median_seconds, natural_image

from taskcodec.pluginmanager import get_plugin_manager


IMAGE_SETS = {
    "faces": [natural_image(96, 112, seed) for seed in range(4)],
    "kodak": [natural_image(512, 768, 9)],
}

# codec name -> (rate_point, bare encode, bare decode): the same library calls and parameters
# that the codec's defaults make.
BARE: dict[str, tuple[Any, Callable[[np.ndarray, Any], bytes], Callable[[bytes], np.ndarray]]] = {
    "jpeg": (50, lambda im, s: imagecodecs.jpeg8_encode(im, level=s, subsampling="420", optimize=False),
             imagecodecs.jpeg8_decode),
    "jpeg2000": (36, lambda im, s: imagecodecs.jpeg2k_encode(im, level=s, codecformat="j2k", reversible=False,
                                                             numthreads=1),
                 lambda d: imagecodecs.jpeg2k_decode(d, numthreads=1)),
    "webp": (60, lambda im, s: imagecodecs.webp_encode(im, level=s, lossless=False, method=4),
             lambda d: imagecodecs.webp_decode(d, hasalpha=False)),
    "avif": (55, lambda im, s: imagecodecs.avif_encode(im, level=s, speed=8, pixelformat="yuv444", numthreads=1),
             lambda d: imagecodecs.avif_decode(d, numthreads=1)),
    "jpegxl": (70, lambda im, s: imagecodecs.jpegxl_encode(im, level=s, effort=7, numthreads=1),
               lambda d: imagecodecs.jpegxl_decode(d, numthreads=1)),
    "png": (None, lambda im, s: imagecodecs.png_encode(im), imagecodecs.png_decode),
}
ROUNDS = {"faces": 5, "kodak": 3}


@pytest.mark.parametrize("image_set", list(IMAGE_SETS))
@pytest.mark.parametrize("codec_name", list(BARE))
def test_codec_vs_bare_imagecodecs(benchmark, codec_name: str, image_set: str) -> None:
    codec = get_plugin_manager().get("codec", codec_name).target()
    rate_point, bare_encode, bare_decode = BARE[codec_name]
    images = IMAGE_SETS[image_set]

    def via_taskcodec() -> int:
        return sum(codec.decode(codec.encode(image, rate_point)).size for image in images)

    def bare() -> int:
        return sum(bare_decode(bytes(bare_encode(image, rate_point))).size for image in images)

    # same bytes, so the comparison is like for like
    for image in images:
        assert codec.encode(image, rate_point) == bytes(bare_encode(image, rate_point))

    benchmark.group = f"{codec_name} {image_set}"
    benchmark.pedantic(via_taskcodec, rounds=ROUNDS[image_set], iterations=1, warmup_rounds=1)
    bare_s = median_seconds(bare, ROUNDS[image_set])
    ours_s = benchmark.stats.stats.median if benchmark.stats is not None else median_seconds(via_taskcodec, ROUNDS[image_set])
    benchmark.extra_info.update(
        codec=codec_name,
        rate_point=rate_point,
        images=f"{len(images)} x {images[0].shape}",
        taskcodec_ms=round(ours_s * 1e3, 3),
        bare_ms=round(bare_s * 1e3, 3),
        ratio=round(ours_s / bare_s, 3),
    )
