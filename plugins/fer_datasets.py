"""Facial-expression datasets: ``ferplus``, ``fer2013`` and ``image-folder``.

``ferplus``
    The layout the FER+ tool writes (github.com/microsoft/FERPlus): ``<root>/FER2013Train/``,
    ``FER2013Valid/``, ``FER2013Test/`` (splits ``train``, ``val``, ``test``), each holding 48x48
    grayscale ``fer*.png`` files and a ``label.csv`` without header whose rows are
    ``image name, "(0, 0, 48, 48)", 10 vote counts`` (neutral, happiness, surprise, sadness, anger,
    disgust, fear, contempt, unknown, NF). Option ``mode``: ``majority`` (default; the FER+ paper's
    rule, Train 25,045 / Valid 3,191 / Test 3,137 images), ``plurality`` or ``soft`` (the vote
    distribution; ``dataset.targets`` holds it, ``label`` is its top emotion); see
    :mod:`taskcodec_plugins.fer_labels`. 8 classes; images whose label ends as unknown / not a face
    (or without a majority, or tied) are excluded and counted in ``metadata()["excluded"]``.
    Sample ids are the file names without extension (``fer0032220``).

``fer2013``
    The official Kaggle CSV (``fer2013.csv``; header ``emotion,pixels,Usage``; 35,887 rows of 48x48
    pixels as 2,304 space-separated grey levels). ``root`` is the CSV file or the folder holding it
    (option ``file``, default ``fer2013.csv``). Splits: ``train`` = Training (28,709), ``val`` =
    PublicTest (3,589), ``test`` = PrivateTest (3,589). 7 classes: angry, disgust, fear, happy, sad,
    surprise, neutral (label = the ``emotion`` column). Sample ids ``fer2013-<row:05d>`` (the 0-based
    data row, unique across splits).

``image-folder``
    ``<root>/<split>/<class>/*.png|jpg|jpeg`` (RAF-DB "basic" and the common Kaggle copies of
    FER2013). Options: ``classes`` (the class folder names in label order; default: the sorted union
    of the class folders of every split present, so all splits agree), ``color`` (``gray`` default,
    BT.601 luma via Pillow, or ``rgb``), ``size`` (``[height, width]`` to resize to, with Pillow's
    area-averaging ``BOX`` filter when shrinking and bicubic otherwise; default: keep). Sample ids are
    ``<class>/<file name>``. Split folder names ``val``, ``valid`` and ``validation`` are accepted.
    ``max_pixels``: the size limit per image (default ``image_files.MAX_PIXELS``). An empty class
    folder is refused (an incomplete copy, not a class without samples).

Every problem with the data is a :class:`taskcodec.DatasetError` naming the file (and line, for CSV
files): malformed rows, wrong pixel counts, vote counts that are not integers >= 0 or are all 0,
unknown classes, missing or unreadable images, a split without rows. Image files are read by the one
rule of :mod:`taskcodec_plugins.image_files` (16-bit scaled, opaque alpha dropped, other modes refused).
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
from taskcodec_plugins import dataset_options as opt
from taskcodec_plugins import fer_labels
from taskcodec_plugins.image_files import MAX_PIXELS, open_image

FER_SIZE = 48
FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_BOX = re.compile(r"^\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\)$")


def _root(root: Path | None, name: str) -> Path:
    if root is None:
        raise DatasetError(f"{name}: needs a root folder (dataset.root; relative paths resolve against $TASKCODEC_DATA)")
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{name}: root {str(root)!r} does not exist (set dataset.root or $TASKCODEC_DATA)")
    return root


def _split_check(name: str, split: str, splits: Sequence[str]) -> None:
    if split not in splits:
        raise DatasetError(f"{name}: unknown split {split!r}; expected one of {list(splits)}")


def read_gray(path: Path, where: str, size: tuple[int, int] | None = None, color: str = "gray",
              max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 gray (HxW) or RGB (HxWx3) by the rule of
    :mod:`taskcodec_plugins.image_files`; optionally resize to ``size`` (h, w)."""
    from PIL import Image

    im = open_image(path, color, where=where, max_pixels=max_pixels)
    if size is not None and (im.height, im.width) != tuple(size):
        shrink = size[0] <= im.height and size[1] <= im.width
        im = im.resize((size[1], size[0]), Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8).copy()


