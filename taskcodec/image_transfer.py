"""A run's images in one file, read by the local worker processes rather than sent inside every chunk.

Pickled into each chunk, an image crossed a pipe once per rate point (a Kodak sweep: 140 MB of copies,
and system time on both sides, for 28 MB of images). Instead each image is written once into a file in
the store's ``tmp/`` folder (by :mod:`taskcodec.run_images`, as the run digests it: the file is as large
as the dataset's pixels), and a chunk carries only (file, offset, shape): a worker maps the file and
views each image in place, from the page cache. Only this run writes the file, before
submitting the chunks that read it. It is deleted when the run ends; one left by a killed run is
deleted by the next run in that store (its process is gone).
"""
from __future__ import annotations

import math
import mmap
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import StoreError

_PREFIX = "images-"


@dataclass(frozen=True)
class ImageRef:
    """Where one uint8 image lies in an :class:`ImageFile`."""

    path: str
    offset: int
    shape: tuple[int, ...]

    def load(self) -> np.ndarray:
        """The image, as a read-only view of the file mapped into this process (no copy: a Kodak image
        read with ``np.fromfile`` cost ~0.7 ms, and each is read once per rate point)."""
        count = math.prod(self.shape)
        mapped = _mapped(self.path, self.offset + count)
        if len(mapped) < self.offset + count:
            raise StoreError(f"the run's image file {self.path} is shorter than this run wrote it")
        return np.frombuffer(mapped, dtype=np.uint8, count=count, offset=self.offset).reshape(self.shape)


_MAPPED: dict[str, mmap.mmap] = {}  # the image file this process read last, mapped (one per run)


def _mapped(path: str, needed: int) -> mmap.mmap:
    """``path`` mapped read-only, mapped again when the file has grown past what ``needed`` asks for."""
    current = _MAPPED.get(path)
    if current is None or len(current) < needed:
        try:
            with open(path, "rb") as fh:
                current = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            raise StoreError(f"cannot read the run's image file {path}: {exc}") from None
        _MAPPED.clear()  # arrays still viewing an earlier mapping keep it alive
        _MAPPED[path] = current
    return current


def release_mapping() -> None:
    """Drop this process's mapping of the image file (a worker, after each chunk): the file's pages it touched
    would otherwise stay in its resident memory for the whole run, growing with the dataset."""
    _MAPPED.clear()


class ImageFile:
    """An append-only file of images in ``folder``; :meth:`ref` writes an image once per key."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        _remove_orphans(folder)
        self.path = folder / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.bin"
        self._file = open(self.path, "w+b", buffering=1 << 20)  # few large writes: FER+'s 2.3 KB images
        # key -> (offset, shape): compact (one shape tuple per distinct shape), ImageRefs are made on demand
        self._places: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._offset = 0

    def ref(self, key: int, image: np.ndarray) -> ImageRef | np.ndarray:
        """The image's place in the file, written there the first time ``key`` is asked for; an image that
        is not a uint8 array is returned as it is (it travels in the chunk, and the codec reports it)."""
        if key not in self._places:
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8):
                return image
            data = np.ascontiguousarray(image)
            try:
                self._file.write(memoryview(data).cast("B"))
            except OSError as exc:
                raise StoreError(f"cannot write {self.path}: {exc} (disk full?)") from None
            shape = self._shapes.setdefault(tuple(data.shape), tuple(data.shape))
            self._places[key] = (self._offset, shape)
            self._offset += data.nbytes
        offset, shape = self._places[key]
        return ImageRef(str(self.path), offset, shape)

    def has(self, key: int) -> bool:
        return key in self._places

    def read(self, key: int) -> np.ndarray:
        """A copy of the image written for ``key``, read with pread: not mapped, whose pages would count in
        this process's resident memory for the rest of the run."""
        offset, shape = self._places[key]
        self._file.flush()
        count = math.prod(shape)
        try:
            data = os.pread(self._file.fileno(), count, offset)
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None
        if len(data) != count:
            raise StoreError(f"the run's image file {self.path} is shorter than this run wrote it")
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)

    def flush(self) -> None:
        """Make what was written readable by the workers (call before submitting their chunks)."""
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def _remove_orphans(folder: Path) -> None:
    """Delete the image files of runs whose process no longer exists (killed before cleaning up)."""
    for path in folder.glob(f"{_PREFIX}*.bin"):
        try:
            pid = int(path.name[len(_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            pass  # not ours to judge: another user's live process, or a name we did not write
