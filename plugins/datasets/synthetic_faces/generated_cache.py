"""The generated arrays of a synthetic-faces split, kept in a cache folder (the runner passes one in its store).

Generating the quickstart's 600 faces takes ~0.3 s, a fifth of a warm rerun of its board. A file holds
the images, labels and identities with their sha256, under the generator version and the options; one
that is unreadable or whose digest differs is ignored (and the split generated again), so a damaged
file never becomes other pixels.
"""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # images, labels, identities


def path(folder: Path, generator_version: str, options: dict[str, Any]) -> Path:
    key = hashlib.sha256(taskcodec.stable_json(options).encode()).hexdigest()[:32]
    return Path(folder) / f"generated-v{generator_version}-{key}.npz"


def read(file: Path) -> Arrays | None:
    """The arrays kept in ``file``, or None where it is missing, unreadable or not what was written."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as saved:
            arrays = (saved["images"], saved["labels"], saved["identities"])
            recorded = str(saved["sha256"])
    except (OSError, ValueError, KeyError, EOFError, zlib.error):
        return None
    return arrays if _sha256(arrays) == recorded else None


def write(file: Path, arrays: Arrays) -> None:
    """Keep ``arrays`` in ``file`` (atomically); a failure is skipped: the next run generates them again."""
    images, labels, identities = arrays
    digest = np.array(_sha256(arrays))
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        taskcodec.write_atomic(file, lambda f: np.savez(f, images=images, labels=labels, identities=identities,
                                                        sha256=digest), durable=False)
    except (OSError, taskcodec.TaskcodecError):
        pass


def _sha256(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()
