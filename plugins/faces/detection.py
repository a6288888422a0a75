"""Face detection with facenet-pytorch's MTCNN (its weights ship in the wheel), keeping the
central face, and a cache that detects each original image only once.

:class:`CentralFaceDetector` runs MTCNN with every face kept and returns, per image, the
face whose box centre is nearest the image centre: on LFW the face of interest is the
central one, and taking the largest or most confident face instead costs accuracy
(96.3% vs 99.3%, as reported to facenet-pytorch:
https://github.com/timesler/facenet-pytorch/issues/120). Images where MTCNN's default
thresholds find nothing get a second pass with relaxed thresholds; a record says which
pass found the face. No face at all: ``None``.

:class:`LandmarkCache` stores records in a folder, keyed by the sha256 of the image file's
bytes, as JSON chunk files written atomically (temporary name, then rename): a detection
pass killed at any point resumes where it stopped, and the same file under another root
is not detected again.

Detections are float computations whose last bits depend on the CPU's SIMD kernels: on LFW, 618 or more
of the 7,701 View 2 crops came out different between an Intel and an AMD machine. So the landmarks are
data: ``landmarks/<detector id>.json.gz`` (shipped in this package, keyed like the cache) holds the records
of every LFW image the boards use, and those records win over the cache and over detection; only images
it lacks are detected locally (the LFW dataset's metadata counts both).

torch and facenet-pytorch are imported inside functions (``taskcodec.ensure_torchvision`` first,
so that torchvision imports next to a CPU torch).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

import taskcodec

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)  # MTCNN's P-, R-, O-net thresholds (facenet-pytorch defaults)
RELAXED_THRESHOLDS = (0.4, 0.5, 0.5)  # second pass for images where the defaults find no face
SELECTION_VERSION = "central-1"  # bump when the choice of face or the record format changes


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB, by the datasets' one rule (taskcodec_plugins.datasets.image_files)."""
    from taskcodec_plugins.datasets.image_files import read_image_file

    return read_image_file(path, "rgb")


