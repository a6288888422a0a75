"""The ``integer-hyperprior`` codec: exact integer coding (the same bytes and pixels under any CPU kernel set,
thread count, batch size and process), batched coding equal to one-at-a-time coding, the stream's
checks, checkpoints, training, and the codec contract on configured instances.

Untrained stand-ins (N 32, M 48) keep it to seconds. The rate check on committed models reads
``leaderboard/models/*/integer-*`` and ``leaderboard/*/models/integer-*``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from taskcodec import CodecError
from taskcodec_plugins.codecs.integer_hyperprior import integer_network, models, stream
from taskcodec_plugins.codecs.integer_hyperprior.codec import IntegerHyperpriorCodec
from tests.contract import test_codec_contract as contract
from tests.helpers import REPO, committed_model_folders, natural_image, skip_unless_cpu_runs


@pytest.fixture(scope="module")
def gray_codec() -> IntegerHyperpriorCodec:
    return IntegerHyperpriorCodec(untrained_seed=3)


@pytest.fixture(scope="module")
def color_codec() -> IntegerHyperpriorCodec:
    return IntegerHyperpriorCodec(untrained_seed=4, in_channels=3)


def _faces(n: int, shape=(48, 48), seed: int = 0) -> list[np.ndarray]:
    return [natural_image(shape[0], shape[1], color=len(shape) == 3, seed=seed + i) for i in range(n)]


# ---------------------------------------------------------------------------------------------- exactness
def test_integer_model_follows_the_float_model() -> None:
    """The export keeps the trained model: latents equal the float model's rounded latents (nearly all; a
    latent within rounding error of .5 may go either way) and pixels are within one level."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = models.build_model(32, 48, 16, 3, 1, rate_points=3).eval()
    exact = integer_network.ExactModel(integer_network.export(model), 3, 1)
    x = torch.from_numpy(np.stack(_faces(4))[:, None])
    latents = exact.analyse(x, 1)
    with torch.no_grad():
        gain, inverse_gain = model.gains(1)
        y = model.g_a(x.float() / 255) * gain[:, None, None]
        reference = torch.round(y).long()
        pixels = (model.g_s(latents.y.float() * inverse_gain[:, None, None]) * 255).round().clamp(0, 255)
    assert (latents.y == reference).float().mean() > 0.995
    assert (exact.synthesise(latents.y, 1).float() - pixels).abs().max() <= 1


def test_batches_code_exactly_as_single_images(color_codec) -> None:
    images = _faces(5, (40, 56, 3), seed=1)
    for rate_point in color_codec.default_rate_points:
        batch = [data for data, _ in color_codec.encode_batch_with_stats(images, rate_point)]
        assert batch == [color_codec.encode(im, rate_point) for im in images]
        decoded = color_codec.decode_batch(batch[::-1])[::-1]  # another order, one call
        for data, image in zip(batch, decoded):
            np.testing.assert_array_equal(image, color_codec.decode(data))
            assert image.shape == (40, 56, 3) and image.dtype == np.uint8


OTHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    from taskcodec_plugins.codecs.integer_hyperprior.codec import IntegerHyperpriorCodec
    job = json.loads(open(sys.argv[1]).read())
    codec = IntegerHyperpriorCodec(**job["options"])
    images = list(np.load(job["images"])["images"])
    out = {}
    for rate_point in codec.default_rate_points:
        if job["batch"]:
            streams = [data for data, _ in codec.encode_batch_with_stats(images, rate_point)]
        else:
            streams = [codec.encode(image, rate_point) for image in images]
        decoded = codec.decode_batch(streams) if job["batch"] else [codec.decode(s) for s in streams]
        out[f"{rate_point:g}"] = {"streams": [s.hex() for s in streams], "pixels": [d.tobytes().hex() for d in decoded]}
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("capability,threads,batch", [("default", 1, False), ("avx2", 2, True), ("avx512", 2, False)])
def test_bytes_and_pixels_do_not_depend_on_cpu_kernels_threads_or_batching(tmp_path, capability, threads,
                                                                           batch) -> None:
    """Another process with other SIMD kernels (ATEN_CPU_CAPABILITY; numpy's AVX paths off), another thread
    count, batched or not: the same streams and the same decoded pixels as this process, from one
    checkpoint. (Untrained stand-ins are exported in each process, and their float-computed tables may
    differ between kernel sets: that is why checkpoints store the integer model.)"""
    skip_unless_cpu_runs(capability)
    _write_checkpoint(tmp_path / "models" / "model.pt", lambdas=(0.001, 0.01, 0.1))
    codec = IntegerHyperpriorCodec(models=str(tmp_path / "models"))
    images = _faces(3, seed=7) + [np.full((48, 48), 255, np.uint8)]
    np.savez(tmp_path / "images.npz", images=np.stack(images))
    (tmp_path / "job.json").write_text(json.dumps({"options": codec.options(), "images": str(tmp_path / "images.npz"),
                                                   "batch": batch}))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE", ATEN_CPU_CAPABILITY=capability,
               NPY_DISABLE_CPU_FEATURES="AVX512F AVX512CD AVX512_SKX AVX2 FMA3" if capability == "default" else "")
    run = subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(tmp_path / "job.json"), str(threads)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    other = json.loads(run.stdout)
    for rate_point in codec.default_rate_points:
        streams = [codec.encode(im, rate_point) for im in images]
        got = other[f"{rate_point:g}"]
        assert got["streams"] == [s.hex() for s in streams], rate_point
        assert got["pixels"] == [codec.decode(s).tobytes().hex() for s in streams], rate_point


