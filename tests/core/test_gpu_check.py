"""scripts/gpu_check.py's CPU fallback: the same steps the GPU machine runs, here with ``--device cpu`` on a
small board (the board step against a board published from the same config, and the GPU-marked tests)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

BOARD = {"benchmark": "gpu-check-mini", "seed": 0,
         "dataset": {"name": "synthetic-faces", "options": {"size": [64, 64], "color": "gray", "count": 40}},
         "task": {"name": "expression-cnn",
                  "options": {"epochs": 10, "precision": "fp32", "checkpoint": "leaderboard/quickstart/expression-cnn-quickstart.pt"}},
         "metrics": ["accuracy", "psnr"],
         "codecs": [{"name": "jpeg", "rate_points": [10, 50]},
                    {"name": "integer-hyperprior", "row": "integer", "options": {"untrained_seed": 1, "in_channels": 1}}],
         "leaderboard": {"anchor": "jpeg", "quality_metric": "accuracy"}, "runner": {"workers": 1}}


def test_the_gpu_check_runs_its_cpu_fallback(tmp_path):
    config = tmp_path / "board.yaml"
    config.write_text(yaml.safe_dump(BOARD))
    published = subprocess.run([sys.executable, "-m", "taskcodec.cli", "run", str(config), "--out", str(tmp_path / "published"),
                                "--store", str(tmp_path / "store-published"), "--no-progress"], cwd=REPO,
                               capture_output=True, text=True)
    assert published.returncode == 0, published.stderr
    done = subprocess.run([sys.executable, "scripts/gpu_check.py", "--device", "cpu", "--out", str(tmp_path / "check"),
                           "--board", str(config), "--against", str(tmp_path / "published"), "--skip", "lfw,train"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "check" / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and set(report["steps"]) == {"gpu-tests", "board"}
    board = report["steps"]["board"]
    assert board["ok"] and board["images_per_s"] > 0
    differences = board["differences"]
    assert differences["rows_compared"] == differences["rows"] == 6  # the reference, 2 jpeg points, 3 lambdas
    assert differences["bpp"]["rows_differing"] == 0 and differences["accuracy"]["rows_differing"] == 0
    assert "passed" in report["steps"]["gpu-tests"]["summary"]
    assert "ok   board" in done.stdout and "gpu_check: 2 steps ok, 0 failed" in done.stdout
