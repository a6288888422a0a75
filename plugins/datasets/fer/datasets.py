"""Facial-expression datasets: ``ferplus`` and ``fer2013``.

``ferplus``
    The layout the FER+ tool writes (github.com/microsoft/FERPlus): ``<root>/FER2013Train/``,
    ``FER2013Valid/``, ``FER2013Test/`` (splits ``train``, ``val``, ``test``), each holding 48x48
    grayscale ``fer*.png`` files and a ``label.csv`` without header whose rows are
    ``image name, "(0, 0, 48, 48)", 10 vote counts`` (neutral, happiness, surprise, sadness, anger,
    disgust, fear, contempt, unknown, NF). Option ``mode``: ``majority`` (default; the FER+ paper's
    rule, Train 25,045 / Valid 3,191 / Test 3,137 images), ``plurality`` or ``soft`` (the vote
    distribution; ``dataset.targets`` holds it, ``label`` is its top emotion); see
    :mod:`taskcodec_plugins.datasets.fer.labels`. 8 classes; images whose label ends as unknown / not a face
    (or without a majority, or tied) are excluded and counted in ``metadata()["excluded"]``.
    Sample ids are the file names without extension (``fer0032220``).

``fer2013``
    The official Kaggle CSV (``fer2013.csv``; header ``emotion,pixels,Usage``; 35,887 rows of 48x48
    pixels as 2,304 space-separated grey levels). ``root`` is the CSV file or the folder holding it
    (option ``file``, default ``fer2013.csv``). Splits: ``train`` = Training (28,709), ``val`` =
    PublicTest (3,589), ``test`` = PrivateTest (3,589). 7 classes: angry, disgust, fear, happy, sad,
    surprise, neutral (label = the ``emotion`` column). Sample ids ``fer2013-<row:05d>`` (the 0-based
    data row, unique across splits).

Every problem with the data is a :class:`taskcodec.DatasetError` naming the file (and line, for CSV
files): malformed rows, wrong pixel counts, vote counts that are not integers >= 0 or are all 0,
unknown classes, missing or unreadable images, a split without rows. Image files are read by the one
rule of :mod:`taskcodec_plugins.datasets.image_files` (16-bit scaled, opaque alpha dropped, other modes refused).
Options are checked (type, range, choices) and unknown ones refused, naming the option.
Images are ``uint8`` arrays, ``48 x 48`` grayscale for ``ferplus`` and ``fer2013``.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec
from taskcodec import Dataset, DatasetError, Sample
from taskcodec_plugins.datasets import options
from taskcodec_plugins.datasets.fer import labels
from taskcodec_plugins.datasets.image_files import MAX_PIXELS, open_image

FER_SIZE = 48
FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_BOX = re.compile(r"^\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\)$")


from taskcodec_plugins.datasets.labelled_arrays import LabelledArrays, read_image, require_root, require_split

# --------------------------------------------------------------------------- FER+
def _votes(fields: Sequence[str], where: str) -> list[int]:
    """The 10 vote counts of a label.csv row: integers >= 0, not all 0 (a row without a single vote
    is a broken row, not an image the label rules could exclude)."""
    votes = []
    for column, value in zip(labels.VOTE_COLUMNS, fields):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise DatasetError(f"{where}: vote counts must be integers; the {column} count is {value!r}")
        votes.append(int(text))
    negative = [f"{c} {v}" for c, v in zip(labels.VOTE_COLUMNS, votes) if v < 0]
    if negative:
        raise DatasetError(f"{where}: vote counts must be >= 0, got {', '.join(negative)}")
    if not any(votes):
        raise DatasetError(f"{where}: all {len(votes)} vote counts are 0; every FER+ image has its annotators' votes")
    return votes


class FerPlus(LabelledArrays):
    """FER2013 images with FER+ crowd labels (see the module docstring)."""

    name = "ferplus"
    splits = ("train", "val", "test")
    description = "FER+ (FER2013 48x48 gray, 10 crowd votes each): 8 emotions; label mode majority|plurality|soft"
    classes = labels.EMOTIONS
    accepted_options = ("mode",)

    @classmethod
    def split_relation(cls, train_split: str, eval_split: str) -> str | None:
        if train_split != eval_split and {train_split, eval_split} <= set(FERPLUS_FOLDERS):
            return (f"another FER+ folder ({FERPLUS_FOLDERS[train_split]} vs the evaluated {FERPLUS_FOLDERS[eval_split]}): "
                    "no image file in both; near-duplicate faces across FER2013's splits not measured")
        return None

    def __init__(self, root: Path | None = None, split: str = "test", *, mode: str = "majority", **unknown: Any) -> None:
        options.reject_unknown(self, unknown, self.accepted_options)
        require_split(self.name, split, self.splits)
        options.choice(self, "mode", mode, labels.MODES)
        self.root = require_root(root, self.name)
        self.split, self.mode = split, mode
        self.folder = self.root / FERPLUS_FOLDERS[split]
        self.label_file = self.folder / "label.csv"
        if not self.folder.is_dir():
            raise DatasetError(f"ferplus: split folder {str(self.folder)!r} is missing (expected the FER+ layout "
                               f"{'/, '.join(FERPLUS_FOLDERS.values())}/ under the root)")
        if not self.label_file.is_file():
            raise DatasetError(f"ferplus: label file {str(self.label_file)!r} is missing")
        self._ids, self._labels, self._files, targets = [], [], [], []
        self.excluded = {reason: 0 for reason in labels.REASONS}
        self.rows = 0
        present = {e.name for e in os.scandir(self.folder)}
        seen: dict[str, int] = {}
        with open(self.label_file, newline="") as fh:
            for line, row in enumerate(csv.reader(fh), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                where = f"{self.label_file}:{line}"
                if len(row) != 2 + len(labels.VOTE_COLUMNS):
                    raise DatasetError(f"{where}: expected {2 + len(labels.VOTE_COLUMNS)} fields (image name, "
                                       f"face box, {len(labels.VOTE_COLUMNS)} vote counts), got {len(row)}: {row!r}")
                file, box = row[0].strip(), row[1].strip()
                if not file or "/" in file or "\\" in file:
                    raise DatasetError(f"{where}: bad image name {file!r}")
                if not _BOX.match(box):
                    raise DatasetError(f"{where}: bad face box {box!r}; expected e.g. \"(0, 0, 48, 48)\"")
                votes = _votes(row[2:], where)
                if file in seen:
                    raise DatasetError(f"{where}: image {file!r} is listed twice (first on line {seen[file]})")
                seen[file] = line
                if file not in present:
                    raise DatasetError(f"{where}: image file {str(self.folder / file)!r} is missing")
                self.rows += 1
                result = labels.label_votes(votes, mode)
                if not result.kept:
                    self.excluded[result.reason] += 1  # type: ignore[index]
                    continue
                self._ids.append(Path(file).stem)
                self._files.append(file)
                self._labels.append(int(result.label))  # type: ignore[arg-type]
                if result.distribution is not None:
                    targets.append(result.distribution)
        if not self.rows:
            raise DatasetError(f"ferplus: label file {str(self.label_file)!r} has no rows")
        self.targets: np.ndarray | None = np.asarray(targets, dtype=np.float32) if mode == "soft" else None

    def _load_images(self) -> np.ndarray:
        out = np.empty((len(self._files), FER_SIZE, FER_SIZE), dtype=np.uint8)
        for i in range(len(self._files)):
            out[i] = self._load_image(i)
        return out

    def _load_image(self, index: int) -> np.ndarray:
        path = self.folder / self._files[index]
        image = read_image(path, f"ferplus {self.split}")
        if image.shape != (FER_SIZE, FER_SIZE):
            raise DatasetError(f"ferplus: image {str(path)!r} is {image.shape[0]}x{image.shape[1]}; "
                               f"FER+ images are {FER_SIZE}x{FER_SIZE}")
        return image

    def metadata(self) -> dict[str, Any]:
        return {
            "source": "FER+ (Barsoum et al. 2016) labels on FER2013 images", "folder": FERPLUS_FOLDERS[self.split],
            "label_mode": self.mode, "classes": list(self.classes), "rows": self.rows, "images": len(self),
            "excluded": {k: v for k, v in self.excluded.items() if v}, "class_counts": self.class_counts(),
        }


# --------------------------------------------------------------------------- FER2013 CSV
class Fer2013(LabelledArrays):
    """The official FER2013 CSV (see the module docstring)."""

    name = "fer2013"
    splits = ("train", "val", "test")
    description = "FER2013 official CSV (emotion,pixels,Usage): 7 classes; train/val/test = Training/PublicTest/PrivateTest"
    classes = FER2013_CLASSES
    accepted_options = ("file",)

    def __init__(self, root: Path | None = None, split: str = "test", *, file: str = "fer2013.csv", **unknown: Any) -> None:
        options.reject_unknown(self, unknown, self.accepted_options)
        require_split(self.name, split, self.splits)
        options.text(self, "file", file, what="a CSV file name (relative to the root folder)")
        root = require_root(root, self.name)
        self.path = root / file if root.is_dir() else root
        if not self.path.is_file():
            raise DatasetError(f"fer2013: CSV file {str(self.path)!r} is missing")
        self.split = split
        usage_wanted = FER2013_USAGE[split]
        self._ids, self._labels = [], []
        self.split_counts = {u: 0 for u in FER2013_USAGE.values()}
        pixel_rows: list[str] = []
        lines: list[int] = []
        with open(self.path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            names = [h.strip().lower() for h in header] if header else []
            if sorted(names) != ["emotion", "pixels", "usage"]:
                raise DatasetError(f"{self.path}:1: expected the header emotion,pixels,Usage, got {header!r}")
            col = {n: names.index(n) for n in names}
            for index, row in enumerate(reader):
                line = index + 2
                where = f"{self.path}:{line}"
                if len(row) != 3:
                    raise DatasetError(f"{where}: expected 3 fields (emotion, pixels, Usage), got {len(row)}")
                emotion, usage = row[col["emotion"]].strip(), row[col["usage"]].strip()
                if usage not in self.split_counts:
                    raise DatasetError(f"{where}: unknown Usage {usage!r}; expected one of {list(self.split_counts)}")
                if not emotion.isdigit() or not 0 <= int(emotion) < len(FER2013_CLASSES):
                    raise DatasetError(f"{where}: unknown emotion class {emotion!r}; expected 0..{len(FER2013_CLASSES) - 1} "
                                       f"({', '.join(f'{i} {c}' for i, c in enumerate(FER2013_CLASSES))})")
                self.split_counts[usage] += 1
                if usage != usage_wanted:
                    continue
                self._ids.append(f"fer2013-{index:05d}")
                self._labels.append(int(emotion))
                pixel_rows.append(row[col["pixels"]])
                lines.append(line)
        if not self._ids:
            raise DatasetError(f"fer2013: {str(self.path)!r} has no rows with Usage {usage_wanted!r} (split {split!r}); "
                               f"rows per Usage: {self.split_counts}")
        self._images = self._parse_pixels(pixel_rows, lines)

    def _parse_pixels(self, rows: list[str], lines: list[int]) -> np.ndarray:
        n = FER_SIZE * FER_SIZE
        out = np.empty((len(rows), FER_SIZE, FER_SIZE), dtype=np.uint8)
        for i, (text, line) in enumerate(zip(rows, lines)):
            parts = text.split()
            if len(parts) != n:
                raise DatasetError(f"{self.path}:{line}: expected {n} pixel values ({FER_SIZE}x{FER_SIZE}), got {len(parts)}")
            try:
                values = np.array(parts, dtype=np.int64)
            except ValueError:
                bad = next(p for p in parts if not p.lstrip("-").isdigit())
                raise DatasetError(f"{self.path}:{line}: pixel value {bad!r} is not an integer") from None
            if values.min() < 0 or values.max() > 255:
                raise DatasetError(f"{self.path}:{line}: pixel values must be in 0..255, got {values.min()}..{values.max()}")
            out[i] = values.reshape(FER_SIZE, FER_SIZE)
        return out

    def _load_images(self) -> np.ndarray:  # parsed in __init__
        raise AssertionError("unreachable")

    def metadata(self) -> dict[str, Any]:
        return {"source": "FER2013 (Goodfellow et al. 2013), official CSV", "file": self.path.name,
                "usage": FER2013_USAGE[self.split], "classes": list(self.classes), "images": len(self),
                "rows_per_usage": dict(self.split_counts), "class_counts": self.class_counts()}
