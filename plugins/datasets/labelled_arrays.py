"""What the labelled image datasets (FER+, FER2013, image folders) share: samples held as arrays of
ids, labels and images, the root/split checks, and reading one image file (gray or RGB, resized)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from taskcodec import Dataset, DatasetError, Sample
from taskcodec_plugins.datasets.image_files import MAX_PIXELS, open_image, read_plain_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def require_root(root: Path | None, name: str) -> Path:
    if root is None:
        raise DatasetError(f"{name}: needs a root folder (dataset.root; relative paths resolve against $TASKCODEC_DATA)")
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{name}: root {str(root)!r} does not exist (set dataset.root or $TASKCODEC_DATA)")
    return root


def require_split(name: str, split: str, splits: Sequence[str]) -> None:
    if split not in splits:
        raise DatasetError(f"{name}: unknown split {split!r}; expected one of {list(splits)}")


def read_image(path: Path, where: str, size: tuple[int, int] | None = None, color: str = "gray",
              max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 gray (HxW) or RGB (HxWx3) by the rule of
    :mod:`taskcodec_plugins.datasets.image_files`; optionally resize to ``size`` (h, w)."""
    from PIL import Image

    fast = read_plain_image(path, color, max_pixels)
    if fast is not None and (size is None or fast.shape[:2] == tuple(size)):
        return fast
    im = open_image(path, color, where=where, max_pixels=max_pixels)
    if size is not None and (im.height, im.width) != tuple(size):
        shrink = size[0] <= im.height and size[1] <= im.width
        im = im.resize((size[1], size[0]), Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8).copy()


class LabelledArrays(Dataset):
    """Samples held as (ids, labels); the images loaded into one array on first use of :attr:`images`
    (training wants them all). Where a subclass can read one image (``_load_image``), a sample read before
    that is read alone: a benchmark run reads each image once and keeps none."""

    _ids: list[str]
    _labels: list[int]
    _images: np.ndarray | None = None

    def _load_images(self) -> np.ndarray:
        raise NotImplementedError

    def _load_image(self, index: int) -> np.ndarray:
        """The image of sample ``index``; default: from the whole array."""
        return self.images[index]

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
        image = self._images[index] if self._images is not None else self._load_image(index)
        return Sample(self._ids[index], image, self._labels[index])

    def ids_and_labels(self) -> list[tuple[str, int]]:
        return list(zip(self._ids, self._labels))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes)) if len(self) else np.zeros(len(self.classes), int)
        return {c: int(n) for c, n in zip(self.classes, counts)}


