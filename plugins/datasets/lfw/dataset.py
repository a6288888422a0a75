"""``lfw``: Labeled Faces in the Wild for face verification, with the official pair files.

Layout under ``root`` (the folder named in the config, relative to ``$TASKCODEC_DATA``)::

    root/pairs.txt, pairsDevTrain.txt, pairsDevTest.txt     official pair files
    root/lfw-deepfunneled/<Name>/<Name>_<NNNN>.jpg           or lfw_funneled/, lfw/ (250 x 250 JPEG)

Splits: ``test`` (View 2, ``pairs.txt``: 10 folds x (300 matched + 300 mismatched) = 6000
pairs over 7701 images), ``dev-train`` and ``dev-test`` (View 1, ``pairsDevTrain.txt`` 1100 +
1100 and ``pairsDevTest.txt`` 500 + 500, one fold each). The samples are the distinct images
that the pairs name, in order of first mention; id ``Name/Name_0001``, label ``Name``.
``dataset.pairs`` lists ``(fold, same, id1, id2)`` for the verification task. ``view1-only``: the
images that the View 1 files name and ``pairs.txt`` does not (1,355 on the official files), with
no pairs: training data for face codecs that never sees an evaluated image (the people overlap).

Options:

- ``align``: ``sphereface`` (default; 112 x 96 crops), ``arcface`` (112 x 112), ``facenet``
  (160 x 160 box crop, margin 14) or ``none`` (the full 250 x 250 image: compress-then-align,
  the task then aligns the decoded image itself). Aligned crops come from MTCNN's landmarks on
  the original JPEG (central face, see ``face_detection``), detected once per image and cached
  in the store (``cache_dir``). Where no face is found, the crop uses the median landmarks
  (or box) of all detected faces of the dataset: such fallbacks are counted and listed in
  ``metadata()`` (on deep-funneled View 2: 1 of 7701 images).
- ``images``: the image folder under root (default: the first of lfw-deepfunneled,
  lfw_funneled, lfw-funneled, lfw that exists, else root itself).
- ``pairs_file``: another pair file (path relative to root, or absolute) instead of the split's.
- ``folds``: a list of distinct fold numbers (1-based) to keep, e.g. ``[1]`` for a quick run (a bare
  number such as ``1`` is refused: write ``[1]``).

Images are read by the one rule of :mod:`taskcodec_plugins.datasets.image_files`. Pair files with a wrong
field count, non-integer image numbers, a line count that disagrees with the header's folds, a matched
pair of an image with itself, a mismatched pair of one person or a pair listed twice are refused with
file and line (:func:`parse_pairs`); so are unknown or mistyped options.
- ``download``: fetch missing pair files (sha256-checked) and the image archive when online.
- ``progress``: show the detection progress bar (default true).
- ``detect_workers``: processes for the detection pass (default: one per available core).
"""
from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import taskcodec
from taskcodec import Dataset, DatasetError, Sample, fetch_file, hookimpl, sha256_file
from taskcodec_plugins.datasets import options

from taskcodec_plugins.faces.alignment import ALIGN_MODES, TEMPLATES, align
from taskcodec_plugins.faces.detection import (CentralFaceDetector, LandmarkCache, ParallelDetector, detect_files,
                                              load_rgb)

BASE_URL = "http://vis-www.cs.umass.edu/lfw/"
PAIR_FILES = {"test": "pairs.txt", "dev-train": "pairsDevTrain.txt", "dev-test": "pairsDevTest.txt"}
VIEW1_ONLY = "view1-only"  # the images only View 1 names: face training data disjoint from View 2's images
PAIR_SHA256 = {  # the official files (PROTOCOLS.md)
    "pairs.txt": "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592",
    "pairsDevTrain.txt": "1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa",
    "pairsDevTest.txt": "7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c",
}
# From the official pair files (PAIR_SHA256; recomputed by tests/plugins/datasets/test_lfw_dataset.py):
# the 1,355 View-1-only images show 1,008 people, 378 of whom (672 of the images) View 2's pairs also show.
VIEW1_ONLY_PEOPLE = {"images": 1355, "people": 1008, "people_in_view2": 378, "images_of_those": 672}
IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw_funneled", "lfw-funneled", "lfw")
ARCHIVE = ("lfw-deepfunneled.tgz", "68331da3eb755a505a502b5aacb3c201")  # md5 as the LFW site lists it


@dataclass(frozen=True)
class Pair:
    fold: int  # 1-based
    same: bool
    id1: str
    id2: str


def image_id(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}"


