"""The `learned` codec (CompressAI): bitstream, errors, sizes, fresh-process decoding, rates,
checkpoint folders, and the codec contract run on configured instances.

Everything here uses tiny UNTRAINED stand-ins (N, M of 16-24), a few seconds in all. The check
that the estimated rate matches the actual one within a few percent needs trained checkpoints:
point ``TASKCODEC_LEARNED_MODELS`` at a folder of them, otherwise it skips.
"""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskcodec import CodecError
from taskcodec_plugins.codecs.trained import bitstream
from taskcodec_plugins.codecs.learned import models as learned_models
from taskcodec_plugins.codecs.trained import model_folder
from taskcodec_plugins.codecs.learned.codec import LearnedCodec
from tests.contract import test_codec_contract as contract
from tests.helpers import REPO, committed_model_folders, natural_image, write_images

ARCHS = list(learned_models.ARCHITECTURES)
TINY = {"N": 16, "M": 24}
TRAINED_ENV = "TASKCODEC_LEARNED_MODELS"


@pytest.fixture(scope="module")
def tiny() -> dict[str, LearnedCodec]:
    """One untrained 3-channel codec per architecture."""
    return {arch: LearnedCodec(untrained_seed=1, arch=arch, **TINY) for arch in ARCHS}


# ---------------------------------------------------------------------------------------------- header
@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**28 - 1])
def test_varint_round_trip(value: int) -> None:
    data = bitstream.write_varint(value)
    assert len(data) == max(1, -(-value.bit_length() // 7))
    assert bitstream.read_varint(data + b"\x00", 0, "x") == (value, len(data))


def test_varint_rejects_truncated_and_overlong() -> None:
    with pytest.raises(bitstream.MalformedStream, match="truncated"):
        bitstream.read_varint(b"\x80", 0, "width")
    with pytest.raises(bitstream.MalformedStream, match="over-long"):
        bitstream.read_varint(b"\x81\x00", 0, "width")
    with pytest.raises(bitstream.MalformedStream, match="not a valid varint"):
        bitstream.read_varint(b"\xff" * 6, 0, "width")


@pytest.mark.parametrize("strings", [[b"y" * 5], [b"y" * 300, b"z" * 4], [b"", b"a", b"b" * 127, b"c" * 128]])
@pytest.mark.parametrize("rgb,zero,pad_log2,size", [(True, False, 6, (37, 53)), (False, True, 0, (1, 1)),
                                                    (True, True, 15, (65535, 65535))])
def test_header_round_trip(strings, rgb, zero, pad_log2, size) -> None:
    header = bitstream.StreamHeader(bytes(range(3, 11)), rgb, zero, pad_log2, *size, 7, 130)
    data = bitstream.pack(header, strings)
    assert bitstream.unpack(data) == (header, strings)
    layout = bitstream.layout(data)
    assert layout.payload == sum(map(len, strings)) and layout.header + layout.payload == len(data)


def test_header_layout_bytes() -> None:
    header = bitstream.StreamHeader(bytes.fromhex("0123456789abcdef"), True, False, 6, 48, 200, 1, 4)
    data = bitstream.pack(header, [b"Y" * 130, b"Z" * 9])
    assert data[:3] == b"LC\x01" and data[3:11] == bytes.fromhex("0123456789abcdef")
    assert data[11] == 0b01_0110_0_1  # 2 strings, log2 multiple 6, replicate padding, RGB
    assert data[12:19] == bytes([48, 0xC8, 0x01, 1, 4, 0x82, 0x01])  # H, W (2-byte varint), latent h, w, len y
    assert data[19] == 9  # len z
    assert bitstream.layout(data).header == 24 and data[24:] == b"Y" * 130 + b"Z" * 9
    assert header.padded_size == (64, 256)


@pytest.mark.parametrize("bad", [dict(model_id=b"short"), dict(pad_log2=16), dict(height=0), dict(width=65536)])
def test_pack_rejects_out_of_range_fields(bad) -> None:
    fields = dict(model_id=b"\0" * 8, rgb=True, zero_padding=False, pad_log2=6, height=8, width=8,
                  latent_height=1, latent_width=1)
    with pytest.raises(ValueError):
        bitstream.pack(bitstream.StreamHeader(**{**fields, **bad}), [b"x"])
    with pytest.raises(ValueError):
        bitstream.pack(bitstream.StreamHeader(**fields), [b"x"] * 5)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("arch", ARCHS)
def test_truncated_and_corrupted_streams_raise(tiny, arch: str) -> None:
    codec = tiny[arch]
    data = codec.encode(natural_image(37, 53, color=True, seed=5), codec.default_rate_points[0])
    codec.decode(data)
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut])
    with pytest.raises(CodecError, match="truncated"):
        codec.decode(data[:-1])
    with pytest.raises(CodecError, match="after the"):
        codec.decode(data + b"\0")
    for position in range(len(data)):
        for mask in (0x01, 0xFF):
            corrupt = bytearray(data)
            corrupt[position] ^= mask
            with pytest.raises(CodecError):
                codec.decode(bytes(corrupt))
    corrupt = bytearray(data)
    corrupt[-3] ^= 0x10  # inside the entropy-coded payload
    with pytest.raises(CodecError, match="CRC"):
        codec.decode(bytes(corrupt))
    with pytest.raises(CodecError, match="magic"):
        codec.decode(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(CodecError, match="version"):
        codec.decode(data[:2] + b"\x02" + data[3:])


def test_stream_of_another_model_is_refused(tiny) -> None:
    other = LearnedCodec(untrained_seed=2, arch="mbt2018-mean", **TINY)
    data = other.encode(natural_image(20, 20, seed=1), 0.0018)
    with pytest.raises(CodecError, match="not one of this codec's models"):
        tiny["mbt2018-mean"].decode(data)


def test_inconsistent_header_is_refused(tiny) -> None:
    codec = tiny["mbt2018-mean"]
    header, strings = bitstream.unpack(codec.encode(natural_image(37, 53, seed=2), 0.0035))
    for bad in (header._replace(latent_width=header.latent_width + 1), header._replace(pad_log2=4),
                header._replace(height=300)):
        with pytest.raises(CodecError, match="inconsistent stream"):
            codec.decode(bitstream.pack(bad, strings))
    with pytest.raises(CodecError, match="1 strings"):
        codec.decode(bitstream.pack(header, strings[:1]))


# ---------------------------------------------------------------------------------------------- sizes and channels
@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (53, 37, 3), (65, 70, 3), (64, 64, 3), (48, 48)])
@pytest.mark.parametrize("arch", ["bmshj2018-factorized", "mbt2018-mean"])
def test_any_size(tiny, arch: str, shape: tuple[int, ...]) -> None:
    codec = tiny[arch]
    image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=4)
    data = codec.encode(image, 0.0067)
    decoded = codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    header, strings = bitstream.unpack(data)
    multiple = learned_models.ARCHITECTURES[arch].downsampling
    assert header.pad_multiple == multiple and (header.height, header.width) == shape[:2]
    assert all(side % multiple == 0 and side - multiple < orig for side, orig in zip(header.padded_size, shape))
    assert codec.payload_bytes(data) == sum(map(len, strings))