class _ArrayDataset(Dataset):
    """Samples held as (ids, labels) with images loaded on first use into one array."""

    _ids: list[str]
    _labels: list[int]
    _images: np.ndarray | None = None

    def _load_images(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def images(self) -> np.ndarray:
        """All images of the split, ``N x H x W`` (x 3) uint8 (loaded once, then kept)."""
        if self._images is None:
            self._images = self._load_images()
        return self._images

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self._labels, dtype=np.int64)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} samples")
        return Sample(self._ids[index], self.images[index], self._labels[index])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes)) if len(self) else np.zeros(len(self.classes), int)
        return {c: int(n) for c, n in zip(self.classes, counts)}


# --------------------------------------------------------------------------- FER+
def _votes(fields: Sequence[str], where: str) -> list[int]:
    """The 10 vote counts of a label.csv row: integers >= 0, not all 0 (a row without a single vote
    is a broken row, not an image the label rules could exclude)."""
    votes = []
    for column, value in zip(fer_labels.VOTE_COLUMNS, fields):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise DatasetError(f"{where}: vote counts must be integers; the {column} count is {value!r}")
        votes.append(int(text))
    negative = [f"{c} {v}" for c, v in zip(fer_labels.VOTE_COLUMNS, votes) if v < 0]
    if negative:
        raise DatasetError(f"{where}: vote counts must be >= 0, got {', '.join(negative)}")
    if not any(votes):
        raise DatasetError(f"{where}: all {len(votes)} vote counts are 0; every FER+ image has its annotators' votes")
    return votes