def test_overflowing_accumulator_is_an_error_not_a_silent_result() -> None:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = models.build_model(8, 8, 8, 1, 1, rate_points=1).eval()
    exact = integer_network.export(model)
    exact["g_a.0.bias"] = torch.full_like(exact["g_a.0.bias"], 2**52)
    with pytest.raises(integer_network.ExactOverflow, match="g_a.0"):
        integer_network.ExactModel(exact, 1, 1).analyse(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0)


# ---------------------------------------------------------------------------------------------- stream
def test_header_is_eight_bytes_for_small_images(gray_codec) -> None:
    data = gray_codec.encode(_faces(1)[0], gray_codec.default_rate_points[0])
    assert len(data) - gray_codec.payload_bytes(data) == 8
    header = stream.parse(data)
    assert (header.height, header.width, header.gray_on_color) == (48, 48, False)


def test_damaged_streams_raise_with_the_reason(gray_codec) -> None:
    data = gray_codec.encode(_faces(1)[0], gray_codec.default_rate_points[1])
    cases = {
        b"": "empty bitstream", data[:5]: "truncated stream", b"X" + data[1:]: "magic byte",
        data[:1] + bytes([0x20]) + data[2:]: "format version 2",
        data[:-1]: "CRC-16 mismatch", data + b"\0": "CRC-16 mismatch",
        data[:-3] + bytes([data[-3] ^ 4]) + data[-2:]: "CRC-16 mismatch",
        data[:2] + bytes([data[2] ^ 1]) + data[3:]: "not one of this codec's models",
    }
    for bad, reason in cases.items():
        with pytest.raises(CodecError, match=reason):
            gray_codec.decode(bad)


def test_stream_of_another_model_is_refused(gray_codec) -> None:
    other = IntegerHyperpriorCodec(untrained_seed=9)
    data = other.encode(_faces(1)[0], other.default_rate_points[0])
    with pytest.raises(CodecError, match="integer-hyperprior"):
        gray_codec.decode(data)


def test_gray_image_on_a_color_model(color_codec) -> None:
    image = _faces(1)[0]
    data = color_codec.encode(image, color_codec.default_rate_points[-1])
    assert stream.parse(data).gray_on_color
    decoded = color_codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8


def test_rgb_image_on_a_gray_model_is_refused(gray_codec) -> None:
    with pytest.raises(CodecError, match="1-channel"):
        gray_codec.encode(natural_image(48, 48, color=True), gray_codec.default_rate_points[0])


def test_estimated_bits_follow_the_payload(gray_codec) -> None:
    for rate_point in gray_codec.default_rate_points:
        data, stats = gray_codec.encode_with_stats(_faces(1, seed=5)[0], rate_point)
        actual = 8 * gray_codec.payload_bytes(data)
        assert abs(actual - stats["estimated_bits"]) <= 0.03 * stats["estimated_bits"] + 64, (rate_point, stats, actual)


# ---------------------------------------------------------------------------------------------- checkpoints
def _write_checkpoint(path: Path, lambdas=(0.001, 0.01), seed: int = 2) -> str:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.build_model(16, 24, 8, 2, 1, rate_points=len(lambdas)).eval()
    return models.save_checkpoint(path, model, lambdas=list(lambdas), mode="rd", seed=seed)


def test_checkpoint_round_trip_and_rate_points(tmp_path) -> None:
    digest = _write_checkpoint(tmp_path / "m" / "model.pt")
    codec = IntegerHyperpriorCodec(models=str(tmp_path / "m"))
    assert codec.default_rate_points == (0.001, 0.01)
    assert {e.digest for e in codec.entries()} == {digest} and len({e.model_id for e in codec.entries()}) == 2
    data = codec.encode(natural_image(37, 53, color=False), 0.01)
    assert codec.decode(data).shape == (37, 53)
    with pytest.raises(CodecError, match=r"one of the available rate points \[0.001, 0.01\]"):
        codec.encode(natural_image(16, 16, color=False), 0.005)


