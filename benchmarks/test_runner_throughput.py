"""A Kodak JPEG sweep through the runner (cold store, both cores) vs a bare imagecodecs loop.

Run: pytest benchmarks/test_runner_throughput.py --benchmark-only
The runner's extra work is the store (SQLite + bitstream files), digests and process
start-up. The runner's rounds (5, after a warm-up round: this process's first-time imports are not a
sweep's cost; each into an empty store) alternate with bare rounds, and `extra_info` records the
median of the paired throughput ratios (bare time / runner time) and each pair's.
"""
from __future__ import annotations

import multiprocessing
import statistics
from pathlib import Path

import numpy as np
import pytest

from benchmarks.timing import FreshStores, PairedRounds
from tests.helpers import DATASETS

QUALITIES = (10, 30, 50, 70, 90)
pytestmark = pytest.mark.shared_data


def _bare_image(path: str) -> list[tuple[float, float]]:
    import imagecodecs
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    out = []
    for q in QUALITIES:
        data = imagecodecs.jpeg8_encode(image, level=q)
        decoded = imagecodecs.jpeg8_decode(data)
        mse = np.mean((image.astype(np.float64) - decoded) ** 2)
        out.append((8 * len(data) / (image.shape[0] * image.shape[1]), 10 * np.log10(255**2 / mse)))
    return out


def _bare_sweep(files: list[str]) -> list:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return pool.map(_bare_image, files)


def _runner_sweep(root: Path, store_dir: Path) -> None:
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import get_plugin_manager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    pm = get_plugin_manager()
    raw = {
        "benchmark": "kodak-bench",
        "dataset": {"name": "kodak", "root": str(root)},
        "metrics": ["psnr"],
        "codecs": [{"name": "jpeg", "rate_points": list(QUALITIES)}],
        "runner": {"workers": 2},
    }
    cfg = parse_config(raw, "benchmark", pm.registry)
    Runner(cfg, Store(store_dir), pm, progress=False).run()


def test_bare_imagecodecs_loop(benchmark):
    files = sorted(str(p) for p in (DATASETS / "kodak").glob("kodim*.png"))
    benchmark.pedantic(_bare_sweep, args=(files,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = len(files) * len(QUALITIES) / benchmark.stats.stats.median


def test_runner_cold_store(benchmark, tmp_path):
    files = sorted(str(p) for p in (DATASETS / "kodak").glob("kodim*.png"))
    stores, paired = FreshStores(tmp_path), PairedRounds(lambda: _bare_sweep(files))
    benchmark.pedantic(_runner_sweep, setup=stores.setup(DATASETS / "kodak", before=paired), rounds=5, iterations=1,
                       warmup_rounds=1)
    stores.clear()
    median = benchmark.stats.stats.median
    ratios = paired.throughput_ratios(list(benchmark.stats.stats.data))
    benchmark.extra_info["images_per_s"] = 24 * len(QUALITIES) / median
    benchmark.extra_info["paired_throughput_ratios"] = [round(r, 3) for r in ratios]
    benchmark.extra_info["runner_over_bare_throughput_ratio"] = statistics.median(ratios)
    benchmark.extra_info["runner_over_bare_time_ratio"] = 1 / statistics.median(ratios)