class FerPlus(_ArrayDataset):
    """FER2013 images with FER+ crowd labels (see the module docstring)."""

    name = "ferplus"
    splits = ("train", "val", "test")
    description = "FER+ (FER2013 48x48 gray, 10 crowd votes each): 8 emotions; label mode majority|plurality|soft"
    classes = fer_labels.EMOTIONS
    accepted_options = ("mode",)

    def __init__(self, root: Path | None = None, split: str = "test", *, mode: str = "majority", **unknown: Any) -> None:
        opt.reject_unknown(self.name, unknown, self.accepted_options)
        _split_check(self.name, split, self.splits)
        opt.choice(self.name, "mode", mode, fer_labels.MODES)
        self.root = _root(root, self.name)
        self.split, self.mode = split, mode
        self.folder = self.root / FERPLUS_FOLDERS[split]
        self.label_file = self.folder / "label.csv"
        if not self.folder.is_dir():
            raise DatasetError(f"ferplus: split folder {str(self.folder)!r} is missing (expected the FER+ layout "
                               f"{'/, '.join(FERPLUS_FOLDERS.values())}/ under the root)")
        if not self.label_file.is_file():
            raise DatasetError(f"ferplus: label file {str(self.label_file)!r} is missing")
        self._ids, self._labels, self._files, targets = [], [], [], []
        self.excluded = {reason: 0 for reason in fer_labels.REASONS}
        self.rows = 0
        present = {e.name for e in os.scandir(self.folder)}
        seen: dict[str, int] = {}
        with open(self.label_file, newline="") as fh:
            for line, row in enumerate(csv.reader(fh), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                where = f"{self.label_file}:{line}"
                if len(row) != 2 + len(fer_labels.VOTE_COLUMNS):
                    raise DatasetError(f"{where}: expected {2 + len(fer_labels.VOTE_COLUMNS)} fields (image name, "
                                       f"face box, {len(fer_labels.VOTE_COLUMNS)} vote counts), got {len(row)}: {row!r}")
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
                result = fer_labels.label_votes(votes, mode)
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
        for i, file in enumerate(self._files):
            image = read_gray(self.folder / file, f"ferplus {self.split}")
            if image.shape != (FER_SIZE, FER_SIZE):
                raise DatasetError(f"ferplus: image {str(self.folder / file)!r} is {image.shape[0]}x{image.shape[1]}; "
                                   f"FER+ images are {FER_SIZE}x{FER_SIZE}")
            out[i] = image
        return out

    def metadata(self) -> dict[str, Any]:
        return {
            "source": "FER+ (Barsoum et al. 2016) labels on FER2013 images", "folder": FERPLUS_FOLDERS[self.split],
            "label_mode": self.mode, "classes": list(self.classes), "rows": self.rows, "images": len(self),
            "excluded": {k: v for k, v in self.excluded.items() if v}, "class_counts": self.class_counts(),
        }


# --------------------------------------------------------------------------- FER2013 CSV
class Fer2013(_ArrayDataset):
    """The official FER2013 CSV (see the module docstring)."""

    name = "fer2013"
    splits = ("train", "val", "test")
    description = "FER2013 official CSV (emotion,pixels,Usage): 7 classes; train/val/test = Training/PublicTest/PrivateTest"
    classes = FER2013_CLASSES
    accepted_options = ("file",)

    def __init__(self, root: Path | None = None, split: str = "test", *, file: str = "fer2013.csv", **unknown: Any) -> None:
        opt.reject_unknown(self.name, unknown, self.accepted_options)
        _split_check(self.name, split, self.splits)
        opt.text(self.name, "file", file, what="a CSV file name (relative to the root folder)")
        root = _root(root, self.name)
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


# --------------------------------------------------------------------------- image folders
class ImageFolder(_ArrayDataset):
    """``<root>/<split>/<class>/*.png|jpg|jpeg`` (see the module docstring)."""

    name = "image-folder"
    splits = ("train", "val", "valid", "validation", "test")
    description = "<root>/<split>/<class>/*.png|jpg (RAF-DB, Kaggle FER2013 copies); options classes, color, size"
    accepted_options = ("classes", "color", "size", "max_pixels")

    def __init__(self, root: Path | None = None, split: str = "test", *, classes: Sequence[str] | None = None,
                 color: str = "gray", size: Sequence[int] | None = None, max_pixels: int = MAX_PIXELS,
                 **unknown: Any) -> None:
        opt.reject_unknown(self.name, unknown, self.accepted_options)
        _split_check(self.name, split, self.splits)
        opt.choice(self.name, "color", color, ("gray", "rgb"))
        if size is not None:
            if (not isinstance(size, (list, tuple)) or len(size) != 2
                    or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4096 for s in size)):
                raise DatasetError(f"dataset 'image-folder': option 'size' = {size!r} is invalid; expected "
                                   "[height, width], two integers in 1..4096")
            size = (int(size[0]), int(size[1]))
        opt.text_list(self.name, "classes", classes, optional=True,
                      what="a non-empty list of distinct class folder names")
        self.max_pixels = opt.integer(self.name, "max_pixels", max_pixels, 1)
        self.root = _root(root, self.name)
        self.color, self.size, self.split = color, size, split
        self.folder = self.root / split
        if not self.folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetError(f"image-folder: split folder {str(self.folder)!r} is missing; the root has {found}")
        if classes is None:
            names: set[str] = set()
            for s in self.splits:
                if (self.root / s).is_dir():
                    names |= {p.name for p in (self.root / s).iterdir() if p.is_dir() and not p.name.startswith(".")}
            classes = sorted(names)
        self.classes = tuple(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self._ids, self._labels, self._files = [], [], []
        self.skipped = 0
        for sub in sorted(self.folder.iterdir()):
            if sub.name.startswith("."):
                continue
            if not sub.is_dir():
                self.skipped += 1
                continue
            if sub.name not in index:
                raise DatasetError(f"image-folder: class folder {str(sub)!r} is not one of the classes {list(self.classes)}")
            found = 0
            for f in sorted(sub.iterdir()):
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.suffix.lower() not in IMAGE_EXTENSIONS:
                    self.skipped += 1
                    continue
                self._ids.append(f"{sub.name}/{f.name}")
                self._labels.append(index[sub.name])
                self._files.append(f)
                found += 1
            if not found:  # an empty class folder is an incomplete copy, not a class with no samples
                raise DatasetError(f"image-folder: class folder {str(sub)!r} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
        if not self._ids:
            raise DatasetError(f"image-folder: no {'/'.join(IMAGE_EXTENSIONS)} images under {str(self.folder)!r}/<class>/")

    def _load_images(self) -> np.ndarray:
        images = [read_gray(f, f"image-folder {self.split}", self.size, self.color, self.max_pixels) for f in self._files]
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            first = images[0].shape
            odd = next(f for f, im in zip(self._files, images) if im.shape != first)
            raise DatasetError(f"image-folder: images differ in size ({str(self._files[0])!r} is {first}, {str(odd)!r} "
                               f"is {images[self._files.index(odd)].shape}); set the option size: [height, width]")
        return np.stack(images)

    def metadata(self) -> dict[str, Any]:
        return {"source": "image folders <root>/<split>/<class>/", "split_folder": self.split,
                "classes": list(self.classes), "images": len(self), "color": self.color,
                "size": list(self.size) if self.size else None, "skipped_files": self.skipped,
                "class_counts": self.class_counts()}


@taskcodec.hookimpl
def register_datasets(register: Any) -> None:
    for cls in (FerPlus, Fer2013, ImageFolder):
        register(cls)