def test_a_model_read_for_fine_tuning_keeps_its_constants(tmp_path) -> None:
    """The checkpoint's float16 weights are its parameters only: the buffers (CompressAI's likelihood bound 1e-9,
    which float16 makes 0, and the scale bound) stay the constructor's, so an outlying latent costs finite bits
    (a zero bound gave inf bits and NaN weights 86 steps into a fine-tune)."""
    import torch

    _write_checkpoint(tmp_path / "model.pt")
    document = models.load_checkpoint(tmp_path / "model.pt")
    assert all(v.dtype == torch.float16 for v in document["state_dict"].values())
    fresh = models.build_model(16, 24, 8, 2, 1, rate_points=2)
    model = models.model_from_checkpoint(document)
    for name, buffer in fresh.named_buffers():
        assert torch.equal(dict(model.named_buffers())[name], buffer), name
    parameters = dict(model.named_parameters())
    assert all(torch.equal(parameters[k], v.float()) for k, v in document["state_dict"].items())
    _, likelihoods = model.entropy_bottleneck(torch.full((1, 8, 2, 2), 1e4))
    assert likelihoods.min() > 0 and torch.isfinite(-torch.log2(likelihoods)).all()


def test_a_fine_tune_may_add_rate_points_whose_gains_start_on_the_log_lambda_line(tmp_path) -> None:
    import torch

    _write_checkpoint(tmp_path / "model.pt")  # lambdas 0.001 and 0.01
    document = models.load_checkpoint(tmp_path / "model.pt")
    rows = document["state_dict"]["log_gain"].float()
    model = models.model_from_checkpoint(document, [0.0001, 0.001, 0.01 ** 0.5 * 0.001 ** 0.5, 0.01, 0.1])
    gain = model.log_gain.detach()
    assert gain.shape == (5, rows.shape[1])
    assert torch.equal(gain[1], rows[0]) and torch.equal(gain[3], rows[1])
    assert torch.allclose(gain[2], (rows[0] + rows[1]) / 2, atol=1e-6)  # halfway in log lambda
    assert torch.allclose(gain[4], 2 * rows[1] - rows[0], atol=1e-6)  # one decade beyond the top
    assert torch.allclose(gain[0], 2 * rows[0] - rows[1], atol=1e-6)
    with pytest.raises(models.CheckpointError, match=r"keeps those"):
        models.model_from_checkpoint(document, [0.001, 0.1])


