"""The expression-cnn task: a tiny training run, the weights cache, determinism, input checks."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from taskcodec import ConfigError, TaskContext, TaskcodecError
from taskcodec_plugins.tasks.expression_cnn import task as expression_task
from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN, TaskInputError
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

DATA = {"size": [48, 48], "count": {"train": 384, "val": 128, "test": 128},
        "classes": ["neutral", "happy", "surprise"]}
TINY = {"epochs": 6, "width": 8, "batch_size": 32}


def load(split: str, **overrides) -> SyntheticFaces:
    return SyntheticFaces(None, split, **{**DATA, **overrides})


def context(cache_dir, **overrides) -> TaskContext:
    return TaskContext(load_split=lambda split: load(split, **overrides), cache_dir=cache_dir, device="cpu",
                       seed=0, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cnn-cache")


@pytest.fixture(scope="module")
def trained(cache):
    task = ExpressionCNN(**TINY)
    task.prepare(load("test"), context(cache))
    return task


def test_tiny_training_learns(trained):
    assert trained.trained
    test = load("test")
    preds = trained.predict(list(test.images))
    assert len(preds) == len(test) and all(type(p) is int for p in preds)
    accuracy = np.mean(np.array(preds) == test.labels)
    assert accuracy > 0.5  # chance is 1/3
    assert trained.meta["val_accuracy"] > 0.5
    assert trained.meta["train_time_s"] > 0  # recorded; its speed is measured in benchmarks/, never asserted


def test_second_prepare_loads_the_cache(trained, cache):
    files = sorted(cache.glob("expression-cnn-*.pt"))
    assert files == [trained.cache_path]
    mtime = files[0].stat().st_mtime_ns
    again = ExpressionCNN(**TINY)
    again.prepare(load("test"), context(cache))
    assert not again.trained
    assert again.fingerprint() == trained.fingerprint()
    assert files[0].stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache.iterdir()) == [files[0].name]  # no temporary files left
    # the published provenance must not depend on whether this run trained or loaded the model
    assert again.provenance() == trained.provenance()


def test_predictions_are_batch_independent(trained):
    images = list(load("test").images[:40])
    whole = trained.predict(images)
    assert [trained.predict([im])[0] for im in images[:5]] == whole[:5]
    assert trained.predict(images[:17]) + trained.predict(images[17:]) == whole


def test_fingerprint_is_stable_and_hex(trained):
    fp = trained.fingerprint()
    assert fp == trained.fingerprint() and len(fp) == 64 and int(fp, 16) >= 0
    assert expression_task.state_digest(trained.model.state_dict()) == trained.provenance()["weights_sha256"]


def test_training_is_deterministic(trained, tmp_path):
    twin = ExpressionCNN(**TINY)
    twin.prepare(load("test"), context(tmp_path))
    assert twin.trained
    assert twin.fingerprint() == trained.fingerprint()


def test_other_options_or_data_train_anew(trained, tmp_path):
    import shutil

    shutil.copy(trained.cache_path, tmp_path / trained.cache_path.name)
    other = ExpressionCNN(**{**TINY, "epochs": 1})
    other.prepare(load("test"), context(tmp_path))
    assert other.trained and other.cache_path != trained.cache_path
    seeded = ExpressionCNN(**{**TINY, "epochs": 1, "seed": 7})
    seeded.prepare(load("test"), context(tmp_path))
    assert seeded.trained and seeded.fingerprint() != other.fingerprint()
    assert len(list(tmp_path.glob("expression-cnn-*.pt"))) == 3


def test_corrupt_cache_file_is_replaced(tmp_path):
    opts = {**TINY, "epochs": 1}
    first = ExpressionCNN(**opts)
    first.prepare(load("test"), context(tmp_path))
    first.cache_path.write_bytes(b"truncated garbage")
    second = ExpressionCNN(**opts)
    second.prepare(load("test"), context(tmp_path))
    assert second.trained and second.fingerprint() == first.fingerprint()
    third = ExpressionCNN(**opts)
    third.prepare(load("test"), context(tmp_path))
    assert not third.trained


def test_interrupted_save_leaves_no_file(trained, tmp_path, monkeypatch):
    import torch

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # as if the process were stopped mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    target = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt):
        expression_task.save_checkpoint(target, trained.model, {"classes": ["a"]})
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_option_loads_a_saved_file(trained):
    loaded = ExpressionCNN(checkpoint=str(trained.cache_path))
    loaded.prepare(load("test"), context(trained.cache_path.parent))
    assert loaded.fingerprint() == trained.fingerprint()
    images = list(load("test").images[:20])
    assert loaded.predict(images) == trained.predict(images)
    assert loaded.provenance()["source"] == "checkpoint"


def test_checkpoint_errors(tmp_path, trained):
    with pytest.raises(TaskcodecError, match="does not exist"):
        ExpressionCNN(checkpoint=str(tmp_path / "missing.pt")).prepare(load("test"), context(tmp_path))
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(TaskcodecError, match="cannot read checkpoint"):
        ExpressionCNN(checkpoint=str(tmp_path / "bad.pt")).prepare(load("test"), context(tmp_path))
    other_classes = SyntheticFaces(None, "test", **{**DATA, "classes": ["neutral", "sad", "angry"]})
    with pytest.raises(TaskcodecError, match="classes"):
        ExpressionCNN(checkpoint=str(trained.cache_path)).prepare(other_classes, context(tmp_path))


def test_predict_checks_images(trained):
    good = load("test").images[0]
    with pytest.raises(TaskInputError, match=r"64x64 \(HxW\).*expects 48x48"):
        trained.predict([np.zeros((64, 64), np.uint8)])
    with pytest.raises(TaskInputError, match="uint8"):
        trained.predict([good.astype(np.float32)])
    with pytest.raises(TaskInputError, match="shape"):
        trained.predict([np.zeros((48, 48, 4), np.uint8)])
    rgb = np.repeat(good[:, :, None], 3, axis=2)  # grey model: RGB input becomes luma
    assert trained.predict([rgb]) == trained.predict([good])
    assert trained.predict([]) == []


def test_unprepared_task_refuses():
    task = ExpressionCNN()
    with pytest.raises(TaskcodecError, match="prepare"):
        task.predict([np.zeros((48, 48), np.uint8)])
    with pytest.raises(TaskcodecError, match="prepare"):
        task.fingerprint()


@pytest.mark.parametrize("options, name", [
    ({"epochs": 0}, "epochs"), ({"lr": "fast"}, "lr"), ({"augment": "yes"}, "augment"),
    ({"precision": "fp16"}, "precision"), ({"seed": -2}, "seed"), ({"batchsize": 3}, "batchsize"),
    ({"eval_batch_size": 0}, "eval_batch_size"), ({"eval_batch_size": 2.5}, "eval_batch_size"),
])
def test_bad_options(options, name):
    with pytest.raises(ConfigError, match=name):
        ExpressionCNN(**options)


def test_sample_rows_and_provenance(trained):
    test = load("test", count={"test": 5})
    outputs = dict(zip([s.id for s in test], trained.predict(list(test.images))))
    rows = trained.sample_rows(test, outputs)
    assert rows == [{"image": s.id, "label": s.label, "pred": outputs[s.id]} for s in test]
    prov = trained.provenance()
    for key in ("fingerprint", "weights_sha256", "training", "val_accuracy", "train_time_s", "train_fingerprint",
                "classes", "size", "in_channels", "precision"):
        assert key in prov
    assert prov["train_fingerprint"] == load("train").fingerprint()
    assert prov["training"]["epochs"] == TINY["epochs"] and prov["training"]["seed"] == 0


def test_plugin_modules_do_not_import_torch():
    code = ("import sys, taskcodec_plugins.tasks.expression_cnn.task, taskcodec_plugins.datasets.synthetic_faces.dataset, "
            "taskcodec_plugins.metrics.classification; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "False"


def test_registered_as_plugin():
    from taskcodec.pluginmanager import PluginManager

    entry = PluginManager().get("task", "expression-cnn")
    assert entry.target is ExpressionCNN
    assert ExpressionCNN.task_type == "classification"
    assert ExpressionCNN.default_metrics == ("accuracy", "balanced-accuracy", "macro-f1")


def test_train_split_must_have_the_evaluated_classes(tmp_path):
    evaluated = SyntheticFaces(None, "test", **{**DATA, "classes": ["neutral", "sad", "angry"]})
    with pytest.raises(TaskcodecError, match="classes"):
        ExpressionCNN(**TINY).prepare(evaluated, context(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_eval_batch_size_defaults_by_device_and_does_not_change_predictions(trained):
    assert expression_task.eval_batch_size(expression_task.DEFAULTS, "cpu") == 64
    assert expression_task.eval_batch_size(expression_task.DEFAULTS, "cuda:0") == 256
    assert expression_task.eval_batch_size({**expression_task.DEFAULTS, "eval_batch_size": 5}, "cpu") == 5
    images = list(load("test").images[:100])
    small = ExpressionCNN(checkpoint=str(trained.cache_path), eval_batch_size=3)
    small.prepare(load("test"), context(trained.cache_path.parent))
    assert small.predict(images) == trained.predict(images)
    assert small.fingerprint() == trained.fingerprint()  # how it is batched is not part of the model's identity
