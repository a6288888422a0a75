"""The quickstart board run cold, then rerun warm into the same store: whole ``taskcodec run`` processes.

Run: pytest benchmarks/test_warm_rerun.py --benchmark-only

``taskcodec run configs/quickstart/board.yaml`` (600 synthetic faces x 31 codec rows, the committed
classifier) once into an empty store (cold: every encoding and task output is computed), then the same
command again, same store and output folder (warm: everything is cached and the board is up to date).
A warm rerun should take at most 5% of the cold run; ``extra_info`` records both times and
``warm_over_cold_time_ratio``. The cold run takes about a minute on two cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "quickstart" / "board.yaml"


def _run(store: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "taskcodec.cli", "run", str(CONFIG), "--store", str(store), "--out", str(out),
         "--no-progress"],
        cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm-rerun")
    store, out = folder / "store", folder / "out"
    return store, out, _run(store, out)


def test_quickstart_warm_rerun(benchmark, cold):
    store, out, cold_seconds = cold
    benchmark.pedantic(_run, args=(store, out), rounds=3, iterations=1)
    warm = benchmark.stats.stats.median
    benchmark.extra_info["cold_seconds"] = cold_seconds
    benchmark.extra_info["warm_seconds_median"] = warm
    benchmark.extra_info["warm_over_cold_time_ratio"] = warm / cold_seconds
