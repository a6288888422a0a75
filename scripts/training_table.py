"""Print a markdown table of what trained a leaderboard's learned rows, from the training.json
files that `taskcodec train-codec` writes beside the checkpoints.

    python scripts/training_table.py leaderboard/lfw/models/learned-mse leaderboard/lfw/models/learned-task

One line per rate point: mode, loss weights, steps x batch, training time, images/s, hardware,
training data, and the validation numbers recorded at the end of the training.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(folder: Path) -> list[str]:
    summary = json.loads((folder / "training.json").read_text())
    out = []
    for point, r in summary["rate_points"].items():
        t, w, v = r.get("training", {}), r.get("loss_weights", {}), r.get("validation") or {}
        hw = t.get("hardware", {})
        data = r.get("training_data", {})
        weights = f"a={w.get('alpha')} b={w.get('beta')} g={w.get('gamma')}" + (" adaptive" if w.get("adaptive") else "")
        if w.get("clean_weight"):
            weights += f" clean={w['clean_weight']}"
        valid = ", ".join(f"{k} {v[k]:.4g}" for k in ("estimated_bpp", "psnr", "task_score") if k in v)
        out.append(f"| {folder.name} | {point} | {summary['mode']} | {weights} | {t.get('steps')} x {t.get('batch_size')} "
                   f"| {t.get('seconds')} | {t.get('images_per_s')} | {hw.get('device')} {hw.get('cpu')} "
                   f"{hw.get('torch_threads')} thread(s) | {data.get('dataset')} {data.get('split')} "
                   f"({data.get('images')}) | {valid} |")
    return out


def main(folders: list[str]) -> None:
    print("| row | rate point | mode | loss weights | steps x batch | seconds | img/s | hardware | training data "
          "| validation at the end |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        for line in rows(Path(folder)):
            print(line)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
