"""The `compnet-png` codec and its models: stream header, errors, sizes and channels, fresh-process
decoding, rates, checkpoints, a short training, the rate proxy, and the codec contract run on
configured instances (the contract test skips it: it needs options).

Everything uses generated images and small UNTRAINED stand-ins or models trained here for ~100
steps on 32x32 smooth images; one torch thread.
"""
from __future__ import annotations

import json
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
from taskcodec_plugins.codecs.compnet_png import codec as compnet_codec
from taskcodec_plugins.codecs.compnet_png import models as compnet_models
from taskcodec_plugins.codecs.trained import bitstream
from taskcodec_plugins.codecs.trained import model_folder
from taskcodec_plugins.codecs.compnet_png.codec import CompNetPngCodec
from tests.contract import test_codec_contract as contract
from tests.helpers import REPO, write_images
from tests.helpers import natural_image


@pytest.fixture(scope="module")
def stand_in() -> CompNetPngCodec:
    return CompNetPngCodec(untrained_seed=1)


def _tensor(image: np.ndarray):
    import torch

    x = torch.from_numpy(image.astype(np.float32) / 255.0)
    return (x.permute(2, 0, 1) if image.ndim == 3 else x[None])[None]


def smooth_images(n: int, size: int = 32, seed: int = 0):
    """``n`` smooth random RGB images in [0, 1] (bicubic upsampling of 4x4 noise), N x 3 x size x size."""
    import torch
    import torch.nn.functional as F

    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def save_stand_in(path: Path, arch: compnet_models.CompNetArch, seed: int = 1, mode: str = "untrained", **meta) -> str:
    return compnet_models.save_checkpoint(path, compnet_models.untrained_compnet(arch, seed), mode=mode, seed=seed, **meta)


# ---------------------------------------------------------------------------------------------- header
@pytest.mark.parametrize("rgb,size", [(True, (37, 53)), (False, (1, 1)), (True, (65535, 65535)), (False, (128, 300))])
def test_header_round_trip(rgb: bool, size: tuple[int, int]) -> None:
    png = bytes(__import__("imagecodecs").png_encode(np.arange(12, dtype=np.uint8).reshape(3, 4), level=9))
    header = compnet_codec.StreamHeader(bytes(range(3, 11)), rgb, *size)
    data = compnet_codec.pack_stream(header, png)
    assert compnet_codec.unpack_stream(data) == (header, png)
    varints = len(bitstream.write_varint(size[0])) + len(bitstream.write_varint(size[1]))
    assert compnet_codec.stream_layout(data) == bitstream.Layout(13 + varints + 4, len(png))
    assert data[:4] == b"CNP\x01" and data[4:12] == bytes(range(3, 11)) and data[12] == int(rgb)


@pytest.mark.parametrize("bad", [dict(model_id=b"short"), dict(height=0), dict(width=65536)])
def test_pack_rejects_out_of_range_fields(bad) -> None:
    fields = dict(model_id=b"\0" * 8, rgb=True, height=8, width=8)
    with pytest.raises(ValueError):
        compnet_codec.pack_stream(compnet_codec.StreamHeader(**{**fields, **bad}), b"png")


