"""The shared machinery of face-embedding verification tasks (``mobilefacenet``, ``facenet``).

A subclass supplies the network (:meth:`FaceEmbedderTask.load_network`), its input size and
its alignment template; this base class does the rest:

- ``predict``: one output per image: the L2-normalised embedding as base64 of float16
  (little-endian), a compact string (~0.7 kB for 256 dims; the store keeps one per image, codec
  and rate point), or ``None`` when no face was found (compress-then-align only).
- flip fusion (option ``flip``, default true): the embedding of the image and of its mirror
  image, concatenated, then normalised (cosine of the concatenations, as in the MobileFaceNet
  and insightface LFW evaluations).
- ``align_on_decoded`` (option; default null): the images are full frames (dataset option
  ``align: none``): MTCNN runs on each decoded image, the central face is aligned to this
  template (``sphereface``, ``arcface`` or ``facenet``); no face -> ``None``, and the pairs it
  is in count as wrong decisions.
- ``workers``: on the CPU, ``predict`` spreads each batch over this many single-threaded worker
  processes (spawned; each loads the network, and the detector in compress-then-align mode);
  default: one per available core; 1 runs in this process. On a busy 2-core machine two
  one-thread processes embedded 2.3x faster than one two-thread process (87 vs 39 crops/s: OpenMP
  threads wait for each other when the cores are shared). Outputs agree to float rounding.
- ``sample_rows``: one row per pair of ``dataset.pairs``: ``fold, same, score`` (cosine
  similarity, NaN when a detection failed), ``image1, image2``, ``failed1, failed2`` (1 where
  that image has no embedding) and, when the runner gave the outputs on the uncompressed images
  (:meth:`reference_outputs`), ``clean_score`` (the same pair's score on clean images; for the
  ``verification-fixed-threshold`` metric).
- ``batch_size``: images per forward pass (default: 32 on the CPU, 128 on a GPU). On the CPU larger
  batches are slower: a batch of 128 crops (256 with their mirror images) holds ~700 MB of
  activations, and on 2 cores MobileFaceNet embedded 136 crops/s in batches of 128 against 226-236 in
  batches of 16-32 (outputs identical here for 1, 16, 32 and 128, fp32 and bf16, AVX2 and AVX-512).
- ``precision``: ``auto`` (bf16 autocast + channels_last where the CPU has native bf16 or on a
  bf16 GPU, else fp32), ``bf16`` or ``fp32``. Inputs are RGB, normalised (x - 127.5) / 128.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

import taskcodec
from taskcodec import ConfigError, Dataset, Task, TaskContext, TaskcodecError, stable_json

from taskcodec_plugins.faces.alignment import TEMPLATES, align
from taskcodec_plugins.torch_utils import batch_for_device, resolve_precision, state_digest

MIN_POOL_BATCH = 16  # smaller batches run in this process
OUTPUT_FORMAT = "f16-b64-1"  # bump when the output encoding changes (part of the fingerprint)
BASE_DEFAULTS: dict[str, Any] = {"flip": True, "precision": "auto", "batch_size": None, "align_on_decoded": None,
                                 "workers": None}


def encode_embedding(vector: np.ndarray) -> str:
    v = np.asarray(vector, dtype=np.float32)
    v = v / max(float(np.linalg.norm(v)), 1e-12)
    return base64.b64encode(v.astype("<f2").tobytes()).decode("ascii")


def decode_embedding(text: str) -> np.ndarray:
    v = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class FaceEmbedderTask(Task):
    """Base class: a face embedder evaluated on pairs (see the module doc)."""

    task_type = "verification"
    default_metrics = ("verification", "verification-fixed-threshold")
    input_size: ClassVar[tuple[int, int]] = (112, 96)  # (height, width)
    template: ClassVar[str] = "sphereface"
    extra_defaults: ClassVar[dict[str, Any]] = {}
    # what a config's options are checked against: subclasses declare (*BASE_DEFAULTS, *extra_defaults)
    accepted_options: ClassVar[tuple[str, ...]] = tuple(BASE_DEFAULTS)
    inference: ClassVar[str] = "eager-1"  # how inference_model() runs the weights: part of the fingerprint

    def __init__(self, **options: Any) -> None:
        allowed = {**BASE_DEFAULTS, **self.extra_defaults}
        unknown = set(options) - set(allowed)
        if unknown:
            raise taskcodec.unknown_options(self, unknown, allowed)
        o = {**allowed, **options}
        checks = {"flip": taskcodec.Accept.boolean, "precision": taskcodec.Accept.one_of("auto", "bf16", "fp32"),
                  "batch_size": taskcodec.Accept.integer(1, optional=True),
                  "workers": taskcodec.Accept.integer(1, optional=True),
                  "align_on_decoded": taskcodec.Accept.one_of(*sorted(TEMPLATES), optional=True)}
        for key, check in checks.items():
            taskcodec.read_option(self, key, o[key], check)
        if o["align_on_decoded"] is not None and TEMPLATES[o["align_on_decoded"]][1] != self.input_size:
            raise ConfigError(f"task {self.name!r}: align_on_decoded template {o['align_on_decoded']!r} makes "
                              f"{TEMPLATES[o['align_on_decoded']][1]} crops, the network takes {self.input_size}")
        self._o = o
        super().__init__(**options)
        self.model: Any = None
        self.weights_sha256: str | None = None
        self.model_info: dict[str, Any] = {}
        self._device, self._precision = "cpu", "fp32"
        self._detector: Any = None
        self._workers = 1
        self._pool: Any = None
        self._clean: dict[str, np.ndarray | None] | None = None
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ subclass hooks
    def load_network(self, options: dict[str, Any], log: Any) -> tuple[Any, dict[str, Any]]:
        """(torch module in eval mode, facts for provenance such as the weights file)."""
        raise NotImplementedError

    def inference_model(self, model: Any) -> Any:
        """The module that runs (e.g. with batch norms folded); the weights hash is the loaded model's."""
        return model

    def save_network(self, model: Any, path: Path, metadata: dict[str, Any]) -> None:
        """Write ``model`` (fine-tuned) as a file that ``load_network`` reads through ``weights_option``."""
        raise TaskcodecError(f"task {self.name!r} cannot save a fine-tuned network (joint codec training)")

    weights_option: ClassVar[str] = "weights"

    def differentiable(self, context: TaskContext) -> "EmbedderTrainingView":
        """The embedder for task-aware codec training (see ``EmbedderTrainingView``)."""
        model, _ = self.load_network(self._o, context.log if context.progress else None)
        return EmbedderTrainingView(self, model.to(context.device).eval())

    # ------------------------------------------------------------------ prepare
    def prepare(self, dataset: Dataset, context: TaskContext) -> None:
        if not getattr(dataset, "pairs", None):
            raise TaskcodecError(f"task {self.name!r} needs a dataset with verification pairs (dataset.pairs), "
                                 f"such as 'lfw'; {type(dataset).__name__} has none")
        self.load(context.device, context.log if context.progress else None)
        workers = self._o["workers"]
        if workers is None:
            workers = 1 if context.device.startswith("cuda") else _available_cpus()
        self._workers = workers

    def load(self, device: str, log: Any = None) -> None:
        """Load the network (and the detector in compress-then-align mode) onto ``device``."""
        import torch

        model, info = self.load_network(self._o, log)
        self.weights_sha256 = state_digest(model.state_dict())
        self._device = device
        self._precision = resolve_precision(self._o["precision"], device)
        self.n_parameters = int(sum(p.numel() for p in model.parameters()))
        model = self.inference_model(model.eval())
        self.model = model.to(device=device, memory_format=torch.channels_last).eval()
        self.model_info = info
        if self._o["align_on_decoded"]:
            from taskcodec_plugins.faces.detection import CentralFaceDetector

            self._detector = CentralFaceDetector(device=device)
        self._fingerprint = None

    def _require(self) -> None:
        if self.model is None:
            raise TaskcodecError(f"task {self.name!r}: call prepare() before fingerprint()/predict()")

    def fingerprint(self) -> str:
        self._require()
        if self._fingerprint is None:
            spec = {"weights": self.weights_sha256, "input": list(self.input_size), "flip": self._o["flip"],
                    "precision": self._precision, "inference": self.inference, "output": OUTPUT_FORMAT,
                    "normalise": "(x-127.5)/128 RGB",
                    "align_on_decoded": self._o["align_on_decoded"],
                    "detector": self._detector.identity() if self._detector is not None else None}
            self._fingerprint = hashlib.sha256(stable_json(spec).encode()).hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------------ inference
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 crops -> N x D float32 L2-normalised (flip-fused if enabled)."""
        import contextlib

        import torch

        self._require()
        out = []
        bs = batch_for_device(self._o["batch_size"], self._device, cpu=32, gpu=128)
        cast = (torch.autocast("cuda" if self._device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
                if self._precision == "bf16" else contextlib.nullcontext())
        with torch.inference_mode(), cast:
            for start in range(0, len(crops), bs):
                x = torch.from_numpy(np.ascontiguousarray(crops[start:start + bs])).to(self._device)
                x = (x.permute(0, 3, 1, 2).float() - 127.5) / 128.0
                n = len(x)
                if self._o["flip"]:
                    x = torch.cat([x, x.flip(3)])
                e = self.model(x.contiguous(memory_format=torch.channels_last)).float()
                if self._o["flip"]:
                    e = torch.cat([e[:n], e[n:]], dim=1)
                out.append(torch.nn.functional.normalize(e, dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def _crops(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[bool]]:
        """Stack the network inputs; in compress-then-align mode detect and align first."""
        h, w = self.input_size
        if self._detector is None:
            for i, image in enumerate(images):
                if image.ndim != 3 or image.shape[2] != 3 or tuple(image.shape[:2]) != (h, w):
                    raise TaskcodecError(
                        f"task {self.name!r}: image {i} has shape {image.shape}; the network takes aligned {h}x{w}x3 "
                        f"RGB crops ('lfw' dataset option align: {self.template}), or set the task option "
                        f"align_on_decoded: {self.template} for full images (dataset option align: none)")
            return np.stack(images) if len(images) else np.zeros((0, h, w, 3), np.uint8), [True] * len(images)
        images = [np.repeat(im[:, :, None], 3, axis=2) if im.ndim == 2 else im for im in images]
        records = self._detector.detect(images)
        crops = [align(im, r, self._o["align_on_decoded"]) for im, r in zip(images, records) if r is not None]
        return (np.stack(crops) if crops else np.zeros((0, h, w, 3), np.uint8)), [r is not None for r in records]

    def predict(self, images: Sequence[np.ndarray]) -> list[str | None]:
        self._require()
        images = list(images)
        if self._workers <= 1 or len(images) < MIN_POOL_BATCH:
            return self.predict_here(images)
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            cls = type(self)
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                initargs=(cls.__module__, cls.__qualname__, self._options, self._device))
        size = -(-len(images) // self._workers)
        parts = [images[i : i + size] for i in range(0, len(images), size)]
        return [out for part in self._pool.map(_predict_in_worker, parts) for out in part]

    def predict_here(self, images: list[np.ndarray]) -> list[str | None]:
        """``predict`` in this process."""
        self._require()
        crops, found = self._crops(images)
        vectors = iter(self.embed(crops)) if len(crops) else iter(())
        return [encode_embedding(next(vectors)) if ok else None for ok in found]

    def close(self) -> None:
        """Stop the worker processes (also done at interpreter exit)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # ------------------------------------------------------------------ rows
    def reference_outputs(self, dataset: Dataset, outputs: dict[str, Any]) -> None:
        self._clean = {sid: (decode_embedding(v) if v is not None else None) for sid, v in outputs.items()}

    def sample_rows(self, dataset: Dataset, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        pairs = getattr(dataset, "pairs", None)
        if not pairs:
            raise TaskcodecError(f"task {self.name!r}: the dataset has no verification pairs (dataset.pairs)")
        vectors = {sid: (decode_embedding(v) if v is not None else None) for sid, v in outputs.items()}
        rows = []
        for fold, same, id1, id2 in pairs:
            a, b = vectors[id1], vectors[id2]
            row = {"fold": int(fold), "same": int(bool(same)), "score": _cosine(a, b), "image1": id1, "image2": id2,
                   "failed1": int(a is None), "failed2": int(b is None)}
            if self._clean is not None:
                row["clean_score"] = _cosine(self._clean.get(id1), self._clean.get(id2))
            rows.append(row)
        return rows

    def provenance(self) -> dict[str, Any]:
        self._require()
        return {
            "fingerprint": self.fingerprint(),
            "weights_sha256": self.weights_sha256,
            "options": self.options(),
            "input": {"size_hw": list(self.input_size), "channels": "RGB", "normalise": "(x - 127.5) / 128",
                      "template": self._o["align_on_decoded"] or "given by the dataset"},
            "flip_fused": self._o["flip"],
            "inference_precision": self._precision,
            "inference": self.inference,
            "output": f"{OUTPUT_FORMAT}: L2-normalised embedding, float16, base64",
            "detector": self._detector.identity() if self._detector is not None else None,
            "parameters": self.n_parameters,
            **json.loads(stable_json(self.model_info)),
        }


_worker_task: FaceEmbedderTask | None = None


def _init_worker(module: str, qualname: str, options: dict[str, Any], device: str) -> None:
    """A worker process: one thread, its own copy of the task (network and detector)."""
    global _worker_task
    import importlib

    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    cls = getattr(importlib.import_module(module), qualname)
    task = cls(**{**options, "workers": 1})
    task.load(device)
    _worker_task = task


def _predict_in_worker(images: list[np.ndarray]) -> list[str | None]:
    assert _worker_task is not None
    return _worker_task.predict_here(images)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return math.nan
    return round(float(np.dot(a, b)), 6)


class EmbedderTrainingView:
    """A face embedder as torch code for codec training (``taskcodec.Task.differentiable``).

    ``features``: the embedding of a float RGB batch in [0, 1] (the network's own input
    normalisation, one view); ``loss``: 1 - cosine between the embedding of the reconstruction and
    the embedding of the original by a frozen copy of the loaded network (identity preservation:
    in joint training the fine-tuned network keeps mapping into the original's embedding space);
    ``accuracy``: the mean of that cosine."""

    def __init__(self, task: FaceEmbedderTask, module: Any):
        import copy

        self.task, self.module = task, module
        self.checkpoint_option = task.weights_option
        self.reference = copy.deepcopy(module).eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)

    @staticmethod
    def _input(x: Any) -> Any:
        return (x * 255.0 - 127.5) / 128.0

    def features(self, x: Any) -> Any:
        return self.module(self._input(x))

    def target_features(self, x: Any) -> Any:
        return self.reference(self._input(x))

    def _cosine(self, x_hat: Any, x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            target = F.normalize(self.reference(self._input(x)), dim=1)
        return (F.normalize(self.features(x_hat), dim=1) * target).sum(1)

    def loss(self, x_hat: Any, x: Any, labels: list[Any]) -> Any:
        return 1.0 - self._cosine(x_hat, x).mean()

    def accuracy(self, x_hat: Any, x: Any, labels: list[Any]) -> float:
        return float(self._cosine(x_hat, x).mean())

    def save(self, path: str | Path, metadata: dict[str, Any]) -> None:
        self.task.save_network(self.module, Path(path), metadata)

