"""A FER+ benchmark end to end on generated files: expression-cnn from a checkpoint, then a classifier
"trained elsewhere" as a small task plugin (the route configs/ferplus/board.yaml documents) reusing every
stored bitstream; the leaderboard's confusion matrix and accuracies that recompute from samples.csv.gz."""
from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

import taskcodec
from taskcodec import runner as runner_module
from taskcodec.config import parse_config
from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish
from taskcodec.runner import Runner
from taskcodec.store import Store
from taskcodec_plugins.tasks.expression_cnn import task as expression_task
from taskcodec_plugins.datasets.fer.labels import EMOTIONS

from tests.helpers import write_ferplus

ROWS = [(f"fer{i:07d}.png", [0] * (i % 8) + [9] + [0] * (9 - i % 8)) for i in range(16)]


class ExternalClassifier(taskcodec.Task):
    """The documented pattern: load your own weights, apply your own preprocessing, return class indices."""

    name = "external-fer"
    task_type = "classification"
    default_metrics = ("accuracy", "balanced-accuracy", "macro-f1")

    def prepare(self, dataset, context):
        import torch

        path = self.options()["checkpoint"]
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(24 * 24, len(dataset.classes)))
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.net.eval()
        with open(path, "rb") as fh:
            self.digest = hashlib.sha256(fh.read()).hexdigest()

    def fingerprint(self):
        return self.digest

    def predict(self, images):
        import torch

        x = torch.from_numpy(np.stack(images)).float().div(255)[:, None]
        x = torch.nn.functional.interpolate(x, size=24, mode="area")  # this model's own preprocessing
        with torch.inference_mode():
            return self.net(x).argmax(1).tolist()

    def sample_rows(self, dataset, outputs):
        return [{"image": s.id, "label": s.label, "pred": outputs[s.id]} for s in dataset]


class ExternalPlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_tasks(register):
        register(ExternalClassifier)


def config(root, task):
    return {
        "benchmark": "ferplus-mini",
        "dataset": {"name": "ferplus", "root": str(root), "split": "test", "options": {"mode": "majority"}},
        "task": task,
        "metrics": ["accuracy", "balanced-accuracy", "macro-f1", "psnr"],
        "codecs": [{"name": "jpeg", "rate_points": [5, 50]}, {"name": "webp", "rate_points": [10]}],
        "runner": {"workers": 1, "device": "cpu"},
    }


@pytest.fixture
def fer_root(tmp_path):
    root = write_ferplus(tmp_path / "ferplus", rows=ROWS)
    # FER+ has pixel-identical images under different names (13 in the test split): encoded once, used twice
    (root / "FER2013Test" / "fer0000003.png").write_bytes((root / "FER2013Test" / "fer0000002.png").read_bytes())
    return root


def test_checkpoint_then_external_model_on_the_same_store(fer_root, tmp_path, monkeypatch):
    import torch

    pm = PluginManager(extra_plugins=[("external-fer", ExternalPlugin)])
    # an expression-cnn checkpoint (random weights: the pipeline, not the accuracy, is under test)
    torch.manual_seed(0)
    model = expression_task.build_model(1, len(EMOTIONS), 8, "vgg")
    checkpoint = tmp_path / "fer.pt"
    expression_task.save_checkpoint(checkpoint, model, {"classes": list(EMOTIONS), "in_channels": 1, "size": [48, 48], "width": 8,
                                           "arch": "vgg"})
    cfg = parse_config(config(fer_root, {"name": "expression-cnn", "options": {"checkpoint": str(checkpoint)}}),
                       "mini.yaml", pm.registry)
    store = tmp_path / "store"
    first = Runner(cfg, Store(store), pm, progress=False).run()
    folder = tmp_path / "board"
    publish(first, cfg, folder)
    assert (folder / "confusion.png").stat().st_size > 1000
    assert "confusion.png" in (folder / "README.md").read_text()
    assert first.provenance["dataset"]["classes"] == list(EMOTIONS)
    assert first.provenance["task"]["source"] == "checkpoint"
    assert first.provenance["task"]["checkpoint"]["file_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    # every accuracy recomputes from samples.csv.gz
    results = pd.read_csv(folder / "results.csv")
    samples = pd.read_csv(gzip.open(folder / "samples.csv.gz"))
    assert len(samples) == len(results) * 16
    images = pd.read_csv(gzip.open(folder / "images.csv.gz"))
    twins = images[images["image"].isin(["fer0000002", "fer0000003"])].groupby(["codec", "rate_point"])["bytes"].nunique()
    assert (twins == 1).all()
    for _, row in results.iterrows():
        same = samples["rate_point"].isna() if pd.isna(row["rate_point"]) else samples["rate_point"] == row["rate_point"]
        mine = samples[(samples["codec"] == row["codec"]) & same]
        assert row["accuracy"] == pytest.approx((mine["label"] == mine["pred"]).mean(), abs=1e-6)

    # a classifier trained elsewhere: only its inference runs, the stored bitstreams are reused
    weights = tmp_path / "external.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(24 * 24, 8)).state_dict(), weights)

    def no_encoding(*args, **kwargs):
        raise AssertionError("the stored bitstreams must be reused")

    monkeypatch.setattr(runner_module, "encode_chunk", no_encoding)
    cfg2 = parse_config(config(fer_root, {"name": "external-fer", "options": {"checkpoint": str(weights)}}),
                        "mini-external.yaml", pm.registry)
    second = Runner(cfg2, Store(store), pm, progress=False).run()
    a, b = pd.DataFrame(first.rows), pd.DataFrame(second.rows)
    assert list(a["codec"]) == list(b["codec"]) and np.allclose(a["bpp"], b["bpp"])
    assert np.allclose(a["psnr"].fillna(-1), b["psnr"].fillna(-1))
    assert {"accuracy", "balanced_accuracy", "macro_f1"} <= set(b.columns)
