"""FER classifier throughput, and one FER+ rate point through the runner vs the bare model.

Run: pytest benchmarks/test_fer_throughput.py --benchmark-only

- ``test_classifier_inference_*``: the FER+ network (``arch: vgg``, width 32, ~1.17M parameters) on
  1,024 48x48 gray images, in the task's default CPU batch (64), in bf16 (autocast, channels_last) and fp32; images/s in extra_info.
  Throughput does not depend on the weights, so a freshly initialised network is used.
- ``test_rate_point_*``: the FER+ test split (3,137 images, shared data) at JPEG quality 20: the bare
  loop (the split's PNGs read by the ``ferplus`` dataset, imagecodecs encode + decode, bpp and PSNR per
  image as the config asks, then the model on the decoded images as the task runs it, channels_last and
  batched alike, in this one process) against ``taskcodec``'s runner on a cold store with its default
  worker count (SQLite, bitstream pack files, PSNR, task outputs cached; this coding is too cheap to
  repay worker processes, so it runs in one process as the bare loop does). extra_info records images/s
  and the runner/bare throughput ratio of each pair of rounds (runner and bare rounds alternate) and their
  median, after a warm-up round each; every runner round into an empty store.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from benchmarks.timing import FreshStores, PairedRounds
from tests.helpers import DATASETS

QUALITY = 20
N_IMAGES = 1024


def _model(precision: str):
    import torch

    from taskcodec_plugins.tasks.expression_cnn import task as expression_task

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = expression_task.build_model(1, 8, 32, "vgg")
    return model.to(memory_format=torch.channels_last).eval()


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_classifier_inference(benchmark, precision):
    from taskcodec_plugins.tasks.expression_cnn import task as expression_task

    model = _model(precision)
    images = np.random.default_rng(0).integers(0, 256, (N_IMAGES, 1, 48, 48), dtype=np.uint8)
    batch = expression_task.eval_batch_size(expression_task.DEFAULTS, "cpu")
    expression_task.run_model(model, images[:256], "cpu", precision, batch)  # warm-up
    benchmark.pedantic(expression_task.run_model, args=(model, images, "cpu", precision, batch), rounds=3, iterations=1)
    benchmark.extra_info["batch"] = batch
    benchmark.extra_info["images_per_s"] = N_IMAGES / benchmark.stats.stats.median
    benchmark.extra_info["parameters"] = int(sum(p.numel() for p in model.parameters()))


def _checkpoint(folder: Path) -> Path:
    """The committed FER+ checkpoint if present, else a freshly initialised one (same cost)."""
    committed = Path(__file__).resolve().parent.parent / "leaderboard" / "models" / "ferplus" / "expression-cnn-ferplus.pt"
    if committed.is_file():
        return committed
    from taskcodec_plugins.tasks.expression_cnn import task as expression_task
    from taskcodec_plugins.datasets.fer.labels import EMOTIONS

    path = folder / "random-vgg.pt"
    expression_task.save_checkpoint(path, _model("bf16"), {"classes": list(EMOTIONS), "in_channels": 1, "size": [48, 48],
                                              "width": 32, "arch": "vgg"})
    return path


@pytest.fixture(scope="module")
def fer_test():
    from taskcodec_plugins.datasets.fer.datasets import FerPlus

    root = DATASETS / "ferplus"
    if not root.is_dir():
        pytest.skip(f"no FER+ at {root}")
    ds = FerPlus(root, "test")
    return ds, ds.images


def _bare(model, precision: str) -> tuple[float, float, float]:
    """The runner's work without the framework: read the split's PNGs, code them, measure each image's
    bits per pixel and PSNR (the config's metrics), classify them; (accuracy proxy, mean bpp, mean PSNR)."""
    import imagecodecs

    from taskcodec_plugins.tasks.expression_cnn import task as expression_task

    from taskcodec_plugins.datasets.fer.datasets import FerPlus

    images = FerPlus(DATASETS / "ferplus", "test").images
    streams = [imagecodecs.jpeg8_encode(im, level=QUALITY) for im in images]
    decoded = np.stack([imagecodecs.jpeg8_decode(data) for data in streams])
    bpp = [8 * len(data) / image.size for data, image in zip(streams, images)]
    squares = np.square(np.subtract(images, decoded, dtype=np.int16), dtype=np.int32).sum(axis=(1, 2), dtype=np.int64)
    psnr = 10 * np.log10(255.0**2 * images[0].size / np.maximum(squares, 1))
    batch = expression_task.eval_batch_size(expression_task.DEFAULTS, "cpu")  # as the runner's task batches it
    predicted = expression_task.run_model(model, decoded[:, None], "cpu", precision, batch).argmax(1)
    return float(predicted.mean()), float(np.mean(bpp)), float(psnr.mean())


def _runner(checkpoint: Path, store_dir: Path) -> None:
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import get_plugin_manager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    pm = get_plugin_manager()
    raw = {
        "benchmark": "ferplus-bench",
        "dataset": {"name": "ferplus", "root": str(DATASETS / "ferplus"), "split": "test"},
        "task": {"name": "expression-cnn", "options": {"checkpoint": str(checkpoint)}},
        "metrics": ["accuracy", "psnr"],
        "reference": False,
        "codecs": [{"name": "jpeg", "rate_points": [QUALITY]}],
        "runner": {"device": "cpu"},
    }
    cfg = parse_config(raw, "benchmark", pm.registry)
    Runner(cfg, Store(store_dir), pm, progress=False).run()


def _bare_model(folder: Path):
    """The classifier the bare loop runs as the task runs it: the runner's weights, channels_last memory
    format, the task's default precision."""
    import torch

    from taskcodec_plugins.tasks.expression_cnn import task as expression_task

    state, meta = expression_task.load_checkpoint(_checkpoint(folder))
    model = expression_task.build_model(1, len(meta["classes"]), int(meta["width"]), meta.get("arch", "compact"))
    model.load_state_dict(state)
    return model.to(memory_format=torch.channels_last).eval(), expression_task.resolve_precision("auto", "cpu")


@pytest.mark.shared_data
def test_rate_point_bare_model(benchmark, fer_test, tmp_path):
    ds, _ = fer_test
    model, precision = _bare_model(tmp_path)
    benchmark.pedantic(_bare, args=(model, precision), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = len(ds) / benchmark.stats.stats.median


@pytest.mark.shared_data
def test_rate_point_runner_cold_store(benchmark, fer_test, tmp_path):
    ds, _ = fer_test
    model, precision = _bare_model(tmp_path)
    stores, paired = FreshStores(tmp_path / "stores"), PairedRounds(lambda: _bare(model, precision))
    benchmark.pedantic(_runner, setup=stores.setup(_checkpoint(tmp_path), before=paired), rounds=5, iterations=1,
                       warmup_rounds=1)
    stores.clear()
    median = benchmark.stats.stats.median
    ratios = paired.throughput_ratios(list(benchmark.stats.stats.data))
    benchmark.extra_info["images_per_s"] = len(ds) / median
    benchmark.extra_info["paired_throughput_ratios"] = [round(r, 3) for r in ratios]
    benchmark.extra_info["runner_over_bare_throughput_ratio"] = statistics.median(ratios)
    benchmark.extra_info["runner_over_bare_time_ratio"] = 1 / statistics.median(ratios)
