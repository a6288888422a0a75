"""How the cost of a cold run grows with images and rate points, runner vs bare loop (issue 15 item 4).

Run: pytest benchmarks/test_cost_growth.py --benchmark-only -s

FER+ test images (the first 800, and all 3,137 with a majority label), JPEG at 1, 3 and 9 qualities, PSNR
and the committed FER+ classifier on every decoded image, no reference row. Each of the 6 (images, rate
points) settings runs once through the runner (2 workers, a fresh store) and once as the bare loop that does
the same work with the same two processes (a ``multiprocessing`` pool of imagecodecs encode + decode +
PSNR, then the classifier in this process). Both are fitted by least squares to

    time = fixed + per_image x images + per_coding x images x rate points

and the fits go to extra_info (and are printed). Measured only, never asserted.
"""
from __future__ import annotations

import csv
import multiprocessing
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.timing import FreshStores
from tests.helpers import DATASETS

SIZES = (800, 3137)
QUALITIES = {1: [50], 3: [20, 50, 80], 9: [5, 10, 20, 30, 40, 50, 60, 75, 90]}
CHECKPOINT = Path(__file__).resolve().parent.parent / "leaderboard" / "models" / "ferplus" / "expression-cnn-ferplus.pt"
MEASURED: dict[str, list[tuple[int, int, float]]] = {"runner": [], "bare": []}


def _subset(root: Path, n: int) -> Path:
    """A FER+ root holding only the first ``n`` test images that have a majority label."""
    from taskcodec_plugins.datasets.fer.datasets import FerPlus

    keep = {s.id for s in list(FerPlus(DATASETS / "ferplus", "test"))[:n]}
    source = DATASETS / "ferplus" / "FER2013Test"
    folder = root / "FER2013Test"
    folder.mkdir(parents=True)
    with open(source / "label.csv", newline="") as fh, open(folder / "label.csv", "w", newline="") as out:
        writer = csv.writer(out)
        for row in csv.reader(fh):
            if Path(row[0]).stem in keep:
                writer.writerow(row)
                shutil.copyfile(source / row[0], folder / row[0])
    return root


def _runner(root: Path, qualities: list[int], store: Path) -> None:
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import get_plugin_manager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    pm = get_plugin_manager()
    raw = {"benchmark": "cost-growth", "dataset": {"name": "ferplus", "root": str(root), "split": "test"},
           "task": {"name": "expression-cnn", "options": {"checkpoint": str(CHECKPOINT)}},
           "metrics": ["accuracy", "psnr"], "reference": False,
           "codecs": [{"name": "jpeg", "rate_points": qualities}], "runner": {"workers": 2, "device": "cpu"}}
    Runner(parse_config(raw, "benchmark", pm.registry), Store(store), pm, progress=False).run()


def _code(job):
    import imagecodecs

    image, quality = job
    decoded = imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(image, level=quality))
    mse = np.mean((image.astype(np.float64) - decoded) ** 2)
    return decoded, 10 * np.log10(255.0 ** 2 / mse) if mse else float("inf")


def _bare(root: Path, qualities: list[int]) -> None:
    """The same work without the framework, the classifier batched as the runner's task batches it."""
    from taskcodec_plugins.datasets.fer.datasets import FerPlus
    from taskcodec_plugins.tasks.expression_cnn import task as expression_task

    images = FerPlus(root, "test").images
    state, meta = expression_task.load_checkpoint(CHECKPOINT)
    model = expression_task.build_model(1, len(meta["classes"]), int(meta["width"]), meta.get("arch", "compact"))
    model.load_state_dict(state)
    model.eval()
    precision = expression_task.resolve_precision("auto", "cpu")
    batch = expression_task.eval_batch_size(expression_task.DEFAULTS, "cpu")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for quality in qualities:
            decoded = [d for d, _ in pool.map(_code, [(im, quality) for im in images], chunksize=64)]
            expression_task.run_model(model, np.stack(decoded)[:, None], "cpu", precision, batch)


def _fit(points: list[tuple[int, int, float]]) -> dict[str, float]:
    a = np.array([[1.0, n, n * k] for n, k, _ in points])
    t = np.array([s for _, _, s in points])
    (fixed, per_image, per_coding), *_ = np.linalg.lstsq(a, t, rcond=None)
    return {"fixed_s": round(float(fixed), 3), "per_image_ms": round(1e3 * float(per_image), 4),
            "per_image_x_rate_point_ms": round(1e3 * float(per_coding), 4)}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    if not (DATASETS / "ferplus").is_dir() or not CHECKPOINT.is_file():
        pytest.skip("needs the FER+ data and the committed classifier")
    base = tmp_path_factory.mktemp("growth")
    return {n: _subset(base / str(n), n) for n in SIZES}


@pytest.mark.shared_data
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("points", sorted(QUALITIES))
@pytest.mark.parametrize("side", ["bare", "runner"])
def test_cost_growth(benchmark, roots, side, points, n, tmp_path):
    if side == "runner":
        stores = FreshStores(tmp_path)
        benchmark.pedantic(_runner, setup=stores.setup(roots[n], QUALITIES[points]), rounds=1, iterations=1)
        stores.clear()
    else:
        benchmark.pedantic(_bare, args=(roots[n], QUALITIES[points]), rounds=1, iterations=1)
    MEASURED[side].append((n, points, benchmark.stats.stats.mean))
    benchmark.extra_info.update(side=side, images=n, rate_points=points)
    if len(MEASURED["runner"]) == len(MEASURED["bare"]) == len(SIZES) * len(QUALITIES):
        fits = {s: _fit(MEASURED[s]) for s in MEASURED}
        benchmark.extra_info["fits"] = fits
        print(f"\ncost growth (time = fixed + per image + per image x rate point): {fits}")
