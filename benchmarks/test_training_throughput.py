"""Training throughput of ``taskcodec train-codec`` (plugins/codec_training.py), in images per second.

Run with ``python -m pytest benchmarks/test_training_throughput.py --benchmark-only -q``. Each
benchmark writes a config for the ``synthetic-faces`` dataset and runs the real driver,
``taskcodec.codec_training_config.train_codec``, once (``rounds=1``: a training writes its checkpoints, state and
training.json, and a second run into the same folder would skip the finished work), with its
``out`` folder and store under ``tmp_path``:

  learned rd:    bmshj2018-factorized N=48 M=64 (the FER+ published architecture) on 48x48 gray
                 faces (FER+'s size), lambda 0.018, from scratch;
  learned task:  the same with a frozen expression classifier (alpha 0.2, beta 0.5, gamma 1, adaptive:
                 the FER+ learned-task weights). The classifier is a tiny compact CNN (width 8,
                 trained for one epoch here): its forward and backward passes are a lower bound
                 on the FER+ classifier's;
  compnet rd:    a compnet-png pair at width 32 (levels 4, downsampling 4, nominal bpp 1: 8
                 channels) on 112x96 RGB faces (the aligned LFW crop size).

``extra_info``: ``images_per_s``, the training loop's own figure (``steps x batch / seconds`` of
the optimiser loop, as written in the checkpoint's ``training`` metadata and training.json), and
``wall_images_per_s``, the same images over the whole ``train_codec`` call (data generation,
classifier loading, validation on 64 images and checkpoint writing included); steps, batch,
threads and the hardware record. Torch runs with the process's threads; on the shared development
machines run it with ``OMP_NUM_THREADS=1``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskcodec import TaskContext, TaskTrainingRequest
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.codec_training_config import train_codec

STEPS = 24
FER_DATA = {"size": [48, 48], "count": {"train": 256, "val": 64, "test": 64},
            "classes": ["neutral", "happy", "surprise"]}
FACE_CROP_DATA = {**FER_DATA, "size": [112, 96], "color": "rgb"}
LEARNED = {"arch": "bmshj2018-factorized", "N": 48, "M": 64, "steps": STEPS, "batch_size": 32, "lr": 1.0e-3,
           "val_images": 64}
TASK_WEIGHTS = {"alpha": 0.2, "beta": 0.5, "gamma": 1.0, "adaptive": True}
COMPNET = {"levels": 4, "downsampling": 4, "width": 32, "lambda": 0.01, "steps": STEPS, "batch_size": 16,
           "lr": 1.0e-3, "val_images": 64}
TINY_CLASSIFIER = {"epochs": 1, "width": 8, "batch_size": 32}  # throughput only: its accuracy does not matter


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A tiny expression classifier checkpoint for the 48x48 gray faces (task mode needs one)."""
    from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN
    from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

    folder = tmp_path_factory.mktemp("classifier")
    ctx = TaskContext(load_split=lambda split: SyntheticFaces(None, split, **FER_DATA), cache_dir=folder,
                      device="cpu", seed=0, progress=False)
    path = folder / "cnn.pt"
    ExpressionCNN(**TINY_CLASSIFIER).train(TaskTrainingRequest(context=ctx, out=path))
    return path


def write_config(folder: Path, codec: str, mode: str, point: float, options: dict[str, Any],
                 data: dict[str, Any], classifier: Path | None = None) -> Path:
    """A train-codec config for one rate point on synthetic faces, writing its models to folder/out."""
    raw: dict[str, Any] = {
        "train_codec": {"codec": codec, "mode": mode, "rate_points": [point], "out": str(folder / "out"),
                        "options": options},
        "dataset": {"name": "synthetic-faces", "split": "train", "options": data},
        "val_split": "val",
        "seed": 0,
    }
    if classifier is not None:
        raw["task"] = {"name": "expression-cnn", "options": {"checkpoint": str(classifier)}}
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def benchmark_training(benchmark, folder: Path, config: Path, group: str) -> dict[str, Any]:
    """Run the training once under the benchmark; record throughput facts from training.json."""
    import torch

    seconds: list[float] = []

    def training() -> None:
        start = time.perf_counter()
        train_codec(config, get_plugin_manager(), folder / "store", progress=False, log=lambda message: None)
        seconds.append(time.perf_counter() - start)

    benchmark.group = group
    benchmark.pedantic(training, rounds=1, iterations=1)  # also runs once under --benchmark-disable
    record = json.loads((folder / "out" / "training.json").read_text())
    (point,) = record["rate_points"].values()
    facts = point["training"]
    images = facts["steps"] * facts["batch_size"]
    benchmark.extra_info.update(
        images_per_s=facts["images_per_s"], wall_images_per_s=round(images / seconds[0], 1),
        loop_seconds=facts["seconds"], wall_seconds=round(seconds[0], 1), steps=facts["steps"],
        batch=facts["batch_size"], threads=torch.get_num_threads(), hardware=facts["hardware"],
    )
    return facts


@pytest.mark.parametrize("mode", ["rd", "task"])
def test_learned_training_throughput(benchmark, tmp_path, classifier, mode: str) -> None:
    options = {**LEARNED, **(TASK_WEIGHTS if mode == "task" else {})}
    config = write_config(tmp_path, "learned", mode, 0.018, options, FER_DATA,
                          classifier if mode == "task" else None)  # rd: no task, no per-batch classifier work
    facts = benchmark_training(benchmark, tmp_path, config, f"train-codec learned {mode}")
    assert facts["steps"] == STEPS and facts["batch_size"] == LEARNED["batch_size"]
    assert (tmp_path / "out" / "lambda-0.018.pt").is_file()


def test_compnet_training_throughput(benchmark, tmp_path) -> None:
    config = write_config(tmp_path, "compnet-png", "rd", 1.0, COMPNET, FACE_CROP_DATA)
    facts = benchmark_training(benchmark, tmp_path, config, "train-codec compnet-png rd")
    assert facts["steps"] == STEPS and facts["batch_size"] == COMPNET["batch_size"]
    assert (tmp_path / "out" / "nominal-1.pt").is_file()