def test_damaged_checkpoint_and_clashing_lambdas_are_refused(tmp_path) -> None:
    _write_checkpoint(tmp_path / "a" / "model.pt")
    blob = bytearray((tmp_path / "a" / "model.pt").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.pt").write_bytes(bytes(blob))
    with pytest.raises(CodecError, match="model.pt"):
        IntegerHyperpriorCodec(models=str(tmp_path / "b"))
    _write_checkpoint(tmp_path / "a" / "other.pt", lambdas=(0.01, 0.1), seed=3)
    with pytest.raises(CodecError, match="two models for lambda 0.01"):
        IntegerHyperpriorCodec(models=str(tmp_path / "a"))


@pytest.mark.skipif(not committed_model_folders("integer-"), reason="no committed integer-hyperprior models")
@pytest.mark.parametrize("folder", committed_model_folders("integer-"))
def test_estimated_rate_within_a_few_percent_on_trained_models(folder: str) -> None:
    """Trained models: the payload matches the coded tables' -log2 probabilities within 3% plus rANS's
    final state (up to 8 bytes per image), on 6 face-sized images per rate point."""
    codec = IntegerHyperpriorCodec(models=folder)
    color = codec.entries()[0].arch[models.ARCH_KEYS.index("in_channels")] == 3
    images = [natural_image(48, 48, color=color, seed=s) for s in range(6)]
    for rate_point in codec.default_rate_points:
        estimated = actual = 0.0
        for image in images:
            data, stats = codec.encode_with_stats(image, rate_point)
            estimated += stats["estimated_bits"]
            actual += 8 * codec.payload_bytes(data)
        assert abs(actual - estimated) <= 0.03 * estimated + 64 * len(images), (rate_point, actual, estimated)


# ---------------------------------------------------------------------------------------------- contract
@pytest.fixture(scope="module")
def codec(color_codec) -> IntegerHyperpriorCodec:
    return color_codec


globals().update(contract.contract_for_configured_codecs())


# ---------------------------------------------------------------------------------------------- training
SYNTHETIC = {"size": [32, 32], "count": {"train": 192, "val": 64, "test": 16}, "classes": ["neutral", "happy"]}
TINY_TRAINING = {"N": 16, "M": 16, "Nz": 8, "stages": 2, "batch_size": 8, "lr": 2.0e-3, "log_every": 10,
                 "save_every": 10, "val_images": 64}


def _training_config(folder: Path, name: str, steps: int) -> Path:
    import yaml

    raw = {"train_codec": {"codec": "integer-hyperprior", "mode": "rd", "rate_points": [0.0005, 0.5],
                           "out": str(folder / name), "options": {**TINY_TRAINING, "steps": steps}},
           "dataset": {"name": "synthetic-faces", "split": "train", "options": SYNTHETIC}, "val_split": "val",
           "seed": 0}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(path: Path, store: Path, log=None, state_dir: Path | None = None) -> dict:
    from taskcodec.codec_training_config import train_codec
    from taskcodec.pluginmanager import get_plugin_manager

    return train_codec(path, get_plugin_manager(), store, progress=False, log=log or (lambda m: None),
                       state_dir=state_dir)


def test_one_training_writes_one_checkpoint_for_all_rate_points_and_skips_when_done(tmp_path) -> None:
    facts = _train(_training_config(tmp_path, "rd", 60), tmp_path / "store")
    assert facts["trained"] == [str(tmp_path / "rd" / "model.pt")] * 2
    document = models.load_checkpoint(tmp_path / "rd" / "model.pt")
    assert document["lambdas"] == [0.0005, 0.5] and document["training"]["steps"] == 60
    low, high = (document["validation"][k] for k in ("0.0005", "0.5"))
    assert high["estimated_bpp"] > 1.5 * low["estimated_bpp"]  # the gains separate the rate points
    codec = IntegerHyperpriorCodec(models=str(tmp_path / "rd"))
    image = natural_image(32, 32, color=False)
    assert len(codec.encode(image, 0.5)) > len(codec.encode(image, 0.0005))
    again = _train(_training_config(tmp_path, "rd", 60), tmp_path / "store")
    assert not again["trained"] and len(again["skipped"]) == 2


def test_a_fine_tune_from_a_checkpoint_may_add_rate_points_but_not_drop_them(tmp_path) -> None:
    import yaml

    _train(_training_config(tmp_path, "rd", 20), tmp_path / "store")
    path = _training_config(tmp_path, "more", 10)
    raw = yaml.safe_load(path.read_text())
    raw["train_codec"]["options"]["init"] = str(tmp_path / "rd" / "model.pt")
    raw["train_codec"]["rate_points"] = [0.0005, 0.02, 0.5, 2.0]
    path.write_text(yaml.safe_dump(raw))
    _train(path, tmp_path / "store")
    document = models.load_checkpoint(tmp_path / "more" / "model.pt")
    assert document["lambdas"] == [0.0005, 0.02, 0.5, 2.0]
    assert document["init"]["digest"] == models.load_checkpoint(tmp_path / "rd" / "model.pt")["digest"]
    bpp = [document["validation"][f"{v:g}"]["estimated_bpp"] for v in document["lambdas"]]
    assert bpp == sorted(bpp)  # the added points fall in line
    raw["train_codec"]["rate_points"] = [0.02, 0.5]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CodecError, match=r"must include them all"):
        _train(path, tmp_path / "store")


def test_interrupted_training_resumes_to_the_same_model(tmp_path) -> None:
    _train(_training_config(tmp_path, "whole", 30), tmp_path / "store-a")

    class Stop(Exception):
        pass

    def stop_at_20(message: str) -> None:
        if "step 20/30" in message:
            raise Stop  # logged before step 20's save: the saved state is step 10's

    parts = _training_config(tmp_path, "parts", 30)
    with pytest.raises(Stop):
        _train(parts, tmp_path / "store-b", log=stop_at_20)
    messages: list[str] = []
    _train(parts, tmp_path / "store-b", log=messages.append)
    assert any("resuming at step 10" in m for m in messages)
    whole = models.load_checkpoint(tmp_path / "whole" / "model.pt")
    resumed = models.load_checkpoint(tmp_path / "parts" / "model.pt")
    assert whole["digest"] == resumed["digest"]
    # the state in a folder of its own (committed, say): another store, as on another machine, continues it
    moved = _training_config(tmp_path, "moved", 30)
    with pytest.raises(Stop):
        _train(moved, tmp_path / "store-c", log=stop_at_20, state_dir=tmp_path / "state")
    assert list((tmp_path / "state").glob("*.state.pt"))
    messages.clear()
    _train(moved, tmp_path / "store-d", log=messages.append, state_dir=tmp_path / "state")
    assert any("resuming at step 10" in m for m in messages)
    assert models.load_checkpoint(tmp_path / "moved" / "model.pt")["digest"] == whole["digest"]
    assert not list((tmp_path / "state").glob("*.state.pt"))  # done: the state is removed
