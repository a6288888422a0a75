"""GPU-marked (``pytest -m gpu``, run by scripts/gpu_check.py): the integer hyperprior's streams and pixels
do not depend on the device. Each case runs on the CPU everywhere; the CUDA cases skip without a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from taskcodec_plugins.codecs.integer_hyperprior.codec import IntegerHyperpriorCodec
from tests.helpers import natural_image


def _devices():
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.gpu
@pytest.mark.parametrize("encode_on", ["cpu", "cuda"])
@pytest.mark.parametrize("decode_on", ["cpu", "cuda"])
def test_a_stream_made_on_one_device_decodes_to_the_same_pixels_on_another(encode_on, decode_on):
    if {encode_on, decode_on} - set(_devices()):
        pytest.skip("no CUDA device here")
    images = [natural_image(48, 48, color=False, seed=seed) for seed in range(6)]
    reference = IntegerHyperpriorCodec(untrained_seed=3)
    expected = [reference.encode(im, 0.01) for im in images]
    encoder = IntegerHyperpriorCodec(untrained_seed=3, device=encode_on)
    decoder = IntegerHyperpriorCodec(untrained_seed=3, device=decode_on)
    streams = [s for s, _ in encoder.encode_batch_with_stats(images, 0.01)]
    assert streams == expected  # the bytes do not depend on the encoding device or on batching
    for stream, alone in zip(decoder.decode_batch(streams), (reference.decode(s) for s in expected)):
        assert np.array_equal(stream, alone)
