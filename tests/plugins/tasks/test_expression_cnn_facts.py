"""expression-cnn with a checkpoint: the weights' facts remembered in the store, so that a run that
only fingerprints the model (a warm rerun) neither loads the file nor imports torch."""
from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys

import pytest

from taskcodec import TaskContext, TaskcodecError
from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

DATA = {"size": [32, 32], "count": {"train": 96, "val": 32, "test": 32}, "classes": ["neutral", "happy"]}


def load(split: str) -> SyntheticFaces:
    return SyntheticFaces(None, split, **DATA)


def context(cache_dir) -> TaskContext:
    return TaskContext(load_split=load, cache_dir=cache_dir, device="cpu", seed=0, progress=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two checkpoints of different trainings (one epoch each, seeds 0 and 1)."""
    folder = tmp_path_factory.mktemp("cnn-checkpoints")
    paths = []
    for seed in (0, 1):
        task = ExpressionCNN(epochs=1, width=4, batch_size=32, seed=seed)
        task.prepare(load("test"), context(folder / f"train-{seed}"))
        paths.append(shutil.copy(task.cache_path, folder / f"model-{seed}.pt"))
    return paths


def prepared(checkpoint, store) -> ExpressionCNN:
    task = ExpressionCNN(checkpoint=str(checkpoint), precision="fp32")
    task.prepare(load("test"), context(store))
    return task


def test_second_prepare_reads_the_remembered_facts(checkpoints, tmp_path):
    first = prepared(checkpoints[0], tmp_path)
    assert first.model is not None  # the first prepare loaded the file: the network is ready
    records = sorted(tmp_path.glob("expression-cnn-weights-*-facts-*.json"))
    assert len(records) == 1
    again = prepared(checkpoints[0], tmp_path)
    assert again._model is None  # nothing loaded yet
    assert again.fingerprint() == first.fingerprint()
    assert again.provenance() == first.provenance()
    images = list(load("test").images)
    assert again.predict(images) == first.predict(images)  # loads the network on first use


def test_another_checkpoint_is_not_taken_for_the_remembered_one(checkpoints, tmp_path):
    store = tmp_path / "store"
    target = tmp_path / "model.pt"
    shutil.copy(checkpoints[0], target)
    first = prepared(target, store)
    shutil.copy(checkpoints[1], target)  # same path, other weights
    second = prepared(target, store)
    assert second.fingerprint() != first.fingerprint()
    assert second.fingerprint() == prepared(checkpoints[1], tmp_path / "fresh").fingerprint()


def test_a_damaged_record_is_ignored_and_rewritten(checkpoints, tmp_path):
    first = prepared(checkpoints[0], tmp_path)
    (record,) = tmp_path.glob("*-facts-*.json")
    record.write_text('{"file_sha256": "')  # truncated
    assert prepared(checkpoints[0], tmp_path).fingerprint() == first.fingerprint()
    assert json.loads(record.read_text())["facts"]["weights_sha256"] == first.provenance()["weights_sha256"]
    forged = json.loads(record.read_text())
    forged["file_sha256"] = "0" * 64  # a record that names another file is not believed
    record.write_text(json.dumps(forged))
    assert prepared(checkpoints[0], tmp_path).fingerprint() == first.fingerprint()


def test_checkpoint_replaced_between_prepare_and_predict_is_refused(checkpoints, tmp_path):
    target = tmp_path / "model.pt"
    shutil.copy(checkpoints[0], target)
    prepared(target, tmp_path / "store")
    lazy = prepared(target, tmp_path / "store")
    shutil.copy(checkpoints[1], target)
    with pytest.raises(TaskcodecError, match=r"model\.pt.*changed after prepare"):
        lazy.predict(list(load("test").images[:2]))


def test_warm_prepare_does_not_import_torch(checkpoints, tmp_path):
    if any(glob.glob(node) for node in ("/dev/nvidia*", "/dev/dxg", "/dev/kfd")):
        pytest.skip("a GPU is visible here: device 'auto' asks torch whether CUDA works")
    prepared(checkpoints[0], tmp_path)
    code = f"""
import sys
from taskcodec import TaskContext
from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces
from taskcodec.machine import resolve_device
data = {DATA!r}
task = ExpressionCNN(checkpoint={str(checkpoints[0])!r}, precision="fp32")
task.prepare(SyntheticFaces(None, "test", **data),
             TaskContext(load_split=None, cache_dir={str(tmp_path)!r}, device=resolve_device("auto"), progress=False))
task.fingerprint(); task.provenance()
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
