"""What the tests share: paths, generated images, small datasets and boards, and test plugins.

Everything here is generated (seeded) or a path; nothing downloads. Tests import from here, never
from each other.
"""
from __future__ import annotations

import csv
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import taskcodec
from taskcodec.conformance import natural_image  # noqa: F401 - the tests' one test image
from taskcodec.config import parse_config
from taskcodec.files import sha256_file
from taskcodec.results import Collected
from taskcodec_plugins.metrics.classification import Accuracy

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TASKCODEC_SHARED", REPO.parent / "shared"))
DATASETS = Path(os.environ.get("TASKCODEC_DATA", SHARED / "datasets"))


def write_images(folder: Path, count: int = 6, size=(40, 56), channels: int = 3) -> Path:
    """Write a few PNG files for image-dir datasets."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        array = natural_image(*size, color=channels == 3, seed=i)
        Image.fromarray(array).save(folder / f"img{i:02d}.png")
    return folder


def textconfig(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def committed_model_folders(prefix: str) -> list[str]:
    """The committed model folders named ``prefix*``: under leaderboard/models/<board>/ and leaderboard/<board>/models/."""
    root = REPO / "leaderboard"
    found = sorted({*root.glob(f"models/*/{prefix}*"), *root.glob(f"*/models/{prefix}*")})
    return [str(f) for f in found if f.is_dir() and any(f.glob("*.pt"))]


BOARD_CLASSES = ["neutral", "happy", "sad"]
BOARD_IMAGES = 30


def make_collected(row_names=("jpeg", "webp"), title="Demo", notes=(), shift: int = 0) -> tuple[Collected, object]:
    """A small classification board, made by hand: rows, per-image and per-sample outputs, whose
    numbers agree (each accuracy is the share of correct samples). ``shift`` moves which samples
    are wrong without changing any number."""
    rows = [{"codec": "none", "rate_point": None, "parameter": None, "images": BOARD_IMAGES, "bpp": 8.0, "accuracy": 0.9}]
    images, samples = [], []
    samples += [{"codec": "none", "rate_point": None, "image": f"i{j}", "label": j % 3,
                 "pred": j % 3 if j >= 3 else (j + 1) % 3} for j in range(BOARD_IMAGES)]  # 27 of 30 correct
    for k, row_name in enumerate(row_names):
        for s, rate_point in enumerate((10, 40, 80)):
            wrong = 12 - 4 * s + k
            rows.append({"codec": row_name, "rate_point": rate_point, "parameter": "quality", "images": BOARD_IMAGES,
                         "bpp": 0.3 * (s + 1) + 0.05 * k, "accuracy": (BOARD_IMAGES - wrong) / BOARD_IMAGES})
            for j in range(BOARD_IMAGES):
                images.append({"codec": row_name, "rate_point": rate_point, "image": f"i{j}", "bytes": 100 + s,
                               "bpp": 0.3 * (s + 1) + 0.05 * k})
                samples.append({"codec": row_name, "rate_point": rate_point, "image": f"i{j}", "label": j % 3,
                                "pred": j % 3 if (j + shift) % BOARD_IMAGES >= wrong else (j + 1) % 3})
    raw = {"benchmark": "demo", "title": title, "dataset": {"name": "synthetic-faces"},
           "codecs": [{"name": "jpeg", "row": row_name} for row_name in row_names], "metrics": ["accuracy"],
           "leaderboard": {"anchor": row_names[0], "quality_metric": "accuracy", "notes": list(notes)}}
    provenance = {  # the keys the results schema requires (taskcodec/schemas/results-3.schema.json)
        "command": "taskcodec run demo.yaml", "taskcodec": "0.1.0", "python": "3", "packages": {}, "plugins": {},
        "git": {"revision": None, "dirty": None}, "config": raw, "seed": 0, "task": None, "codecs": {},
        "dataset": {"name": "synthetic-faces", "fingerprint": "0" * 64, "images": BOARD_IMAGES,
                    "classes": BOARD_CLASSES}}
    collected = Collected(rows=rows, images=images, samples=samples, provenance=provenance, task_metrics=[Accuracy()])
    return collected, parse_config(raw, "demo.yaml")


_CAPABILITY_ORDER = ("default", "avx2", "avx512")


@functools.lru_cache(maxsize=None)
def best_cpu_capability() -> str:
    """The widest ATEN_CPU_CAPABILITY this CPU runs (torch accepts a wider one and then dies of SIGILL)."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           capture_output=True, text=True, env=env, timeout=120, check=True)
    return probe.stdout.strip().lower() if probe.stdout.strip().lower() in _CAPABILITY_ORDER else "default"


