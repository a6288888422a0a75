"""Where a run's images are once digested: not in the runner's memory.

Each image is read from the dataset once, digested, and written into the run's image file
(:class:`taskcodec.image_transfer.ImageFile`, which the local workers read too); the runner keeps only its
place. So the main process holds no dataset (an LFW rate point's 7,701 aligned crops: 248 MB), and the pixels
coded are exactly the pixels digested. A run expecting nothing to compute (its benchmark finished before in
this store) writes no file: what it turns out to need after all is read from the dataset again and checked
against its digest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset, SampleInfo
from .errors import DatasetError
from .hashing import image_digest
from .image_transfer import ImageFile, ImageRef


LOAD_BLOCK = 256  # images read and digested by the threads at a time (held until written to the image file)


class RunImages:
    """The images of one run's samples, by dataset index."""

    def __init__(self, dataset: Dataset, folder: Path, write: bool) -> None:
        self.dataset, self.folder = dataset, folder
        self.file: ImageFile | None = ImageFile(folder) if write else None
        self._digests: dict[int, str] = {}
        self._odd: dict[int, object] = {}  # not uint8 arrays: kept as they are, for the codec to report

    def load(self, threads: int) -> tuple[list[SampleInfo], list[str]]:
        """Read the dataset: every sample's id, label and image shape, and its image's digest; the images
        stay here. In ``threads`` threads where the dataset allows it (decoding and hashing release the GIL,
        and this is all that stands between the workers and their work), LOAD_BLOCK images at a time."""
        dataset = self.dataset
        infos: list[SampleInfo] = []
        digests: list[str] = []

        shapes: dict[tuple[int, ...], tuple[int, ...]] = {}  # one tuple per distinct shape

        def keep(index: int, sample, digest: str) -> None:
            shape = tuple(getattr(sample.image, "shape", ()))
            infos.append(SampleInfo(sample.id, sample.label, shapes.setdefault(shape, shape)))
            digests.append(digest)
            self.add(index, sample.image, digest)

        if not (dataset.parallel_reads and threads > 1 and len(dataset) > 1):
            for index, sample in enumerate(dataset):
                keep(index, sample, image_digest(sample.image))
            return infos, digests

        def read(index: int):
            sample = dataset[index]
            return sample, image_digest(sample.image)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for start in range(0, len(dataset), LOAD_BLOCK):
                block = range(start, min(start + LOAD_BLOCK, len(dataset)))
                for index, (sample, digest) in zip(block, pool.map(read, block)):
                    keep(index, sample, digest)
        return infos, digests

    def add(self, index: int, image: np.ndarray, digest: str) -> None:
        """Keep ``image`` (just digested as ``digest``) out of memory."""
        self._digests[index] = digest
        if self.file is not None:
            if self.file.ref(index, image) is image:
                self._odd[index] = image

    def get(self, index: int) -> np.ndarray:
        """The image of sample ``index``: a private copy, never a view of the dataset's own arrays."""
        if index in self._odd:
            return self._odd[index]  # type: ignore[return-value]
        if self.file is not None and self.file.has(index):
            return self.file.read(index)
        sample = self.dataset[index]  # no file: read again, and make sure it is what was digested
        if image_digest(sample.image) != self._digests[index]:
            raise DatasetError(
                f"dataset {getattr(self.dataset, 'name', type(self.dataset).__name__)!r}: sample {sample.id!r} "
                f"(index {index}) has other pixels than when this run read it first: did its files change during "
                f"the run?"
            )
        return sample.image

    def ref(self, index: int) -> ImageRef | np.ndarray:
        """Its place in the image file, for local workers (written there now if this run wrote no file yet)."""
        if index in self._odd:
            return self._odd[index]  # type: ignore[return-value]
        if self.file is None:
            self.file = ImageFile(self.folder)
        return self.file.ref(index, None if self.file.has(index) else self.get(index))  # type: ignore[arg-type]

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
