"""MobileFaceNet and facenet tasks: strict loading, embeddings, outputs, errors; real weights (shared data)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from taskcodec import ConfigError, TaskContext, TaskcodecError
from taskcodec_plugins.tasks.face_embedders import base as face_embedder_base
from taskcodec_plugins.tasks.face_embedders.facenet import FaceNetTask
from taskcodec_plugins.tasks.face_embedders.mobilefacenet import MobileFaceNetTask, build_mobilefacenet, load_mobilefacenet
from tests.helpers import SHARED, natural_image, random_checkpoint

CHECKPOINT = SHARED / "models" / "mobilefacenet_casia_068.ckpt"


def context(tmp_path):
    return TaskContext(load_split=None, cache_dir=tmp_path, device="cpu", progress=False)


class Pairs:
    pairs = [(1, True, "a", "b"), (1, False, "a", "c"), (2, True, "c", "d"), (2, False, "b", "d")]


def test_architecture_matches_the_checkpoint_layout():
    state = build_mobilefacenet().state_dict()
    assert len(state) == 333
    assert tuple(state["conv1.conv.weight"].shape) == (64, 3, 3, 3)
    assert tuple(state["linear7.conv.weight"].shape) == (512, 1, 7, 6)
    assert tuple(state["linear1.conv.weight"].shape) == (128, 512, 1, 1)
    assert tuple(state["blocks.14.conv.7.running_var"].shape) == (128,)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 999552


def test_strict_loading_refuses_other_layouts(tmp_path):
    import torch

    path = random_checkpoint(tmp_path / "ok.ckpt")
    model, facts = load_mobilefacenet(path)
    assert facts["checkpoint_epoch"] == 1
    state = torch.load(path, weights_only=True)["net_state_dict"]
    del state["linear1.bn.weight"]
    torch.save({"net_state_dict": state}, tmp_path / "bad.ckpt")
    with pytest.raises(TaskcodecError, match="linear1.bn.weight"):
        load_mobilefacenet(tmp_path / "bad.ckpt")


def test_missing_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKCODEC_MOBILEFACENET", raising=False)
    with pytest.raises(TaskcodecError, match="TASKCODEC_MOBILEFACENET"):
        MobileFaceNetTask().prepare(Pairs(), context(tmp_path))
    monkeypatch.setenv("TASKCODEC_MOBILEFACENET", str(tmp_path / "nowhere.ckpt"))
    with pytest.raises(TaskcodecError, match="nowhere.ckpt does not exist"):
        MobileFaceNetTask().prepare(Pairs(), context(tmp_path))


def test_options_are_checked():
    with pytest.raises(ConfigError, match="unknown option"):
        MobileFaceNetTask(flipp=True)
    with pytest.raises(ConfigError, match="align_on_decoded"):
        MobileFaceNetTask(align_on_decoded="arcface")  # 112x112 crops for a 112x96 network
    with pytest.raises(ConfigError, match="pretrained"):
        FaceNetTask(pretrained="imagenet")


def test_embeddings_outputs_and_rows(tmp_path):
    task = MobileFaceNetTask(weights=str(random_checkpoint(tmp_path / "w.ckpt")), precision="fp32", batch_size=3)
    task.prepare(Pairs(), context(tmp_path))
    crops = [natural_image(112, 96, seed=i) for i in range(4)]
    emb = task.embed(np.stack(crops))
    assert emb.shape == (4, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    outputs = task.predict(crops)
    assert all(isinstance(o, str) and len(o) < 700 for o in outputs)
    assert np.allclose(face_embedder_base.decode_embedding(outputs[1]), emb[1], atol=2e-3)
    no_flip = MobileFaceNetTask(weights=str(tmp_path / "w.ckpt"), flip=False, precision="fp32")
    no_flip.prepare(Pairs(), context(tmp_path))
    assert no_flip.embed(np.stack(crops)).shape == (4, 128) and no_flip.fingerprint() != task.fingerprint()
    with pytest.raises(TaskcodecError, match="align: sphereface"):
        task.predict([natural_image(250, 250)])
    # rows: one per pair; a missing embedding makes the score NaN and flags the image
    by_id = dict(zip("abcd", outputs))
    by_id["d"] = None
    rows = task.sample_rows(Pairs(), by_id)
    assert [r["fold"] for r in rows] == [1, 1, 2, 2] and rows[0]["same"] == 1 and "clean_score" not in rows[0]
    assert rows[0]["score"] == pytest.approx(float(emb[0] @ emb[1]), abs=2e-3)
    assert math.isnan(rows[2]["score"]) and rows[2]["failed2"] == 1 and rows[0]["failed1"] == 0
    task.reference_outputs(Pairs(), dict(zip("abcd", outputs)))
    rows = task.sample_rows(Pairs(), by_id)
    assert rows[0]["clean_score"] == rows[0]["score"] and not math.isnan(rows[2]["clean_score"])


def test_facenet_without_weights_offline_names_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(TaskcodecError) as err:
        FaceNetTask(download=False).prepare(Pairs(), context(tmp_path))
    text = str(err.value)
    assert "20180402-114759-vggface2.pt" in text and str(tmp_path / "torch" / "checkpoints") in text
    # with download allowed, an unreachable network gives the same advice
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(TaskcodecError, match="cannot be downloaded") as err:
        FaceNetTask(pretrained="casia-webface").prepare(Pairs(), context(tmp_path))
    assert "20180408-102900-casia-webface.pt" in str(err.value) and "checkpoints" in str(err.value)


def test_facenet_with_a_weight_file_embeds(tmp_path, monkeypatch):
    import torch

    from taskcodec.torch_compat import ensure_torchvision

    ensure_torchvision()
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    state = InceptionResnetV1(pretrained=None).state_dict()
    state["logits.weight"] = torch.zeros(8631, 512)  # as in the released file: a classifier head, dropped
    state["logits.bias"] = torch.zeros(8631)
    folder = tmp_path / "torch" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / "20180402-114759-vggface2.pt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    task = FaceNetTask(download=False, precision="fp32")
    task.prepare(Pairs(), context(tmp_path))
    out = task.predict([natural_image(160, 160, seed=i) for i in range(2)])
    assert face_embedder_base.decode_embedding(out[0]).shape == (1024,)
    assert task.provenance()["weights_file"] == "20180402-114759-vggface2.pt"


# ------------------------------------------------------------------ real weights and images
LFW_IMAGES = Path(str(SHARED / "datasets" / "lfw" / "lfw-deepfunneled"))


@pytest.mark.shared_data
def test_real_checkpoint_loads_strictly_and_separates_people(tmp_path):
    if not CHECKPOINT.is_file():
        pytest.skip(f"needs {CHECKPOINT}")
    from taskcodec_plugins.faces.alignment import align
    from taskcodec_plugins.faces.detection import CentralFaceDetector, load_rgb

    names = ["Zico/Zico_0001", "Zico/Zico_0002", "Abel_Pacheco/Abel_Pacheco_0001"]
    images = [load_rgb(LFW_IMAGES / f"{n}.jpg") for n in names]
    crops = [align(im, rec, "sphereface") for im, rec in zip(images, CentralFaceDetector().detect(images))]
    task = MobileFaceNetTask(weights=str(CHECKPOINT))
    task.prepare(Pairs(), context(tmp_path))
    emb = task.embed(np.stack(crops))
    assert emb.shape == (3, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    import torch

    raw, _ = load_mobilefacenet(CHECKPOINT)  # the bare network: 128-d, normalisable
    with torch.inference_mode():
        x = (torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() - 127.5) / 128.0
        e = raw(x)
    assert e.shape == (3, 128) and bool((e.norm(dim=1) > 1e-3).all())
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2 and emb[0] @ emb[1] > emb[1] @ emb[2] + 0.2
    # compress-then-align: the task detects and aligns full frames itself
    cta = MobileFaceNetTask(weights=str(CHECKPOINT), align_on_decoded="sphereface")
    cta.prepare(Pairs(), context(tmp_path))
    out = cta.predict(images[:2] + [np.zeros((250, 250, 3), np.uint8)])
    assert out[2] is None and float(face_embedder_base.decode_embedding(out[0]) @ face_embedder_base.decode_embedding(out[1])) > 0.4


def test_folded_batchnorm_gives_the_same_embeddings(tmp_path):
    import torch

    from taskcodec_plugins.tasks.face_embedders.mobilefacenet import fold_batchnorm

    model, _ = load_mobilefacenet(random_checkpoint(tmp_path / "w.ckpt"))
    for name, buf in model.named_buffers():  # non-trivial batch-norm statistics
        if name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
        elif name.endswith("running_mean"):
            buf.normal_(0, 0.1)
    folded = fold_batchnorm(model)
    x = torch.randn(2, 3, 112, 96)
    with torch.inference_mode():
        assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())


def test_worker_processes_give_the_same_outputs(tmp_path):
    weights = str(random_checkpoint(tmp_path / "w.ckpt"))
    crops = [natural_image(112, 96, seed=i) for i in range(20)]
    local = MobileFaceNetTask(weights=weights, precision="fp32", workers=1)
    local.prepare(Pairs(), context(tmp_path))
    pooled = MobileFaceNetTask(weights=weights, precision="fp32", workers=2)
    pooled.prepare(Pairs(), context(tmp_path))
    try:
        a = np.stack([face_embedder_base.decode_embedding(o) for o in local.predict(crops)])
        b = np.stack([face_embedder_base.decode_embedding(o) for o in pooled.predict(crops)])
    finally:
        pooled.close()
    assert pooled.fingerprint() == local.fingerprint()
    assert np.allclose(a, b, atol=2e-3)


def test_batch_size_does_not_change_the_embeddings(tmp_path):
    weights = str(random_checkpoint(tmp_path / "w.ckpt"))
    crops = [natural_image(112, 96, seed=i) for i in range(40)]
    outputs = []
    for batch_size in (1, 7, None, 128):  # None: the default for the device (32 on the CPU)
        task = MobileFaceNetTask(weights=weights, precision="fp32", workers=1, batch_size=batch_size)
        task.prepare(Pairs(), context(tmp_path))
        outputs.append(np.stack([face_embedder_base.decode_embedding(o) for o in task.predict(crops)]))
    for other in outputs[1:]:
        assert np.allclose(outputs[0], other, atol=2e-3)  # float rounding at most (identical where measured)