def parse_pairs(path: Path) -> tuple[list[Pair], int, int]:
    """Read an LFW pair file: (pairs, folds, pairs per class and fold).

    The first line is ``folds<TAB>n`` (View 2) or ``n`` (View 1, one fold); then each fold
    holds ``n`` matched lines ``name i j`` followed by ``n`` mismatched lines ``name1 i name2 j``.
    Refused, naming the file and line: a wrong field count, image numbers that are not integers
    >= 1, a line count that disagrees with the header's folds, a matched pair of an image with
    itself, a mismatched pair naming one person twice, and a pair listed twice."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the pair file ({exc})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{path}: empty pair file")
    folds, n = _pairs_header(path, lines[0])
    _check_line_count(path, len(lines) - 1, folds, n)
    pairs: list[Pair] = []
    seen: dict[frozenset[str], int] = {}
    for index, line in enumerate(lines[1:]):
        lineno = index + 2
        fold, within = divmod(index, 2 * n)
        try:
            pair = _parse_pair_line(line, fold + 1, same=within < n)
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: {exc} (line {line!r})") from None
        key = frozenset((pair.id1, pair.id2))
        if key in seen:
            raise DatasetError(f"{path}:{lineno}: the pair {pair.id1} / {pair.id2} is listed twice (first on line "
                               f"{seen[key]}); each pair counts once in the protocol")
        seen[key] = lineno
        pairs.append(pair)
    return pairs, folds, n


def _pairs_header(path: Path, line: str) -> tuple[int, int]:
    try:
        numbers = [int(v) for v in line.split()]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers) < 1:
        raise DatasetError(f"{path}:1: expected a header 'folds<TAB>pairs' or 'pairs' (integers >= 1), got {line!r}")
    return (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])


def _check_line_count(path: Path, found: int, folds: int, n: int) -> None:
    expected = folds * 2 * n
    if found != expected:
        whole = f"= {found // (2 * n)} folds" if found % (2 * n) == 0 else "not a whole number of folds"
        raise DatasetError(f"{path}: the header promises {folds} fold(s) x 2 x {n} pairs = {expected} lines "
                           f"after it, the file has {found} ({whole} of 2 x {n})")


def _image_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"image number {text!r} is not an integer") from None
    if number < 1:
        raise ValueError(f"image number {number}: image numbers start at 1")
    return number


def _parse_pair_line(line: str, fold: int, same: bool) -> Pair:
    """One pair line; ValueError says what is wrong with it."""
    fields = line.split()
    if same:
        if len(fields) != 3:
            raise ValueError(f"a matched pair needs 3 fields 'name i j', got {len(fields)}")
        a, b = _image_number(fields[1]), _image_number(fields[2])
        if a == b:
            raise ValueError(f"a matched pair compares image {a} of {fields[0]} with itself")
        return Pair(fold, True, image_id(fields[0], a), image_id(fields[0], b))
    if len(fields) != 4:
        raise ValueError(f"a mismatched pair needs 4 fields 'name1 i name2 j', got {len(fields)}")
    a, b = _image_number(fields[1]), _image_number(fields[3])
    if fields[0] == fields[2]:
        raise ValueError(f"a mismatched pair names {fields[0]} twice; it must name two different people")
    return Pair(fold, False, image_id(fields[0], a), image_id(fields[2], b))


OPTIONS = ("align", "images", "pairs_file", "folds", "download", "progress", "device", "detect_workers")
FOLDS_ACCEPTED = "a non-empty list of distinct fold numbers in 1..{n} (e.g. [1] or [1, 2]), or null for all"


def _check_folds_type(folds: Any) -> None:
    """``folds`` is a list of fold numbers (their upper bound is checked once the pair file is read)."""
    if folds is None:
        return
    ok = (isinstance(folds, (list, tuple)) and folds and len(set(folds)) == len(folds)
          and all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in folds))
    if not ok:
        raise taskcodec.invalid_option(LFW, "folds", folds, FOLDS_ACCEPTED.format(n="<folds in the pair file>"))


def find_image_folder(root: Path, name: str | None) -> Path:
    if name is not None:
        folder = root / name
        if not folder.is_dir():
            raise DatasetError(f"dataset 'lfw': image folder {folder} does not exist")
        return folder
    for candidate in IMAGE_FOLDERS:
        if (root / candidate).is_dir():
            return root / candidate
    return root


class LFW(Dataset):
    """LFW images named by a pair file, aligned for an embedder (see the module doc)."""

    name = "lfw"
    splits = tuple(PAIR_FILES) + (VIEW1_ONLY,)
    needs_root = True
    wants_cache_dir = True
    description = "Labeled Faces in the Wild: official pairs (View 2 'test', View 1 'dev-*'); MTCNN-aligned crops"
    accepted_options = OPTIONS

    def __init__(self, root: Path | None, split: str = "test", cache_dir: Path | None = None, align: str = "sphereface",
                 images: str | None = None, pairs_file: str | None = None, folds: list[int] | None = None,
                 download: bool = False, progress: bool = True, device: str = "cpu",
                 detect_workers: int | None = None, **unknown: Any):
        options.reject_unknown(self, unknown, self.accepted_options)
        if root is None:
            raise DatasetError("dataset 'lfw' needs a root folder (holding pairs.txt and lfw-deepfunneled/)")
        if split not in PAIR_FILES and split != VIEW1_ONLY:
            raise DatasetError(f"dataset 'lfw': unknown split {split!r}; splits: {list(PAIR_FILES) + [VIEW1_ONLY]}")
        options.choice(self, "align", align, ALIGN_MODES)
        options.text(self, "images", images, optional=True, what="an image folder name under the root")
        options.text(self, "pairs_file", pairs_file, optional=True, what="a pair file path (relative to the root)")
        _check_folds_type(folds)
        download, progress = options.boolean(self, "download", download), options.boolean(self, "progress", progress)
        options.text(self, "device", device, what="a torch device name such as 'cpu' or 'cuda'")
        options.integer(self, "detect_workers", detect_workers, 1, optional=True)
        self.root, self.split, self.align_mode = Path(root), split, align
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress, self.device, self.detect_workers = bool(progress), device, detect_workers
        pair_path = Path(pairs_file) if pairs_file else Path(PAIR_FILES.get(split, PAIR_FILES["test"]))
        self.pair_path = pair_path if pair_path.is_absolute() else self.root / pair_path
        if download:
            self._download(images)
        if not self.pair_path.is_file():
            raise DatasetError(self._missing_message(f"pair file {self.pair_path}"))
        self.image_dir = find_image_folder(self.root, images)
        pairs, self.n_folds, self.per_fold = parse_pairs(self.pair_path)
        if folds is not None:
            if any(f > self.n_folds for f in folds):
                raise taskcodec.invalid_option(self, "folds", folds, f"{FOLDS_ACCEPTED.format(n=self.n_folds)} "
                                                                     f"({self.pair_path.name} has {self.n_folds} fold(s))")
            pairs = [p for p in pairs if p.fold in set(folds)]
        self.pairs: list[tuple[int, bool, str, str]] = [(p.fold, p.same, p.id1, p.id2) for p in pairs]
        self.ids = list(dict.fromkeys(i for p in pairs for i in (p.id1, p.id2)))
        if split == VIEW1_ONLY:  # training images: named by View 1 only, never by the evaluated View 2 pairs
            view2 = set(self.ids)
            view1 = [p for name in ("dev-train", "dev-test") for p in parse_pairs(self.root / PAIR_FILES[name])[0]]
            self.ids = [i for i in dict.fromkeys(i for p in view1 for i in (p.id1, p.id2)) if i not in view2]
            self.pairs = []
        self.paths = [self.image_dir / f"{i}.jpg" for i in self.ids]
        missing = [i for i, p in zip(self.ids, self.paths) if not p.is_file()]
        if missing:
            raise DatasetError(
                f"dataset 'lfw': {len(missing)} of the {len(self.ids)} images that {self.pair_path.name} names are "
                f"missing in {self.image_dir}: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. "
                + self._missing_message("the images")
            )
        self.labels = [i.split("/")[0] for i in self.ids]
        self.classes = ()
        self._records: list[dict[str, Any] | None] | None = None
        self._fallback: dict[str, Any] | None = None
        self._detector_id: str | None = None

    # ------------------------------------------------------------------ files
    def _missing_message(self, what: str) -> str:
        names = ", ".join(PAIR_FILES.values())
        return (f"{what} not found. Put the official LFW files under {self.root}: the pair files ({names}) and the "
                f"image folder {IMAGE_FOLDERS[0]}/<Name>/<Name>_<NNNN>.jpg (from {BASE_URL}{ARCHIVE[0]}), "
                "or set `download: true` in the dataset options when online")

    def _download(self, images: str | None) -> None:
        for name, digest in PAIR_SHA256.items():
            fetch_file(BASE_URL + name, self.root / name, digest)
        if images is None and not any((self.root / f).is_dir() for f in IMAGE_FOLDERS):
            archive = fetch_file(BASE_URL + ARCHIVE[0], self.root / ARCHIVE[0], None)
            md5 = hashlib.md5(archive.read_bytes()).hexdigest()
            if md5 != ARCHIVE[1]:
                raise DatasetError(f"{archive}: md5 {md5} differs from the official {ARCHIVE[1]}; delete it and retry")
            with tarfile.open(archive) as tar:
                tar.extractall(self.root, filter="data")

    # ------------------------------------------------------------------ alignment
    def _ensure_records(self) -> list[dict[str, Any] | None]:
        if self._records is None:
            if self.align_mode == "none":
                self._records = [None] * len(self.ids)
                return self._records
            if self.cache_dir is None:
                raise DatasetError("dataset 'lfw': aligned crops need a cache folder for the detected landmarks "
                                   "(cache_dir; the runner passes one in the store)")
            detector = ParallelDetector(CentralFaceDetector(device=self.device), self.detect_workers)
            self._detector_id = detector.identity()
            cache = LandmarkCache(self.cache_dir / "landmarks", self._detector_id)
            keys = [sha256_file(p) for p in self.paths]
            self._landmarks_shipped = None
            log = (lambda m: print(m, flush=True)) if self.progress else None
            try:
                self._records = detect_files(self.paths, keys, cache, detector, progress=self.progress, log=log)
            finally:
                detector.close()
            self._landmarks_shipped = sum(1 for k in keys if k in cache.shipped)
            found = [r for r in self._records if r is not None]
            if not found:
                raise DatasetError(f"dataset 'lfw': MTCNN found no face in any of {len(self.ids)} images")
            self._fallback = {
                "box": np.median([r["box"] for r in found], axis=0).round(3).tolist(),
                "points": np.median([r["points"] for r in found], axis=0).round(3).tolist(),
            }
        return self._records

    def record(self, index: int) -> dict[str, Any]:
        """The detection record used to align sample ``index`` (the median fallback where none)."""
        records = self._ensure_records()
        return records[index] if records[index] is not None else dict(self._fallback or {}, fallback=True)

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        image = load_rgb(self.paths[index])
        if self.align_mode != "none":
            image = align(image, self.record(index), self.align_mode)
        return Sample(id=self.ids[index], image=image, label=self.labels[index])

    @classmethod
    def split_relation(cls, train_split: str, eval_split: str) -> str | None:
        if train_split == VIEW1_ONLY and eval_split == "test":
            p = VIEW1_ONLY_PEOPLE
            return (f"no image of the evaluated View 2 pairs; {p['people_in_view2']} of its {p['people']} people "
                    f"({p['images_of_those']} of its {p['images']} images) appear in View 2 too (official pair files)")
        if {train_split, eval_split} <= set(PAIR_FILES) and "test" in (train_split, eval_split):
            return "View 1 and View 2 pairs share images and people (LFW's views are not disjoint)"
        return None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "source": "Labeled Faces in the Wild (Huang et al., UMass)",
            "image_folder": self.image_dir.name,
            "pairs_file": self.pair_path.name,
            "pairs_sha256": sha256_file(self.pair_path),
            "official_pairs_file": PAIR_SHA256.get(self.pair_path.name) == sha256_file(self.pair_path),
            "pairs": len(self.pairs),
            "matched_pairs": sum(1 for p in self.pairs if p[1]),
            "folds": sorted({p[0] for p in self.pairs}),
            "images": len(self.ids),
            "identities": len(set(self.labels)),
            "align": self.align_mode,
        }
        if self.align_mode != "none":
            records = self._ensure_records()
            fallbacks = [self.ids[i] for i, r in enumerate(records) if r is None]
            meta.update({
                "crop_size": list(TEMPLATES[self.align_mode][1]),
                "detector": self._detector_id,
                "face_selection": "MTCNN (facenet-pytorch), all faces kept, the one nearest the image centre",
                "alignment_fallbacks": len(fallbacks),
                "fallback_images": fallbacks,
                "fallback_rule": "median landmarks/box of the detected faces",
                "relaxed_detections": [self.ids[i] for i, r in enumerate(records) if r and r.get("pass") == "relaxed"],
                "images_with_several_faces": sum(1 for r in records if r is not None and r["faces"] > 1),
                # landmarks from the file shipped with taskcodec (the same crops on every CPU) vs detected here
                "landmarks_shipped": self._landmarks_shipped,
                "landmarks_detected_here": len(self.ids) - self._landmarks_shipped,
            })
        return meta
