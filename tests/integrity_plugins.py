"""Misbehaving plugins for the store-integrity tests (importable by spawned workers).

Each codec is a small raw-bytes codec that breaks one rule: a decoder that changes between
calls, a round trip that works only in the encoding process, a worker that dies, a codec that
cannot be pickled, impossible payload sizes, an encoder with random bytes. The dataset is a
few dozen small gray images; the task returns numpy numbers.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import struct
import threading

import numpy as np

import taskcodec


def _pack(image: np.ndarray) -> bytes:
    return struct.pack(">HH", *image.shape[:2]) + np.ascontiguousarray(image).tobytes()


def _unpack(data: bytes) -> np.ndarray:
    h, w = struct.unpack(">HH", data[:4])
    return np.frombuffer(data[4:], np.uint8).reshape(h, w).copy()


class Raw(taskcodec.Codec):
    """Lossless raw pixels with a 4-byte header (the well-behaved base of the others)."""

    name = "raw-test"
    rate_parameter = None
    default_rate_points = (None,)

    def encode(self, image, rate_point):
        return _pack(image)

    def decode(self, data):
        return _unpack(data)

    def payload_bytes(self, data):
        return len(data) - 4


class DriftingDecoder(Raw):
    """Each decode in a process adds one more to the pixels: not deterministic."""

    name = "drifting-decoder"
    _calls = itertools.count()

    def decode(self, data):
        return (_unpack(data) + next(DriftingDecoder._calls)).astype(np.uint8)


_CACHE: dict[bytes, np.ndarray] = {}


class GlobalCache(Raw):
    """Writes an 8-byte token and keeps the image in a module-level dict: works in one process only."""

    name = "global-cache"

    def encode(self, image, rate_point):
        token = os.urandom(8)
        _CACHE[token] = image.copy()
        return token

    def decode(self, data):
        cached = _CACHE.get(bytes(data))
        if cached is None:
            raise taskcodec.CodecError("global-cache: token not in this process's cache")
        return cached


class DiesInWorker(Raw):
    """SIGKILLs its own worker process on the image whose first pixel is 0 (never in the main process)."""

    name = "dies-in-worker"

    def encode(self, image, rate_point):
        if multiprocessing.parent_process() is not None and int(image.flat[0]) == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return _pack(image)


class DiesOnce(Raw):
    """SIGKILLs its worker process once per run (the first worker to create the file $DIES_ONCE_MARKER)."""

    name = "dies-once"

    def encode(self, image, rate_point):
        if multiprocessing.parent_process() is not None:
            try:
                with open(os.environ["DIES_ONCE_MARKER"], "x"):
                    pass
            except FileExistsError:
                return _pack(image)
            os.kill(os.getpid(), signal.SIGKILL)
        return _pack(image)


class Unpicklable(Raw):
    """Holds a lock: cannot be sent to worker processes."""

    name = "unpicklable"

    def __init__(self, **options):
        super().__init__(**options)
        self.lock = threading.Lock()


class BadPayload(Raw):
    """payload_bytes returns whatever the environment variable BAD_PAYLOAD evaluates to."""

    name = "bad-payload"

    def payload_bytes(self, data):
        return eval(os.environ["BAD_PAYLOAD"], {"np": np, "n": len(data)})  # noqa: S307 (test only)


class RandomPadding(Raw):
    """Appends 16 random bytes: the same image gives different bytes each time (one random byte
    would repeat once in 256 encodes, and the test expecting the first image to fail would fail)."""

    name = "random-padding"

    def encode(self, image, rate_point):
        return _pack(image) + os.urandom(16)

    def decode(self, data):
        return _unpack(data[:-16])


class NumpyPayload(Raw):
    """payload_bytes as a numpy integer (legitimate: converted to int)."""

    name = "numpy-payload"

    def payload_bytes(self, data):
        return np.int64(len(data) - 4)


class FailsLate(Raw):
    """Refuses the image whose first pixel is $FAILS_AT (a CodecError, as a library's would become)."""

    name = "fails-late"

    def encode(self, image, rate_point):
        if int(image.flat[0]) == int(os.environ["FAILS_AT"]):
            raise ValueError("this image is refused")
        return _pack(image)


class MarkedArray(np.ndarray):
    """An ndarray subclass: a valid decoded image."""


class OddDecodeOutput(Raw):
    """decode returns whatever BAD_DECODE evaluates to, given the right ``image``."""

    name = "odd-decode-output"

    def decode(self, data):
        return eval(os.environ["BAD_DECODE"], {"np": np, "image": _unpack(data), "MarkedArray": MarkedArray})  # noqa: S307


class Squares(taskcodec.Dataset):
    """``count`` small gray images; image i's first pixel is i (so image 0 starts with 0)."""

    name = "squares"
    needs_root = False
    splits = ("test",)
    classes = ("dark", "bright")

    def __init__(self, root=None, split="test", count=12, size=16):
        self.items = []
        rng = np.random.default_rng(0)
        for i in range(count):
            image = rng.integers(0, 256, (size, size), dtype=np.uint8)
            image.flat[0] = i % 256
            self.items.append(taskcodec.Sample(f"sq{i:03d}", image, i % 2))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class NumpyTask(taskcodec.Task):
    """Returns numpy ints and floats inside lists and dicts, as many real models do."""

    name = "numpy-task"
    task_type = "classification"
    default_metrics = ("accuracy",)

    def prepare(self, dataset, context):
        pass

    def fingerprint(self):
        return "numpy-task-1"

    def predict(self, images):
        return [{"pred": np.int64(float(np.mean(im)) > 127), "scores": [np.float32(np.mean(im)), np.int32(1)]}
                for im in images]

    def sample_rows(self, dataset, outputs):
        return [{"image": s.id, "label": s.label, "pred": outputs[s.id]["pred"]} for s in dataset]


class ObjectTask(NumpyTask):
    """Returns an object that JSON cannot hold."""

    name = "object-task"

    def fingerprint(self):
        return "object-task-1"

    def predict(self, images):
        return [object() for _ in images]


class HalfDefined(taskcodec.ImageMetric):
    """Defined (numpy float) for images whose first pixel is even, None for the others."""

    name = "half-defined"
    higher_is_better = True

    def compute(self, original, decoded):
        return None if int(original.flat[0]) % 2 else np.float32(1.5)


class NanMetric(taskcodec.ImageMetric):
    name = "nan-metric"
    higher_is_better = True

    def compute(self, original, decoded):
        return float("nan")


class TextMetric(taskcodec.ImageMetric):
    name = "text-metric"
    higher_is_better = True

    def compute(self, original, decoded):
        return "1.0"


CODECS = (Raw, DriftingDecoder, GlobalCache, DiesInWorker, DiesOnce, Unpicklable, BadPayload, RandomPadding, NumpyPayload,
          OddDecodeOutput, FailsLate)


class IntegrityPlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_codecs(register):
        for codec in CODECS:
            register(codec)

    @staticmethod
    @taskcodec.hookimpl
    def register_datasets(register):
        register(Squares)

    @staticmethod
    @taskcodec.hookimpl
    def register_tasks(register):
        register(NumpyTask)
        register(ObjectTask)

    @staticmethod
    @taskcodec.hookimpl
    def register_metrics(register):
        register(HalfDefined)
        register(NanMetric)
        register(TextMetric)


# ----------------------------------------------------------------------------- test helpers
def config(plugins, codecs, task="numpy-task", metrics=("accuracy",), count=12, workers=1):
    """A benchmark config over the `squares` dataset of these plugins."""
    from taskcodec.config import parse_config

    raw = {"benchmark": "integrity", "dataset": {"name": "squares", "options": {"count": count}},
           "metrics": list(metrics), "codecs": codecs, "runner": {"workers": workers}}
    if task:
        raw["task"] = {"name": task}
    return parse_config(raw, "integrity.yaml", plugins.registry)


def run(plugins, cfg, store, **kwargs):
    """Run ``cfg`` into the store folder ``store``: (collected, log lines)."""
    from taskcodec.runner import Runner
    from taskcodec.store import Store

    logs: list[str] = []
    collected = Runner(cfg, Store(store), plugins, progress=False, log=logs.append, **kwargs).run()
    return collected, logs