def test_padding_options(tiny) -> None:
    image = natural_image(37, 53, color=True, seed=6)
    base = tiny["mbt2018-mean"]
    options = {**base.options(), "untrained_seed": 1}
    zero = LearnedCodec(**{**options, "padding": "zero"})
    wide = LearnedCodec(**{**options, "pad_multiple": 128})
    streams = {name: c.encode(image, 0.013) for name, c in (("base", base), ("zero", zero), ("wide", wide))}
    assert len(set(streams.values())) == 3  # the padded area is coded, so padding changes the bytes
    assert bitstream.unpack(streams["zero"])[0].zero_padding and not bitstream.unpack(streams["base"])[0].zero_padding
    assert bitstream.unpack(streams["wide"])[0].padded_size == (128, 128)
    for name, c in (("zero", zero), ("wide", wide)):
        assert c.decode(streams[name]).shape == image.shape
    assert base.identity() != zero.identity() != wide.identity()
    with pytest.raises(CodecError, match="not a multiple of 64"):
        LearnedCodec(**{**options, "pad_multiple": 32})
    with pytest.raises(CodecError, match="power of two"):
        LearnedCodec(**{**options, "pad_multiple": 96})


def test_gray_and_rgb(tiny) -> None:
    rgb_model = tiny["bmshj2018-hyperprior"]
    gray = natural_image(40, 30, color=False, seed=8)
    assert rgb_model.decode(rgb_model.encode(gray, 0.0035)).shape == (40, 30)
    # a gray image on a 3-channel model is coded as its replication to RGB, plus the gray flag
    as_gray = bitstream.unpack(rgb_model.encode(gray, 0.0035))
    as_rgb = bitstream.unpack(rgb_model.encode(np.repeat(gray[:, :, None], 3, axis=2), 0.0035))
    assert as_gray[1] == as_rgb[1] and not as_gray[0].rgb and as_rgb[0].rgb

    gray_model = LearnedCodec(untrained_seed=1, arch="mbt2018-mean", in_channels=1, **TINY)
    data = gray_model.encode(gray, 0.0018)
    assert gray_model.decode(data).shape == (40, 30)
    assert len(data) < len(rgb_model.encode(gray, 0.0018)) * 2
    with pytest.raises(CodecError, match="1-channel"):
        gray_model.encode(natural_image(40, 30, color=True), 0.0018)


