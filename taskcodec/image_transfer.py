"""Images handed to the local worker processes through one file rather than inside every chunk.

Pickled into each chunk, an image crossed a pipe once per rate point (a Kodak sweep: 140 MB of copies,
and system time on both sides, for 28 MB of images). Instead the runner writes each image it encodes
once into a file in the store's ``tmp/`` folder, and a chunk carries only (file, offset, shape): a
worker maps the file and views each image in place, from the page cache. Only this run writes the file, before
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


class ImageFile:
    """An append-only file of images in ``folder``; :meth:`ref` writes an image once per key."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        _remove_orphans(folder)
        self.path = folder / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.bin"
        self._file = open(self.path, "wb")
        self._refs: dict[int, ImageRef] = {}
        self._offset = 0

    def ref(self, key: int, image: np.ndarray) -> ImageRef | np.ndarray:
        """The image's place in the file, written there the first time ``key`` is asked for; an image that
        is not a uint8 array is returned as it is (it travels in the chunk, and the codec reports it)."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8):
            return image
        if key not in self._refs:
            data = np.ascontiguousarray(image)
            try:
                self._file.write(memoryview(data).cast("B"))
            except OSError as exc:
                raise StoreError(f"cannot write {self.path}: {exc} (disk full?)") from None
            self._refs[key] = ImageRef(str(self.path), self._offset, tuple(data.shape))
            self._offset += data.nbytes
        return self._refs[key]

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
