"""`taskcodec train` with expression-cnn: a tiny run that learns, checkpoint metadata, and resume after SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from taskcodec import TaskcodecError, TaskContext, TaskTrainingRequest
from taskcodec_plugins.tasks.expression_cnn import task as expression_task
from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

DATA = {"size": [48, 48], "count": {"train": 384, "val": 128, "test": 192}, "classes": ["neutral", "happy", "surprise"]}
RECIPE = {"arch": "compact", "width": 8, "epochs": 8, "batch_size": 32, "optimizer": "adamw", "lr": 4e-3, "warmup": 0.2,
          "shift": 2, "rotate": 5, "scale": 0.05, "erase": 0.1, "label_smoothing": 0.1, "select": "val"}


def write_config(folder: Path, checkpoint: Path) -> Path:
    options = ", ".join(f"{k}: {v}" for k, v in {**RECIPE, "checkpoint": str(checkpoint)}.items())
    text = textwrap.dedent(f"""\
        benchmark: tiny-fer
        seed: 0
        dataset:
          name: synthetic-faces
          split: test
          options: {{size: [48, 48], count: {{train: 384, val: 128, test: 192}}, classes: [neutral, happy, surprise]}}
        task:
          name: expression-cnn
          options: {{{options}}}
        metrics: [accuracy]
        codecs:
          - {{name: jpeg, rate_points: [50]}}
        runner: {{device: cpu}}
        """)
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def train_command(config: Path, store: Path) -> list[str]:
    return [sys.executable, "-u", "-m", "taskcodec.cli", "train", str(config), "--store", str(store), "--no-progress"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}  # one thread: fast on a busy machine


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fer-train")
    checkpoint = folder / "model.pt"
    config = write_config(folder, checkpoint)
    out = subprocess.run(train_command(config, folder / "store"), capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    return folder, config, checkpoint, out


@pytest.mark.slow
def test_tiny_training_learns(uninterrupted):
    folder, config, checkpoint, out = uninterrupted
    assert "epoch 8/8" in out.stderr and "state saved" in out.stderr
    state, meta = expression_task.load_checkpoint(checkpoint)
    assert meta["arch"] == "compact" and meta["classes"] == DATA["classes"]
    # the state file is removed once the checkpoint is written
    assert not list((folder / "store" / "models").glob("*.state.pt"))
    task = ExpressionCNN(checkpoint=str(checkpoint))
    test = SyntheticFaces(None, "test", **DATA)
    task.prepare(test, TaskContext(load_split=None, cache_dir=folder, device="cpu", progress=False))
    accuracy = float(np.mean(np.array(task.predict(list(test.images))) == test.labels))
    assert accuracy > 0.55, accuracy  # chance is 1/3 (about 0.67 after 8 epochs)
    assert meta["val_metrics"]["accuracy"] > 0.55


@pytest.mark.slow
def test_checkpoint_metadata(uninterrupted):
    folder, config, checkpoint, out = uninterrupted
    _, meta = expression_task.load_checkpoint(checkpoint)  # torch.load(weights_only=True)
    for key in ("classes", "train_fingerprint", "val_fingerprint", "training", "val_metrics", "data", "history",
                "selected_epoch", "train_time_s", "parameters", "size", "in_channels"):
        assert key in meta, key
    assert meta["training"]["seed"] == 0 and meta["training"]["epochs"] == 8 and meta["training"]["rotate"] == 5
    assert meta["data"]["dataset"] == "synthetic-faces" and meta["data"]["train"]["images"] == 384
    assert meta["train_fingerprint"] == SyntheticFaces(None, "train", **DATA).fingerprint()
    assert len(meta["history"]) == 8 and "val_accuracy_flip_tta" in meta["history"][0]
    best = max(meta["history"], key=lambda h: h["val_accuracy"])
    assert meta["selected_epoch"] == best["epoch"]
    assert meta["val_metrics"]["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-4)
    # a second `taskcodec train` finds the finished checkpoint and does nothing
    again = subprocess.run(train_command(config, folder / "store"), capture_output=True, text=True, env=env(), timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stderr


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_weights(uninterrupted, tmp_path):
    """Guarantee: the resumed run continues after its last saved epoch and ends with bit-identical weights
    (same machine, torch and thread count)."""
    _, _, reference, _ = uninterrupted
    checkpoint = tmp_path / "model.pt"
    config = write_config(tmp_path, checkpoint)
    store = tmp_path / "store"
    proc = subprocess.Popen(train_command(config, store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env())
    try:
        for line in proc.stderr:  # kill as soon as the second epoch's state is saved
            if "epoch 2/8" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not checkpoint.exists()
    assert len(list((store / "models").glob("expression-cnn-train-*.state.pt"))) == 1
    out = subprocess.run(train_command(config, store), capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    resumed = [line for line in out.stderr.splitlines() if "resuming from" in line]
    assert resumed and ("after epoch 2/8" in resumed[0] or "after epoch 3/8" in resumed[0]), out.stderr
    assert "epoch 1/8" not in out.stderr
    state, meta = expression_task.load_checkpoint(checkpoint)
    ref_state, ref_meta = expression_task.load_checkpoint(reference)
    assert expression_task.state_digest(state) == expression_task.state_digest(ref_state)
    assert meta["resumed_from_epoch"] in (2, 3) and meta["selected_epoch"] == ref_meta["selected_epoch"]
    assert [h["val_accuracy"] for h in meta["history"]] == [h["val_accuracy"] for h in ref_meta["history"]]


def test_train_needs_a_destination_and_a_trainable_task(tmp_path):
    task = ExpressionCNN(epochs=1)
    ctx = TaskContext(load_split=lambda s: SyntheticFaces(None, s, **DATA), cache_dir=tmp_path, device="cpu",
                      progress=False)
    with pytest.raises(TaskcodecError, match="nowhere to write"):
        task.train(TaskTrainingRequest(ctx))


def test_missing_checkpoint_says_how_to_build_it(tmp_path):
    task = ExpressionCNN(checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(TaskcodecError, match="taskcodec train"):
        task.prepare(SyntheticFaces(None, "test", **DATA), TaskContext(None, tmp_path, progress=False))


def test_soft_targets_need_soft_labels(tmp_path):
    task = ExpressionCNN(epochs=1, targets="soft", checkpoint=str(tmp_path / "m.pt"))
    ctx = TaskContext(load_split=lambda s: SyntheticFaces(None, s, **DATA), cache_dir=tmp_path, device="cpu",
                      progress=False)
    with pytest.raises(TaskcodecError, match="soft labels"):
        task.train(TaskTrainingRequest(ctx))


def test_flip_tta_and_vgg_shapes():
    import torch

    model = expression_task.build_model(1, 8, 32, "vgg")
    assert 1_100_000 < sum(p.numel() for p in model.parameters()) < 1_250_000
    model.eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 48, 48), dtype=np.uint8)
    plain = expression_task.run_model(model, images, "cpu", "fp32", 8)
    mirrored = expression_task.run_model(model, images[..., ::-1].copy(), "cpu", "fp32", 8)
    tta = expression_task.run_model(model, images, "cpu", "fp32", 8, tta="flip")
    assert plain.shape == (4, 8)
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="architecture"):
        expression_task.build_model(1, 8, 8, "resnet")
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize("options, name", [
    ({"arch": "resnet"}, "arch"), ({"rotate": 90}, "rotate"), ({"erase": 1.5}, "erase"), ({"tta": "ten-crop"}, "tta"),
    ({"select": "val", "val_split": None}, "select"), ({"optimizer": "lion"}, "optimizer"), ({"targets": "x"}, "targets"),
])
def test_bad_training_options(options, name):
    from taskcodec import ConfigError

    with pytest.raises(ConfigError, match=name):
        ExpressionCNN(**options)


def test_augment_is_deterministic_and_keeps_shape():
    import torch

    from taskcodec_plugins.tasks.expression_cnn.training import augment, lr_at

    x = torch.randn(16, 1, 48, 48)
    cfg = {"shift": 4, "rotate": 10, "scale": 0.1, "erase": 0.5}
    a = augment(x, torch.Generator().manual_seed(1), cfg)
    b = augment(x, torch.Generator().manual_seed(1), cfg)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    flip_only = augment(x, torch.Generator().manual_seed(1), {"shift": 0, "rotate": 0, "scale": 0, "erase": 0})
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(2)) for f, o in zip(flip_only, x))
    assert lr_at(0, 100, 1.0, 0.1) == pytest.approx(0.04) and lr_at(10, 100, 1.0, 0.1) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 0.1) == pytest.approx(1e-4)


def test_tasks_without_training_refuse_and_configs_need_a_task(tmp_path):
    import taskcodec

    class Fixed(taskcodec.Task):
        name = "fixed"

        def prepare(self, dataset, context):
            pass

        def fingerprint(self):
            return "fixed"

        def predict(self, images):
            return [0] * len(images)

        def sample_rows(self, dataset, outputs):
            return []

    with pytest.raises(TaskcodecError, match="task 'fixed' has no training command"):
        Fixed().train(TaskTrainingRequest(TaskContext(None, tmp_path)))
    config = tmp_path / "notask.yaml"
    config.write_text("benchmark: x\ndataset: {name: synthetic-faces}\ncodecs: [{name: jpeg, rate_points: [50]}]\n")
    out = subprocess.run([sys.executable, "-m", "taskcodec.cli", "train", str(config), "--store", str(tmp_path / "s")],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert out.returncode == 2 and "has no task to train" in out.stderr