# ---------------------------------------------------------------------------------------------- fresh process
FRESH_DECODER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    from taskcodec_plugins.codecs.learned.codec import LearnedCodec
    jobs = json.loads(open(sys.argv[1]).read())
    out = {}
    for i, (options, stream) in enumerate(jobs):
        out[str(i)] = LearnedCodec(**options).decode(open(stream, "rb").read())
    np.savez(sys.argv[1] + ".npz", **out)
    """
)


def test_decode_in_a_fresh_process_is_bit_exact(tiny, tmp_path) -> None:
    """Streams decode to the same pixels in a new process with another torch thread count."""
    import json

    import torch

    folder = tmp_path / "models"
    model = learned_models.untrained_model("mbt2018-mean", 16, 24, 1, seed=5, lmbda=0.0035)
    learned_models.save_checkpoint(folder / "a.pt", model, arch="mbt2018-mean", N=16, M=24, in_channels=1, lmbda=0.0035,
                       mode="untrained", seed=5)
    codecs = [*tiny.values(), LearnedCodec(models=str(folder))]
    jobs, expected = [], []
    for c, codec in enumerate(codecs):
        for shape in ((37, 53, 3), (64, 64), (70, 45, 3)):
            if codec.entries()[0].in_channels == 1 and len(shape) == 3:
                continue
            image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=c)
            rate_point = codec.default_rate_points[-1]
            data, _ = codec.encode_with_stats(image, rate_point)
            path = tmp_path / f"{len(jobs)}.bin"
            path.write_bytes(data)
            jobs.append((codec.options(), str(path)))
            expected.append(codec.decode(data))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    threads = 2 if torch.get_num_threads() == 1 else 1
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")  # no spinning on busy cores
    run = subprocess.run([sys.executable, "-c", FRESH_DECODER, str(tmp_path / "jobs.json"), str(threads)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    fresh = np.load(tmp_path / "jobs.json.npz")
    assert len(fresh.files) == len(expected) >= 10
    for i, reference in enumerate(expected):
        np.testing.assert_array_equal(fresh[str(i)], reference, err_msg=f"stream {i}: {jobs[i]}")


def test_pickled_codec_decodes_without_weights_in_the_pickle(tiny, monkeypatch) -> None:
    """Worker processes get the codec pickled (per chunk): weights are rebuilt there, never shipped."""
    codec = tiny["bmshj2018-hyperprior"]
    data = codec.encode(natural_image(30, 40, seed=3), 0.0067)
    expected = codec.decode(data)
    blob = pickle.dumps(codec)
    assert len(blob) < 8000
    monkeypatch.setattr(model_folder, "_MODELS", type(model_folder._MODELS)())  # as in a fresh worker
    np.testing.assert_array_equal(pickle.loads(blob).decode(data), expected)


# ---------------------------------------------------------------------------------------------- rates
@pytest.mark.parametrize("arch", ARCHS)
def test_estimated_rate_is_reported_beside_the_actual(tiny, arch: str) -> None:
    codec = tiny[arch]
    image = natural_image(64, 80, color=True, seed=9)
    for rate_point in codec.default_rate_points:
        data, stats = codec.encode_with_stats(image, rate_point)
        assert data == codec.encode(image, rate_point)  # the estimate does not touch the stream
        assert set(stats) == {"estimated_bits"}
        actual = 8 * codec.payload_bytes(data)
        # untrained models: only a sane relationship (trained: see the test below)
        assert actual > 0 and 0.5 < stats["estimated_bits"] / actual < 2, (rate_point, stats, actual)
        assert len(data) - codec.payload_bytes(data) <= 26  # the header


def _trained_folders() -> list[str]:
    """$TASKCODEC_LEARNED_MODELS, else the trained models committed with the leaderboards."""
    if os.environ.get(TRAINED_ENV):
        return [os.environ[TRAINED_ENV]]
    return committed_model_folders("learned-")


@pytest.mark.skipif(not _trained_folders(), reason=f"needs trained checkpoints: set {TRAINED_ENV}=FOLDER")
@pytest.mark.parametrize("folder", _trained_folders())
def test_estimated_rate_within_a_few_percent_on_trained_models(folder: str) -> None:
    """On trained models the entropy coder's payload matches the -log2 likelihoods within 3%, plus the
    rANS coder's constant cost of up to 8 bytes per string (its final state; an all-zero latent
    still takes 8 bytes), summed over 6 images per rate point."""
    codec = LearnedCodec(models=folder)
    for entry in codec.entries():
        color = entry.in_channels == 3
        images = [natural_image(128, 128, color=color, seed=s) for s in range(3)]
        images += [natural_image(96, 112, color=color, seed=s) for s in range(3)]
        estimated = actual = 0.0
        for image in images:
            data, stats = codec.encode_with_stats(image, entry.lmbda)
            estimated += stats["estimated_bits"]
            actual += 8 * codec.payload_bytes(data)
        flush = 64 * learned_models.ARCHITECTURES[entry.arch].strings * len(images)
        assert abs(actual - estimated) <= 0.03 * estimated + flush, (entry.lmbda, entry.path, actual, estimated)


def test_rate_grows_with_lambda(tiny) -> None:
    image = natural_image(96, 112, color=True, seed=3)
    for codec in tiny.values():
        sizes = [len(codec.encode(image, s)) for s in codec.default_rate_points]
        assert sizes == sorted(sizes) and sizes[-1] > sizes[0], sizes


# ---------------------------------------------------------------------------------------------- checkpoints
def _save_family(folder: Path, lambdas=(0.0018, 0.0035, 0.0067), seed: int = 1, arch: str = "mbt2018-mean",
                 mode: str = "untrained") -> None:
    for lmbda in lambdas:
        model = learned_models.untrained_model(arch, TINY["N"], TINY["M"], 3, seed, lmbda)
        learned_models.save_checkpoint(folder / f"{arch}-{lmbda}.pt", model, arch=arch, N=TINY["N"], M=TINY["M"], in_channels=3,
                           lmbda=lmbda, mode=mode, seed=seed, loss_weights={"alpha": 1.0})


def test_checkpoint_folder_rate_points_and_identity(tiny, tmp_path) -> None:
    _save_family(tmp_path / "a")
    codec = LearnedCodec(models=str(tmp_path / "a"))
    assert codec.default_rate_points == (0.0018, 0.0035, 0.0067)
    assert codec.validate_rate_point(0.0035) == 0.0035 and codec.validate_rate_point(3.5e-3 * (1 + 1e-9)) == 0.0035
    with pytest.raises(CodecError, match=r"\[0.0018, 0.0035, 0.0067\]"):
        codec.validate_rate_point(0.013)
    identity = codec.identity()
    assert "models" not in identity["options"] and identity["untrained"] is True  # mode "untrained" checkpoints
    assert [m["lambda"] for m in identity["models"]] == [0.0018, 0.0035, 0.0067]
    assert all(len(m["digest"]) == 64 for m in identity["models"])
    assert learned_models.load_checkpoint(tmp_path / "a" / "mbt2018-mean-0.0018.pt")["loss_weights"] == {"alpha": 1.0}
    # the same weights as the stand-ins: the same model ids and the same bytes
    image = natural_image(37, 53, color=True, seed=1)
    stand_in = tiny["mbt2018-mean"]
    assert codec.encode(image, 0.0035) == stand_in.encode(image, 0.0035)
    np.testing.assert_array_equal(codec.decode(stand_in.encode(image, 0.0035)), stand_in.decode(stand_in.encode(image, 0.0035)))
    # moving the folder keeps the identity (cache); other weights change it
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    assert LearnedCodec(models=str(tmp_path / "moved")).identity() == identity
    _save_family(tmp_path / "b", seed=2)
    assert LearnedCodec(models=str(tmp_path / "b")).identity() != identity
    _save_family(tmp_path / "rd", lambdas=(0.0018,), mode="rd")
    assert LearnedCodec(models=str(tmp_path / "rd")).identity()["untrained"] is False


def test_checkpoint_changed_after_configuration_is_refused(tmp_path, monkeypatch) -> None:
    _save_family(tmp_path / "a", lambdas=(0.0018,))
    codec = LearnedCodec(models=str(tmp_path / "a"))
    (tmp_path / "a" / "mbt2018-mean-0.0018.pt").unlink()
    _save_family(tmp_path / "a", lambdas=(0.0018,), seed=3)
    monkeypatch.setattr(model_folder, "_MODELS", type(model_folder._MODELS)())
    with pytest.raises(CodecError, match="changed since the codec was configured"):
        codec.encode(natural_image(16, 16, seed=0), 0.0018)


def test_bad_checkpoint_folders(tmp_path) -> None:
    import torch

    with pytest.raises(CodecError, match="is not a folder"):
        LearnedCodec(models=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CodecError, match="no checkpoint"):
        LearnedCodec(models=str(tmp_path / "empty"))
    _save_family(tmp_path / "dup", lambdas=(0.0018,))
    _save_family(tmp_path / "dup", lambdas=(0.0018,), arch="bmshj2018-hyperprior")
    with pytest.raises(CodecError, match="two models for lambda 0.0018"):
        LearnedCodec(models=str(tmp_path / "dup"))
    with pytest.raises(CodecError, match="arch='mbt2018-mean'"):
        LearnedCodec(models=str(tmp_path / "dup"), arch="mbt2018-mean")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CodecError, match="x.pt: not a readable checkpoint"):
        LearnedCodec(models=str(tmp_path / "junk"))
    (tmp_path / "meta").mkdir()
    torch.save({"format": "taskcodec-learned-codec", "format_version": 1, "arch": "nope", "N": 8, "M": 8,
                "in_channels": 2, "lambda": -1.0, "mode": "rd", "seed": 0, "state_dict": {}}, tmp_path / "meta" / "m.pt")
    with pytest.raises(CodecError, match="arch 'nope'.*in_channels=2.*lambda=-1.0"):
        LearnedCodec(models=str(tmp_path / "meta"))
    _save_family(tmp_path / "tampered", lambdas=(0.0018,))
    path = tmp_path / "tampered" / "mbt2018-mean-0.0018.pt"
    document = torch.load(path, weights_only=True)
    document["state_dict"]["g_a.0.bias"] += 1
    torch.save(document, path)
    with pytest.raises(CodecError, match="do not match the digest"):
        LearnedCodec(models=str(tmp_path / "tampered"))


def test_options_are_validated() -> None:
    with pytest.raises(CodecError, match="needs exactly one of the options models"):
        LearnedCodec()
    with pytest.raises(CodecError, match="needs exactly one"):
        LearnedCodec(models="x", untrained_seed=0)
    with pytest.raises(CodecError, match="unknown option"):
        LearnedCodec(untrained_seed=0, lmbda=1)
    with pytest.raises(CodecError, match="option 'arch' = "):
        LearnedCodec(untrained_seed=0, arch="mbt2018")
    with pytest.raises(CodecError, match="untrained_lambdas goes with untrained_seed"):
        LearnedCodec(models="x", untrained_lambdas=[0.1])
    with pytest.raises(CodecError, match="option 'untrained_lambdas' = "):
        LearnedCodec(untrained_seed=0, untrained_lambdas=[0.1, 0.1])
    codec = LearnedCodec(untrained_seed=0, untrained_lambdas=[0.02, 0.01], **TINY)
    assert codec.default_rate_points == (0.01, 0.02)
    assert LearnedCodec(**codec.options()).options() == codec.options()
    assert codec.identity()["untrained"] is True and "untrained" in LearnedCodec.description


def test_plugin_import_stays_light() -> None:
    code = ("import sys, taskcodec_plugins.codecs.learned.codec; "
            "print(sorted(m for m in ('torch', 'compressai', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr + out.stdout


# ---------------------------------------------------------------------------------------------- pipeline
def test_runner_records_estimated_rate(tmp_path) -> None:
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import PluginManager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    plugins = PluginManager()
    images = write_images(tmp_path / "images", count=3, size=(40, 56))
    raw = {"benchmark": "learned", "dataset": {"name": "image-dir", "root": str(images)}, "metrics": ["psnr"],
           "codecs": [{"name": "learned", "rate_points": [0.0018, 0.013],
                       "options": {"untrained_seed": 0, "arch": "bmshj2018-factorized", **TINY}}],
           "runner": {"workers": 1}}
    cfg = parse_config(raw, "learned.yaml", plugins.registry)
    rows = pd.DataFrame(Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run().rows)
    learned = rows[rows.codec == "learned"]
    assert len(learned) == 2 and (learned.estimated_bpp > 0).all()
    assert (learned.payload_bpp < learned.bpp).all() and learned.bpp.is_monotonic_increasing


# ---------------------------------------------------------------------------------------------- contract
# tests/contract/test_codec_contract.py skips `learned` (needs_options); the same checks run here on configured
# instances, through this module's `codec` fixture.
@pytest.fixture(scope="module", params=["bmshj2018-factorized", "mbt2018-mean"])
def codec(request: pytest.FixtureRequest) -> LearnedCodec:
    return LearnedCodec(untrained_seed=0, arch=request.param, **TINY)


globals().update(contract.contract_for_configured_codecs())


@pytest.mark.parametrize("arch", sorted(learned_models.ARCHITECTURES))
def test_rate_estimate_equals_the_eval_forward_pass(arch: str) -> None:
    """The estimate skips the synthesis transform but must be exactly the eval-mode forward's likelihoods."""
    import torch

    model = learned_models.prepare_for_coding(learned_models.untrained_model(arch, 16, 24, 3, 0, 0.01))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = [p.clone() for p in model(x)["likelihoods"].values()]
        fast = learned_models.likelihoods(model, x)
    assert len(full) == len(fast) and all(torch.equal(a, b) for a, b in zip(full, fast))
