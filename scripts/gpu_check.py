#!/usr/bin/env python3
"""The prepared check for a machine with a GPU (issue 15): run it there once, read its table.

    bash scripts/gpu_check.sh OUT                   # on the GPU machine: carried wheels, then this script
    python scripts/gpu_check.py --device cuda --out OUT
    python scripts/gpu_check.py --device cpu --out OUT --board CONFIG --against BOARD --skip lfw,train
                                                    # the CPU fallback (tests/core/test_gpu_check.py)

Steps, each timed (one failing is reported, the others still run; exit 1 if any failed):
  gpu-tests  pytest -m gpu: the GPU-marked tests (each runs on the CPU too; on a CPU-only machine the
             CUDA cases skip)
  board      a board (default configs/ferplus/board.yaml) with runner.device and every learned codec row
             on DEVICE, fresh store, into OUT/board; compared row by row with the published board
             (--against, default leaderboard/<benchmark>): rates must be identical (the bytes do not
             depend on the device), task-metric differences are reported (bf16 kernels differ)
  lfw        one LFW rate point (JPEG q10, MobileFaceNet on DEVICE), against leaderboard/lfw
  train      a learned-codec training smoke run (integer-hyperprior rd, 40 steps x 64 on FER+), images/s
Results: a table on stdout and OUT/gpu_check.json (throughputs, differences, seconds per step).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
LEARNED = ("integer-hyperprior", "learned", "compnet-png")
STEPS = ("gpu-tests", "board", "lfw", "train")


def _taskcodec(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskcodec.cli", *args]


def _run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` from the repository root, its output into ``log``; seconds taken (raises on failure)."""
    started = time.perf_counter()
    with open(log, "w") as fh:
        done = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text()[-1500:]
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {done.returncode}; end of {log}:\n{tail}")
    return time.perf_counter() - started


def on_device(raw: dict, device: str) -> dict:
    """A benchmark config with the task and every learned codec row on ``device`` (notes left out)."""
    raw = dict(raw, runner={**(raw.get("runner") or {}), "device": device})
    raw["codecs"] = [dict(c, options={**(c.get("options") or {}), "device": device}) if c["name"] in LEARNED else c
                     for c in raw["codecs"]]
    board = dict(raw.get("leaderboard") or {})
    board.pop("notes_file", None)
    raw["leaderboard"] = board
    return raw


def compare(ran: Path, published: Path) -> dict:
    """Row-by-row differences of two results.csv: rates (must be 0) and each task metric."""
    a, b = (pd.read_csv(p / "results.csv") for p in (ran, published))
    keys = ["codec", "rate_point"]
    a["rate_point"], b["rate_point"] = a["rate_point"].astype(str), b["rate_point"].astype(str)
    both = a.merge(b, on=keys, suffixes=("", "_published"))
    out = {"rows": len(a), "rows_compared": len(both)}
    for column in a.columns:
        if column in keys or column + "_published" not in both or not pd.api.types.is_numeric_dtype(both[column]):
            continue
        diff = (both[column] - both[column + "_published"]).abs()
        out[column] = {"max_abs_diff": float(diff.max()), "rows_differing": int((diff > 1e-12).sum())}
    return out


def step_board(args, out: Path) -> dict:
    config = Path(args.board)
    raw = yaml.safe_load(config.read_text())
    path = out / "board.yaml"
    path.write_text(yaml.safe_dump(on_device(raw, args.device), sort_keys=False))
    seconds = _run(_taskcodec("run", str(path), "--out", str(out / "board"), "--store", str(out / "store"),
                              "--no-progress"), out / "board.log")
    images = int(pd.read_csv(out / "board" / "results.csv")["images"].sum())
    against = Path(args.against) if args.against else ROOT / "leaderboard" / raw["benchmark"]
    report = {"config": str(config), "seconds": round(seconds, 1), "images_per_s": round(images / seconds, 1),
              "against": str(against), "differences": compare(out / "board", against)}
    if report["differences"].get("bpp", {}).get("rows_differing"):
        raise RuntimeError(f"rates differ from {against} on {args.device}: {report['differences']['bpp']}")
    return report


def step_lfw(args, out: Path) -> dict:
    raw = yaml.safe_load((ROOT / "configs" / "lfw" / "board.yaml").read_text())
    raw["codecs"] = [{"name": "jpeg", "rate_points": [10]}]
    raw["leaderboard"] = {"anchor": "jpeg", "quality_metric": "accuracy"}
    path = out / "lfw.yaml"
    path.write_text(yaml.safe_dump(on_device(raw, args.device), sort_keys=False))
    seconds = _run(_taskcodec("run", str(path), "--out", str(out / "lfw"), "--store", str(out / "store"),
                              "--no-progress"), out / "lfw.log")
    return {"seconds": round(seconds, 1), "pairs_per_s": round(2 * 6000 / seconds, 1),
            "differences": compare(out / "lfw", ROOT / "leaderboard" / "lfw")}


def step_train(args, out: Path) -> dict:
    raw = yaml.safe_load((ROOT / "configs" / "ferplus" / "train" / "integer-rd.yaml").read_text())
    raw["train_codec"] = dict(raw["train_codec"], out=str(out / "train-model"), rate_points=[0.001, 0.04])
    raw["train_codec"]["options"] = dict(raw["train_codec"]["options"], steps=40, batch_size=64, save_every=1000,
                                         log_every=20)
    raw["runner"] = {"device": args.device}
    path = out / "train.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    seconds = _run(_taskcodec("train-codec", str(path), "--no-progress", "--state-dir", str(out / "train-state")),
                   out / "train.log")
    summary = json.loads((out / "train-model" / "training.json").read_text())
    training = next(iter(summary["rate_points"].values()))["training"]
    return {"seconds": round(seconds, 1), "training_images_per_s": training.get("images_per_s"),
            "hardware": training.get("hardware")}


def step_gpu_tests(args, out: Path) -> dict:
    seconds = _run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], out / "gpu-tests.log")
    return {"seconds": round(seconds, 1), "summary": (out / "gpu-tests.log").read_text().strip().splitlines()[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--board", default=str(ROOT / "configs" / "ferplus" / "board.yaml"))
    parser.add_argument("--against", help="the published board to compare with [default: leaderboard/<benchmark>]")
    parser.add_argument("--skip", default="", help=f"comma-separated steps to leave out ({', '.join(STEPS)})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TASKCODEC_DATA", str(ROOT.parent / "shared" / "datasets"))
    os.environ.setdefault("TASKCODEC_MOBILEFACENET", str(ROOT.parent / "shared" / "models" / "mobilefacenet_casia_068.ckpt"))
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEPS):
        parser.error(f"--skip {sorted(skip - set(STEPS))}: the steps are {', '.join(STEPS)}")
    report = {"device": args.device, "steps": {}}
    try:
        import torch

        report["torch"] = torch.__version__
        report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        report["torch"] = None
    steps = {"gpu-tests": step_gpu_tests, "board": step_board, "lfw": step_lfw, "train": step_train}
    failed = 0
    for name in STEPS:
        if name in skip:
            continue
        try:
            result = {"ok": True, **steps[name](args, args.out)}
        except Exception as exc:  # noqa: BLE001 - report every step, then exit 1
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        report["steps"][name] = result
        print(f"{'ok  ' if result['ok'] else 'FAIL'} {name}: {json.dumps(result)[:600]}", flush=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"gpu_check: {len(report['steps']) - failed} steps ok, {failed} failed; {args.out / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