# ---------------------------------------------------------------------------------------------- errors
def test_truncated_and_corrupted_streams_raise(stand_in) -> None:
    codec = stand_in
    data = codec.encode(natural_image(37, 53, color=True, seed=5), codec.default_rate_points[0])
    codec.decode(data)
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut])
    with pytest.raises(CodecError, match="truncated"):
        codec.decode(data[:-1])
    with pytest.raises(CodecError, match="trailing"):
        codec.decode(data + b"\0")
    for position in range(len(data)):
        for mask in (0x01, 0xFF):
            corrupt = bytearray(data)
            corrupt[position] ^= mask
            with pytest.raises(CodecError):
                codec.decode(bytes(corrupt))
    start = compnet_codec.stream_layout(data).header
    corrupt = bytearray(data)
    corrupt[start + 45] ^= 0x10  # inside the PNG's IDAT data
    with pytest.raises(CodecError, match="CRC"):
        codec.decode(bytes(corrupt))
    with pytest.raises(CodecError, match="magic"):
        codec.decode(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(CodecError, match="version"):
        codec.decode(data[:3] + b"\x02" + data[4:])
    with pytest.raises(CodecError, match="flags"):
        codec.decode(data[:12] + b"\x03" + data[13:])
    with pytest.raises(CodecError):
        codec.payload_bytes(data[:-3])


def test_inconsistent_streams_are_refused(stand_in) -> None:
    import imagecodecs

    codec = stand_in
    header, png = compnet_codec.unpack_stream(codec.encode(natural_image(37, 53, seed=2), 0.75))
    with pytest.raises(CodecError, match="inconsistent stream: the PNG holds"):
        codec.decode(compnet_codec.pack_stream(header._replace(height=60), png))  # another latent size
    symbols = imagecodecs.png_decode(png)
    with pytest.raises(CodecError, match="outside the model's 8 levels"):
        codec.decode(compnet_codec.pack_stream(header, imagecodecs.png_encode(np.full_like(symbols, 9))))
    with pytest.raises(CodecError, match="not one of this codec's models"):
        codec.decode(compnet_codec.pack_stream(header._replace(model_id=b"\1" * 8), png))
    other = CompNetPngCodec(untrained_seed=2)
    with pytest.raises(CodecError, match="not one of this codec's models"):
        codec.decode(other.encode(natural_image(20, 20, seed=1), 0.25))


# ---------------------------------------------------------------------------------------------- sizes and channels
@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (53, 37, 3), (65, 70, 3), (64, 64, 3), (3, 130)])
def test_any_size(stand_in, shape: tuple[int, ...]) -> None:
    import imagecodecs

    image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=4)
    data = stand_in.encode(image, 2.0)
    decoded = stand_in.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    header, png = compnet_codec.unpack_stream(data)
    assert (header.height, header.width, header.rgb) == (*shape[:2], len(shape) == 3)
    h, w = (-(-side // 4) for side in shape[:2])  # padded to a multiple of 4, then downsampled 4x
    assert imagecodecs.png_decode(png).shape == (8 * h, w)  # 8 channels stacked vertically
    assert stand_in.payload_bytes(data) == len(png) and len(data) - len(png) <= 23


def test_gray_and_rgb(stand_in) -> None:
    gray = natural_image(40, 30, color=False, seed=8)
    assert stand_in.decode(stand_in.encode(gray, 0.75)).shape == (40, 30)
    # a gray image on a 3-channel model is coded as its replication to RGB, plus the gray flag
    as_gray = compnet_codec.unpack_stream(stand_in.encode(gray, 0.75))
    as_rgb = compnet_codec.unpack_stream(stand_in.encode(np.repeat(gray[:, :, None], 3, axis=2), 0.75))
    assert as_gray[1] == as_rgb[1] and not as_gray[0].rgb and as_rgb[0].rgb
    rgb_decoded = stand_in.decode(stand_in.encode(np.repeat(gray[:, :, None], 3, axis=2), 0.75))
    expected = np.round(rgb_decoded.astype(np.float64).mean(axis=2))
    assert np.abs(stand_in.decode(stand_in.encode(gray, 0.75)).astype(np.float64) - expected).max() <= 1

    gray_model = CompNetPngCodec(untrained_seed=1, in_channels=1)
    data = gray_model.encode(gray, 0.25)
    assert gray_model.decode(data).shape == (40, 30)
    with pytest.raises(CodecError, match="1-channel"):
        gray_model.encode(natural_image(40, 30, color=True), 0.25)
    header, png = compnet_codec.unpack_stream(data)
    with pytest.raises(CodecError, match="RGB image from a 1-channel model"):
        gray_model.decode(compnet_codec.pack_stream(header._replace(rgb=True), png))


# ---------------------------------------------------------------------------------------------- fresh process
FRESH_DECODER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    from taskcodec_plugins.codecs.compnet_png.codec import CompNetPngCodec
    jobs = json.loads(open(sys.argv[1]).read())
    out = {str(i): CompNetPngCodec(**options).decode(open(stream, "rb").read())
           for i, (options, stream) in enumerate(jobs)}
    np.savez(sys.argv[1] + ".npz", **out)
    """
)


def test_decode_in_a_fresh_process_is_bit_exact(stand_in, tmp_path) -> None:
    """Streams decode to the encoder's reconstruction, in this process and in a new one with another
    thread count, from stand-ins and from a checkpoint folder."""
    import torch

    save_stand_in(tmp_path / "models" / "gray.pt", compnet_models.CompNetArch(4, 16, 8, 1, 16), seed=5)
    codecs = [stand_in, CompNetPngCodec(models=str(tmp_path / "models"))]
    jobs, expected = [], []
    for c, codec in enumerate(codecs):
        for shape in ((37, 53, 3), (64, 64), (70, 45, 3), (45, 70)):
            entry = codec.entries()[-1]
            if entry.arch.in_channels == 1 and len(shape) == 3:
                continue
            image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=c)
            data, _ = codec.encode_with_stats(image, entry.rate_point)
            decoded = codec.decode(data)
            # the encoder's own reconstruction: decoder(encoder(padded image)), cropped, to uint8
            model = model_folder._MODELS[(entry.digest, "cpu")]
            x = torch.nn.functional.pad(_tensor(image), (0, -shape[1] % entry.arch.downsampling, 0,
                                                         -shape[0] % entry.arch.downsampling), mode="replicate")
            if x.shape[1] != entry.arch.in_channels:
                x = x.expand(-1, entry.arch.in_channels, -1, -1)
            x_hat = model.decode_symbols(model.encode_symbols(x[0]))[:, : shape[0], : shape[1]]
            if len(shape) == 2:
                x_hat = x_hat.mean(dim=0) if x_hat.shape[0] == 3 else x_hat[0]
            reference = x_hat.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
            np.testing.assert_array_equal(decoded, reference.transpose(1, 2, 0) if len(shape) == 3 else reference)
            path = tmp_path / f"{len(jobs)}.bin"
            path.write_bytes(data)
            jobs.append((codec.options(), str(path)))
            expected.append(decoded)
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    threads = 2 if torch.get_num_threads() == 1 else 1
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    run = subprocess.run([sys.executable, "-c", FRESH_DECODER, str(tmp_path / "jobs.json"), str(threads)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    fresh = np.load(tmp_path / "jobs.json.npz")
    assert len(fresh.files) == len(expected) == 6
    for i, reference in enumerate(expected):
        np.testing.assert_array_equal(fresh[str(i)], reference, err_msg=f"stream {i}: {jobs[i]}")


def test_pickled_codec_decodes_without_weights_in_the_pickle(stand_in, monkeypatch) -> None:
    data = stand_in.encode(natural_image(30, 40, seed=3), 4.0)
    expected = stand_in.decode(data)
    blob = pickle.dumps(stand_in)
    assert len(blob) < 8000
    monkeypatch.setattr(model_folder, "_MODELS", type(model_folder._MODELS)())  # as in a fresh worker
    np.testing.assert_array_equal(pickle.loads(blob).decode(data), expected)


# ---------------------------------------------------------------------------------------------- rates
def test_rate_is_the_bytes_written(tmp_path) -> None:
    """The benchmark's bpp is 8 * len(stream) / pixels; payload is the PNG; estimated_bpp the proxy."""
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import PluginManager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    plugins = PluginManager()
    folder = write_images(tmp_path / "images", count=3, size=(40, 56))
    options = {"untrained_seed": 0, "width": 16}
    raw = {"benchmark": "compnet", "dataset": {"name": "image-dir", "root": str(folder)}, "metrics": ["psnr"],
           "codecs": [{"name": "compnet-png", "rate_points": [0.25, 2.0], "options": options}],
           "runner": {"workers": 1}}
    cfg = parse_config(raw, "compnet.yaml", plugins.registry)
    rows = pd.DataFrame(Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run().rows)
    rows = rows[rows.codec == "compnet-png"].sort_values("rate_point")
    codec = CompNetPngCodec(**options)
    from PIL import Image

    images = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    for rate_point, row in zip((0.25, 2.0), rows.itertuples()):
        streams = [codec.encode(image, rate_point) for image in images]
        assert row.bpp == pytest.approx(np.mean([8 * len(s) / (40 * 56) for s in streams]), rel=1e-12)
        assert row.payload_bpp == pytest.approx(np.mean([8 * codec.payload_bytes(s) / (40 * 56) for s in streams]))
        assert row.estimated_bpp > 0 and row.payload_bpp < row.bpp
    assert rows.bpp.is_monotonic_increasing


def test_estimated_bits_are_the_models_proxy(stand_in) -> None:
    import torch

    image = natural_image(48, 64, color=True, seed=9)
    for entry in stand_in.entries():
        data, stats = stand_in.encode_with_stats(image, entry.rate_point)
        assert data == stand_in.encode(image, entry.rate_point) and set(stats) == {"estimated_bits"}
        model = model_folder._MODELS[(entry.digest, "cpu")]
        symbols = torch.from_numpy(model.encode_symbols(_tensor(image))).float()
        assert stats["estimated_bits"] == pytest.approx(float(model.rate_bits(symbols)[0]), rel=1e-6)


def test_rate_grows_with_the_rate_point(stand_in) -> None:
    image = natural_image(96, 112, color=True, seed=3)
    sizes = [len(stand_in.encode(image, s)) for s in stand_in.default_rate_points]
    assert sizes == sorted(sizes) and sizes[-1] > 2 * sizes[0], sizes


# ---------------------------------------------------------------------------------------------- models
def test_nominal_bpp_and_architecture() -> None:
    assert compnet_models.nominal_bpp(8, 16, 4) == 2.0 and compnet_models.nominal_bpp(2, 4, 4, in_channels=1) == 0.25
    assert compnet_models.CompNetArch(8, 16, 4).nominal_bpp == 2.0
    model = compnet_models.build_compnet(8, 16, 4)
    assert model.downsampling == 4 and model.training
    assert compnet_models.stage_widths(32, 16) == (16, 16, 16, 32) and compnet_models.stage_widths(64, 4) == (32, 64)
    for bad in (dict(levels=1), dict(levels=257), dict(downsampling=3), dict(in_channels=2), dict(channels=0)):
        with pytest.raises(ValueError):
            compnet_models.build_compnet(**{**dict(channels=8, levels=16, downsampling=4), **bad})


def test_forward_shapes_quantisation_and_gradients() -> None:
    import torch

    model = compnet_models.build_compnet(4, 8, 4, width=16)
    x = smooth_images(2, size=32)
    out = model(x)
    assert out["x_hat"].shape == x.shape and out["rate_bits"].shape == (2,)
    assert out["symbols"].shape == (2, 4, 8, 8) and set(out["likelihoods"]) == {"r"}
    symbols = out["symbols"].detach()
    assert torch.equal(symbols, symbols.round()) and 0 <= symbols.min() and symbols.max() <= 7
    assert torch.allclose(out["rate_bits"], -torch.log2(out["likelihoods"]["r"]).flatten(1).sum(1))
    (out["rate_bits"].mean() + out["x_hat"].square().mean()).backward()
    first = model.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0  # straight-through: the rate and MSE reach the encoder
    aux = model.aux_loss()
    aux.backward()
    assert model.entropy_bottleneck.quantiles.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert torch.equal(out["symbols"], torch.from_numpy(model.encode_symbols(x)).float())
    assert torch.equal(out["x_hat"], model.decode_symbols(model.encode_symbols(x)))
    assert 0 <= out["x_hat"].min() and out["x_hat"].max() <= 1
    one = model.encode_symbols(x[0])
    assert one.shape == (4, 8, 8) and model.decode_symbols(one).shape == (3, 32, 32)
    clone = pickle.loads(pickle.dumps(model))  # the lazily defined class pickles by name
    assert torch.equal(clone.decode_symbols(model.encode_symbols(x)), out["x_hat"])


def test_plugin_import_stays_light() -> None:
    code = ("import sys, taskcodec_plugins.codecs.compnet_png.codec, taskcodec_plugins.codecs.compnet_png.models; "
            "print(sorted(m for m in ('torch', 'compressai', 'torchvision', 'imagecodecs') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr + out.stdout


# ---------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_save_load_and_digest(tmp_path) -> None:
    import torch

    arch = compnet_models.CompNetArch(4, 16, 4, 3, 16)
    model = compnet_models.untrained_compnet(arch, seed=3)
    digest = compnet_models.save_checkpoint(tmp_path / "m.pt", model, mode="rd", seed=3, lmbda=0.01, data={"images": 10})
    document = compnet_models.load_checkpoint(tmp_path / "m.pt")
    assert document["digest"] == digest == compnet_models.model_digest(model) and len(digest) == 64
    assert document["setting"] == 1.0 and document["lmbda"] == 0.01 and document["data"] == {"images": 10}
    assert compnet_models.checkpoint_arch(document) == arch and document["format"] == "taskcodec-compnet"
    loaded = compnet_models.model_from_checkpoint(document)
    x = smooth_images(2, size=32)
    model.eval()
    assert torch.equal(loaded.decode_symbols(loaded.encode_symbols(x)), model.decode_symbols(model.encode_symbols(x)))
    model.update(force=True)  # CompressAI's derived tables: not part of the identity
    assert compnet_models.save_checkpoint(tmp_path / "updated.pt", model, mode="rd", seed=3) == digest
    assert compnet_models.model_from_checkpoint(compnet_models.load_checkpoint(tmp_path / "updated.pt")) is not None
    with pytest.raises(ValueError, match="reserved"):
        compnet_models.save_checkpoint(tmp_path / "x.pt", model, mode="rd", seed=3, setting=2.0)
    with pytest.raises(compnet_models.CheckpointError, match="mode"):
        compnet_models.save_checkpoint(tmp_path / "x.pt", model, mode="best", seed=3)
    assert not (tmp_path / "x.pt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "updated.pt"]


def test_bad_checkpoints_raise(tmp_path) -> None:
    import torch

    save_stand_in(tmp_path / "m.pt", compnet_models.CompNetArch(4, 16, 4, 3, 16))
    document = torch.load(tmp_path / "m.pt", weights_only=True)
    tampered = {**document, "state_dict": {**document["state_dict"]}}
    tampered["state_dict"]["encoder.0.bias"] = tampered["state_dict"]["encoder.0.bias"] + 1
    torch.save(tampered, tmp_path / "tampered.pt")
    with pytest.raises(compnet_models.CheckpointError, match="tampered.pt: the weights do not match the digest"):
        compnet_models.load_checkpoint(tmp_path / "tampered.pt")
    torch.save({**document, "digest": None}, tmp_path / "nodigest.pt")
    with pytest.raises(compnet_models.CheckpointError, match="do not match the digest"):
        compnet_models.load_checkpoint(tmp_path / "nodigest.pt")
    torch.save({**document, "setting": 2.0}, tmp_path / "rate_point.pt")
    with pytest.raises(compnet_models.CheckpointError, match="not the architecture's nominal bpp 1"):
        compnet_models.load_checkpoint(tmp_path / "rate_point.pt")
    torch.save({**document, "format_version": 2}, tmp_path / "v2.pt")
    with pytest.raises(compnet_models.CheckpointError, match="format version 2"):
        compnet_models.load_checkpoint(tmp_path / "v2.pt")
    torch.save({**document, "levels": 1}, tmp_path / "levels.pt")
    with pytest.raises(compnet_models.CheckpointError, match="levels=1"):
        compnet_models.load_checkpoint(tmp_path / "levels.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(compnet_models.CheckpointError, match="junk.pt: not a readable checkpoint"):
        compnet_models.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "taskcodec-learned-codec"}, tmp_path / "learned.pt")
    with pytest.raises(compnet_models.CheckpointError, match="not a compnet checkpoint"):
        compnet_models.load_checkpoint(tmp_path / "learned.pt")


def test_checkpoint_folders(tmp_path) -> None:
    for c, l in ((2, 4), (4, 16)):
        save_stand_in(tmp_path / "a" / f"c{c}-l{l}.pt", compnet_models.CompNetArch(c, l, 4, 3, 16))
    codec = CompNetPngCodec(models=str(tmp_path / "a"))
    assert codec.default_rate_points == (0.25, 1.0) and codec.validate_rate_point(1) == 1.0
    with pytest.raises(CodecError, match=r"nominal_bpp must be one of the available rate points \[0.25, 1\]"):
        codec.validate_rate_point(2.0)
    identity = codec.identity()
    assert identity["untrained"] is True and "models" not in identity["options"]
    assert [(m["nominal_bpp"], m["channels"], m["levels"]) for m in identity["models"]] == [(0.25, 2, 4), (1.0, 4, 16)]
    # the same weights as the stand-ins: the same bytes
    stand_in = CompNetPngCodec(untrained_seed=1, width=16, untrained_rate_points=[[2, 4], [4, 16]])
    image = natural_image(37, 53, color=True, seed=1)
    assert codec.encode(image, 1.0) == stand_in.encode(image, 1.0)
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    assert CompNetPngCodec(models=str(tmp_path / "moved")).identity() == identity
    save_stand_in(tmp_path / "rd" / "m.pt", compnet_models.CompNetArch(2, 4, 4, 3, 16), mode="rd")
    assert CompNetPngCodec(models=str(tmp_path / "rd")).identity()["untrained"] is False

    save_stand_in(tmp_path / "a" / "c16-l2.pt", compnet_models.CompNetArch(16, 2, 4, 3, 16))  # also 1 nominal bpp
    with pytest.raises(CodecError, match="two models for nominal bpp 1 in"):
        CompNetPngCodec(models=str(tmp_path / "a"))
    with pytest.raises(CodecError, match="downsampling=4, the options say downsampling=8"):
        CompNetPngCodec(models=str(tmp_path / "rd"), downsampling=8)
    with pytest.raises(CodecError, match="is not a folder"):
        CompNetPngCodec(models=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CodecError, match="no checkpoint"):
        CompNetPngCodec(models=str(tmp_path / "empty"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.pt").write_bytes(b"junk")
    with pytest.raises(CodecError, match="compnet-png.*x.pt: not a readable checkpoint"):
        CompNetPngCodec(models=str(tmp_path / "junk"))


def test_checkpoint_changed_after_configuration_is_refused(tmp_path, monkeypatch) -> None:
    save_stand_in(tmp_path / "m.pt", compnet_models.CompNetArch(2, 4, 4, 3, 16), seed=1)
    codec = CompNetPngCodec(models=str(tmp_path))
    save_stand_in(tmp_path / "m.pt", compnet_models.CompNetArch(2, 4, 4, 3, 16), seed=2)
    monkeypatch.setattr(model_folder, "_MODELS", type(model_folder._MODELS)())
    with pytest.raises(CodecError, match="changed since the codec was configured"):
        codec.encode(natural_image(16, 16, seed=0), 0.25)


def test_options_are_validated() -> None:
    with pytest.raises(CodecError, match="needs exactly one of the options models"):
        CompNetPngCodec()
    with pytest.raises(CodecError, match="needs exactly one"):
        CompNetPngCodec(models="x", untrained_seed=0)
    with pytest.raises(CodecError, match="unknown option"):
        CompNetPngCodec(untrained_seed=0, levels=4)
    with pytest.raises(CodecError, match="untrained_rate_points goes with untrained_seed"):
        CompNetPngCodec(models="x", untrained_rate_points=[[2, 4]])
    for bad in ([[2, 1]], [[0, 4]], [2, 4], [], [[2, 4, 1]]):
        with pytest.raises(CodecError, match="option 'untrained_rate_points' = "):
            CompNetPngCodec(untrained_seed=0, untrained_rate_points=bad)
    with pytest.raises(CodecError, match="two models for nominal bpp 1 in untrained_rate_points"):
        CompNetPngCodec(untrained_seed=0, untrained_rate_points=[[4, 16], [16, 2]])
    with pytest.raises(CodecError, match="option 'downsampling' = "):
        CompNetPngCodec(untrained_seed=0, downsampling=3)
    codec = CompNetPngCodec(untrained_seed=0, untrained_rate_points=[(8, 16), [2, 4]], downsampling=8)
    assert codec.default_rate_points == (0.0625, 0.5)
    assert CompNetPngCodec(**codec.options()).options() == codec.options()
    assert codec.identity()["untrained"] is True and "untrained" in CompNetPngCodec.description


# ---------------------------------------------------------------------------------------------- training
def _train(arch: compnet_models.CompNetArch, steps: int = 100, lam: float = 0.05, seed: int = 0):
    """A generic CompressAI-style loop: loss = rate_bits / pixels + lam * 255^2 * MSE, plus the aux loss."""
    import torch
    import torch.nn.functional as F

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = compnet_models.build_compnet(*arch)
        main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
        opt = torch.optim.Adam(main, lr=1e-3)
        aux_opt = torch.optim.Adam([model.entropy_bottleneck.quantiles], lr=1e-2)
        data = smooth_images(128, seed=seed)
        losses = []
        for _ in range(steps):
            x = data[torch.randint(0, len(data), (8,))]
            out = model(x)
            loss = out["rate_bits"].mean() / x[0, 0].numel() + lam * 255**2 * F.mse_loss(out["x_hat"], x)
            opt.zero_grad()
            aux_opt.zero_grad()
            loss.backward()
            opt.step()
            model.aux_loss().backward()
            aux_opt.step()
            losses.append(float(loss.detach()))
    return model.eval(), losses


@pytest.fixture(scope="module")
def trained() -> dict[int, tuple]:
    """Three small models (4 channels, downsampling 4, width 16) trained 100 steps, at 4, 16 and 64 levels."""
    return {levels: _train(compnet_models.CompNetArch(4, levels, 4, 3, 16)) for levels in (4, 16, 64)}


def test_short_training_lowers_the_loss(trained) -> None:
    for levels, (_, losses) in trained.items():
        first, last = np.mean(losses[:10]), np.mean(losses[-10:])
        assert last < 0.5 * first, (levels, first, last)


def test_rate_proxy_tracks_png(trained) -> None:
    """On trained models the proxy and the PNG bytes grow with the levels, and the proxy is within a
    small factor of PNG's payload (the symbols of 16 test images in one PNG, so that PNG's ~60
    bytes of container do not dominate)."""
    import imagecodecs
    import torch

    x = smooth_images(16, seed=99)
    proxies, pngs = [], []
    for levels, (model, _) in sorted(trained.items()):
        symbols = model.encode_symbols(x)
        with torch.no_grad():
            proxies.append(float(model.rate_bits(torch.from_numpy(symbols).float()).sum()))
        stacked = symbols.reshape(-1, symbols.shape[-1])
        pngs.append(8 * len(imagecodecs.png_encode(stacked, level=compnet_codec.PNG_LEVEL)))
    assert proxies == sorted(proxies) and pngs == sorted(pngs), (proxies, pngs)
    for proxy, png in zip(proxies, pngs):
        assert 0.6 < proxy / png < 1.6, (proxies, pngs)


def test_trained_checkpoint_codes_in_the_codec(trained, tmp_path) -> None:
    model, _ = trained[16]
    compnet_models.save_checkpoint(tmp_path / "m.pt", model, mode="rd", seed=0, lmbda=0.05)
    codec = CompNetPngCodec(models=str(tmp_path))
    image = natural_image(32, 32, color=True, seed=1)
    decoded = codec.decode(codec.encode(image, 1.0))
    x_hat = model.decode_symbols(model.encode_symbols(_tensor(image)))
    np.testing.assert_array_equal(decoded, x_hat[0].mul(255).round().clamp(0, 255).byte().numpy().transpose(1, 2, 0))


# ---------------------------------------------------------------------------------------------- contract
# tests/contract/test_codec_contract.py skips `compnet-png` (needs_options); the same checks run here on configured
# instances, through this module's `codec` fixture (3-channel models: the contract codes RGB images).
@pytest.fixture(scope="module", params=[{}, {"downsampling": 8, "width": 16}], ids=["d4", "d8"])
def codec(request: pytest.FixtureRequest) -> CompNetPngCodec:
    return CompNetPngCodec(untrained_seed=0, **request.param)


globals().update(contract.contract_for_configured_codecs())