def skip_unless_cpu_runs(capability: str) -> None:
    """Skip the calling test where this CPU lacks the SIMD kernels ``capability`` selects."""
    import pytest

    if _CAPABILITY_ORDER.index(capability) > _CAPABILITY_ORDER.index(best_cpu_capability()):
        pytest.skip(f"this CPU runs ATen kernels up to {best_cpu_capability()}, not {capability}")


def board_digests(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def face(seed: int, size=(48, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


FERPLUS_ROWS = [  # name, votes (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF)
    ("fer0000000.png", [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]),   # happiness, all modes
    ("fer0000001.png", [4, 3, 0, 3, 0, 0, 0, 0, 0, 0]),   # no majority; plurality neutral
    ("fer0000002.png", [0, 0, 0, 0, 0, 0, 0, 0, 8, 2]),   # unknown
    ("fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # not a face
    ("fer0000004.png", [0, 0, 5, 0, 0, 0, 5, 0, 0, 0]),   # tie surprise/fear
    ("fer0000005.png", [2, 0, 0, 0, 7, 1, 0, 0, 0, 0]),   # anger
]


def write_ferplus(root: Path, rows=FERPLUS_ROWS, folder: str = "FER2013Test", images: bool = True) -> Path:
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "label.csv", "w", newline="") as fh:
        for name, v in rows:
            fh.write(f'{name},"(0, 0, 48, 48)",{",".join(map(str, v))}\n')
    if images:
        for i, (name, _) in enumerate(rows):
            save_png(d / name, face(i))
    return root


def write_fer2013(path: Path, rows) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for emotion, pixels, usage in rows:
            w.writerow([emotion, pixels if isinstance(pixels, str) else " ".join(map(str, pixels.ravel())), usage])
    return path


FER2013_ROWS = [(3, face(0), "Training"), (6, face(1), "PublicTest"), (0, face(2), "PrivateTest"),
                (5, face(3), "Training"), (1, face(4), "PrivateTest")]


def write_folder(root: Path) -> Path:
    for split, per_class in (("train", {"angry": 2, "happy": 3}), ("test", {"happy": 1, "sad": 2})):
        for cls, n in per_class.items():
            for i in range(n):
                save_png(root / split / cls / f"{cls}{i}.png", face(i, (60, 50)))
    return root


PEOPLE = {"Ann_Lee": 3, "Bo_Chan": 2, "Cy_Diaz": 1, "Di_Egan": 2}


def write_pairs(path: Path, folds: int, lines: list[str], per_fold: int) -> Path:
    header = f"{folds}\t{per_fold}" if folds > 1 else f"{per_fold}"
    path.write_text("\n".join([header] + lines) + "\n")
    return path


def fake_lfw(root: Path, size=(112, 96)) -> Path:
    """A miniature LFW: deep-funneled layout, 2 folds x (2 matched + 2 mismatched)."""
    images = root / "lfw-deepfunneled"
    seed = 0
    for name, count in PEOPLE.items():
        (images / name).mkdir(parents=True)
        for i in range(1, count + 1):
            from PIL import Image

            Image.fromarray(natural_image(*size, seed=seed)).save(images / name / f"{name}_{i:04d}.jpg", quality=95)
            seed += 1
    write_pairs(root / "pairs.txt", 2, [
        "Ann_Lee\t1\t2", "Bo_Chan\t1\t2", "Ann_Lee\t1\tCy_Diaz\t1", "Bo_Chan\t2\tDi_Egan\t1",
        "Ann_Lee\t2\t3", "Di_Egan\t1\t2", "Cy_Diaz\t1\tDi_Egan\t2", "Ann_Lee\t3\tBo_Chan\t1",
    ], 2)
    return root


def random_checkpoint(path: Path, seed: int = 0) -> Path:
    """A MobileFaceNet checkpoint with random weights, in the published checkpoint's layout."""
    import torch

    from taskcodec_plugins.tasks.face_embedders.mobilefacenet import build_mobilefacenet

    torch.manual_seed(seed)
    model = build_mobilefacenet()
    torch.save({"epoch": 1, "net_state_dict": model.state_dict()}, path)
    return path


class Patches(taskcodec.Dataset):
    name = "patches"
    needs_root = False
    splits = ("test",)
    classes = ("dark", "bright")

    def __init__(self, root=None, split="test", count=24):
        self.items = []
        for i in range(count):
            image = natural_image(24, 20, color=False, seed=i).astype(np.float32)
            label = i % 2
            image = np.clip(image * (0.5 if label == 0 else 1.4) + (0 if label == 0 else 20), 0, 255).astype(np.uint8)
            self.items.append(taskcodec.Sample(f"p{i:03d}", image, label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]