def pick_central(boxes: np.ndarray, shape: tuple[int, ...]) -> int:
    """Index of the box (x1, y1, x2, y2 rows) whose centre is nearest the centre of an image of ``shape``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    bx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    by = (boxes[:, 1] + boxes[:, 3]) / 2.0
    return int(np.argmin((bx - cx) ** 2 + (by - cy) ** 2))


class CentralFaceDetector:
    """MTCNN (facenet-pytorch) returning the central face's box and 5 landmarks per image."""

    def __init__(self, device: str = "cpu", min_face_size: int = 20, relaxed: bool = True):
        self.device = device
        self.min_face_size = int(min_face_size)
        self.relaxed = bool(relaxed)
        self._nets: dict[tuple[float, ...], Any] = {}

    def identity(self) -> str:
        """What the records depend on: selection rule, thresholds, face size, facenet-pytorch version."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            fp = version("facenet-pytorch")
        except PackageNotFoundError:  # pragma: no cover
            fp = "unknown"
        passes = [DEFAULT_THRESHOLDS] + ([RELAXED_THRESHOLDS] if self.relaxed else [])
        blob = json.dumps([SELECTION_VERSION, fp, self.min_face_size, passes])
        return f"mtcnn-{SELECTION_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def _net(self, thresholds: tuple[float, ...]) -> Any:
        if thresholds not in self._nets:
            from taskcodec import ensure_torchvision

            ensure_torchvision()
            from facenet_pytorch import MTCNN

            self._nets[thresholds] = MTCNN(keep_all=True, select_largest=False, min_face_size=self.min_face_size,
                                           thresholds=list(thresholds), device=self.device)
        return self._nets[thresholds]

    def detect(self, images: Sequence[np.ndarray]) -> list[dict[str, Any] | None]:
        """One record (``box``, ``points`` (5 x [x, y]), ``prob``, ``faces``, ``pass``) or None per image."""
        out: list[dict[str, Any] | None] = [self._detect_one(img, DEFAULT_THRESHOLDS, "default") for img in images]
        if self.relaxed:
            for i, record in enumerate(out):
                if record is None:
                    out[i] = self._detect_one(images[i], RELAXED_THRESHOLDS, "relaxed")
        return out

    def _detect_one(self, image: np.ndarray, thresholds: tuple[float, ...], name: str) -> dict[str, Any] | None:
        import torch

        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        with torch.inference_mode():
            boxes, probs, points = self._net(thresholds).detect(np.ascontiguousarray(image)[None], landmarks=True)
        boxes, probs, points = boxes[0], probs[0], points[0]
        if boxes is None or len(boxes) == 0:
            return None
        k = pick_central(np.stack(list(boxes)), image.shape)
        return {
            "box": [round(float(v), 3) for v in boxes[k]],
            "points": [[round(float(x), 3), round(float(y), 3)] for x, y in points[k]],
            "prob": round(float(probs[k]), 6),
            "faces": int(len(boxes)),
            "pass": name,
        }


_worker_detector: CentralFaceDetector | None = None


def _init_worker(device: str, min_face_size: int, relaxed: bool) -> None:
    """A detection worker: one thread (the workers share the cores between them)."""
    global _worker_detector
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    _worker_detector = CentralFaceDetector(device, min_face_size, relaxed)


def _detect_in_worker(items: list[Any]) -> list[dict[str, Any] | None]:
    assert _worker_detector is not None
    return _worker_detector.detect([load_rgb(i) if isinstance(i, (str, Path)) else i for i in items])


class ParallelDetector:
    """:class:`CentralFaceDetector` over ``workers`` single-threaded processes (spawned: torch may
    already run threads here). MTCNN runs many small operations: on a busy 2-core machine two
    one-thread processes detected ~3x faster than one two-thread process. Items are images or paths."""

    def __init__(self, detector: CentralFaceDetector, workers: int | None = None):
        self.detector = detector
        self.workers = max(1, int(workers if workers is not None else _available_cpus()))
        self._pool: Any = None

    def identity(self) -> str:
        return self.detector.identity()

    def detect(self, items: Sequence[Any]) -> list[dict[str, Any] | None]:
        items = list(items)
        if self.workers <= 1 or len(items) < 2:
            return _detect_local(self.detector, items)
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            d = self.detector
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(d.device, d.min_face_size, d.relaxed))
        size = max(1, -(-len(items) // (4 * self.workers)))
        parts = [items[i : i + size] for i in range(0, len(items), size)]
        return [r for part in self._pool.map(_detect_in_worker, parts) for r in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _detect_local(detector: CentralFaceDetector, items: list[Any]) -> list[dict[str, Any] | None]:
    return detector.detect([load_rgb(i) if isinstance(i, (str, Path)) else i for i in items])


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _write_json_atomic(path: Path, value: Any) -> None:
    taskcodec.write_atomic(path, json.dumps(value, separators=(",", ":"), sort_keys=True))


SHIPPED_LANDMARKS = Path(__file__).with_name("landmarks")


def shipped_landmarks(detector_id: str) -> dict[str, dict[str, Any]]:
    """The shipped records of ``detector_id`` (sha256 of the image file -> record); empty if none ship."""
    import gzip

    path = SHIPPED_LANDMARKS / f"{detector_id}.json.gz"
    if not path.is_file():
        return {}
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise taskcodec.DatasetError(f"{path}: the shipped landmarks are damaged ({exc}); reinstall taskcodec") from exc


class LandmarkCache:
    """Detection records keyed by image-file sha256, in ``folder/<detector id>/chunk-*.json``.

    A key mapped to ``{"face": null}`` is an image where no face was found (cached too)."""

    def __init__(self, folder: str | Path, detector_id: str):
        self.folder = Path(folder) / detector_id
        self.detector_id = detector_id
        self._records: dict[str, dict[str, Any]] | None = None
        self.shipped: dict[str, dict[str, Any]] = {}

    def records(self) -> dict[str, dict[str, Any]]:
        if self._records is None:
            merged: dict[str, dict[str, Any]] = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.glob("chunk-*.json")):
                    try:
                        merged.update(json.loads(path.read_text()))
                    except (OSError, ValueError):  # a damaged chunk: those images are detected again
                        continue
            self.shipped = shipped_landmarks(self.detector_id)
            merged.update(self.shipped)  # the shipped records win: the same crops on every machine
            self._records = merged
        return self._records

    def add(self, records: dict[str, dict[str, Any]]) -> None:
        if not records:
            return
        name = hashlib.sha256("\n".join(sorted(records)).encode()).hexdigest()[:20]
        _write_json_atomic(self.folder / f"chunk-{name}.json", records)
        self.records().update(records)


def detect_files(
    paths: Sequence[Path],
    keys: Sequence[str],
    cache: LandmarkCache,
    detector: CentralFaceDetector | ParallelDetector,
    *,
    chunk: int = 128,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any] | None]:
    """The detection record (or None) for each file, detecting only those the cache lacks."""
    have = cache.records()
    todo = [i for i, k in enumerate(keys) if k not in have]
    todo = list({keys[i]: i for i in reversed(todo)}.values())[::-1]  # one detection per distinct file
    if todo:
        from tqdm import tqdm

        if log:
            log(f"face detection: MTCNN on {len(todo)} of {len(keys)} images (cached in {cache.folder}); "
                "resumable: an interrupted pass keeps every finished chunk")
        start = time.perf_counter()
        with tqdm(total=len(todo), desc="MTCNN", unit="img", disable=not progress, mininterval=10.0) as bar:
            for group in _chunks(todo, chunk):
                if isinstance(detector, ParallelDetector):
                    records = detector.detect([paths[i] for i in group])  # the workers read the files
                else:
                    records = detector.detect([load_rgb(paths[i]) for i in group])
                cache.add({keys[i]: (r if r is not None else {"face": None}) for i, r in zip(group, records)})
                bar.update(len(group))
        if log:
            log(f"face detection: {len(todo)} images in {time.perf_counter() - start:.0f} s")
    records = cache.records()
    return [None if "face" in records[k] and records[k]["face"] is None else records[k] for k in keys]


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
