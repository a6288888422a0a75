"""Small published boards made by hand, for the tests of publishing and verifying."""
from __future__ import annotations

from pathlib import Path

from taskcodec.config import parse_config
from taskcodec.download import sha256_file
from taskcodec.runner import Collected
from taskcodec_plugins.metrics.classification import Accuracy

CLASSES = ["neutral", "happy", "sad"]
N = 30


def make_collected(labels=("jpeg", "webp"), title="Demo", notes=(), shift: int = 0) -> tuple[Collected, object]:
    """A small classification board, made by hand: rows, per-image and per-sample outputs, whose
    numbers agree (each accuracy is the share of correct samples). ``shift`` moves which samples
    are wrong without changing any number."""
    rows = [{"codec": "none", "setting": None, "parameter": None, "images": N, "bpp": 8.0, "accuracy": 0.9}]
    images, samples = [], []
    samples += [{"codec": "none", "setting": None, "image": f"i{j}", "label": j % 3,
                 "pred": j % 3 if j >= 3 else (j + 1) % 3} for j in range(N)]  # 27 of 30 correct
    for k, label in enumerate(labels):
        for s, setting in enumerate((10, 40, 80)):
            wrong = 12 - 4 * s + k
            rows.append({"codec": label, "setting": setting, "parameter": "quality", "images": N,
                         "bpp": 0.3 * (s + 1) + 0.05 * k, "accuracy": (N - wrong) / N})
            for j in range(N):
                images.append({"codec": label, "setting": setting, "image": f"i{j}", "bytes": 100 + s,
                               "bpp": 0.3 * (s + 1) + 0.05 * k})
                samples.append({"codec": label, "setting": setting, "image": f"i{j}", "label": j % 3,
                                "pred": j % 3 if (j + shift) % N >= wrong else (j + 1) % 3})
    raw = {"benchmark": "demo", "title": title, "dataset": {"name": "synthetic-faces"},
           "codecs": [{"name": "jpeg", "label": label} for label in labels], "metrics": ["accuracy"],
           "leaderboard": {"anchor": labels[0], "quality_metric": "accuracy", "notes": list(notes)}}
    provenance = {"command": "taskcodec run demo.yaml", "dataset": {"classes": CLASSES}}
    collected = Collected(rows=rows, images=images, samples=samples, provenance=provenance, task_metrics=[Accuracy()])
    return collected, parse_config(raw, "demo.yaml")


def board_digests(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
