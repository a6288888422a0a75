"""Peak memory of a cold run at two dataset sizes (issue 15 item 1: memory stays flat as the dataset grows).

Run: pytest benchmarks/test_peak_memory.py --benchmark-only -s

The FER+ test split (3,137 images with a majority label) and the FER+ training split (25,045), JPEG at one
quality, PSNR and the committed classifier on every decoded image, the reference row included. Each runs
in a fresh process (2 workers, a fresh store) whose process tree is sampled every 50 ms (psutil): the peak
resident set of the main process, of the largest worker, and of the whole tree together. Recorded in
extra_info and printed; measured only, never asserted. (``getrusage``'s RUSAGE_CHILDREN is no use here: a
forked child starts with its parent's high-water mark.)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import DATASETS

SPLITS = {"test": 3137, "train": 25045}
CHECKPOINT = Path(__file__).resolve().parent.parent / "leaderboard" / "models" / "ferplus" / "expression-cnn-ferplus.pt"
MEASURED: dict[str, dict] = {}

CHILD = textwrap.dedent("""
    import json, shutil, sys, tempfile
    from pathlib import Path
    from taskcodec.config import parse_config
    from taskcodec.pluginmanager import get_plugin_manager
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    raw = json.loads(sys.argv[1])
    pm = get_plugin_manager()
    store = Path(tempfile.mkdtemp(prefix="tc-memory-"))
    try:
        Runner(parse_config(raw, "benchmark", pm.registry), Store(store), pm, progress=False).run()
    finally:
        shutil.rmtree(store)
""")


def _config(split: str) -> dict:
    return {"benchmark": "peak-memory", "dataset": {"name": "ferplus", "root": str(DATASETS / "ferplus"), "split": split},
            "task": {"name": "expression-cnn", "options": {"checkpoint": str(CHECKPOINT), "precision": "bf16"}},
            "metrics": ["accuracy", "psnr"], "codecs": [{"name": "jpeg", "rate_points": [50]}],
            "runner": {"workers": 2, "device": "cpu"}}


def _run(split: str) -> dict:
    import psutil

    peak = {"main_mib": 0.0, "largest_worker_mib": 0.0, "tree_mib": 0.0}
    with tempfile.TemporaryDirectory() as cwd:  # the runner writes nothing else; keep the checkout clean
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(_config(split))], cwd=cwd,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        main = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                rss = {p.pid: p.memory_info().rss / 2**20 for p in [main, *main.children(recursive=True)]}
            except psutil.Error:  # a process ended between listing and reading
                continue
            workers = [v for pid, v in rss.items() if pid != child.pid]
            peak["main_mib"] = max(peak["main_mib"], rss.get(child.pid, 0.0))
            peak["largest_worker_mib"] = max(peak["largest_worker_mib"], max(workers, default=0.0))
            peak["tree_mib"] = max(peak["tree_mib"], sum(rss.values()))
            time.sleep(0.05)
        if child.returncode:
            raise RuntimeError(f"the run failed: {child.stderr.read().decode()[-2000:]}")
    return peak


@pytest.mark.shared_data
@pytest.mark.parametrize("split", sorted(SPLITS, key=SPLITS.get))
def test_peak_memory(benchmark, split):
    pytest.importorskip("psutil")
    if not (DATASETS / "ferplus").is_dir() or not CHECKPOINT.is_file():
        pytest.skip("needs the FER+ data and the committed classifier")
    result = benchmark.pedantic(_run, args=(split,), rounds=1, iterations=1)
    MEASURED[split] = {"images": SPLITS[split], **{k: round(v, 1) for k, v in result.items()}}
    benchmark.extra_info.update(MEASURED[split])
    print(f"\npeak memory, FER+ {split} ({SPLITS[split]} images): {MEASURED[split]}")
