"""``expression-cnn``: a CNN expression classifier, trained on the fly, trained ahead by
``taskcodec train``, or loaded from a checkpoint.

Three ways to get weights:

1. On the fly (the quickstart): without ``checkpoint``, ``prepare`` trains on
   ``context.load_split(train_split)`` (a few tens of seconds on two CPU cores for the default
   ``synthetic-faces`` split). Trained weights are cached in ``context.cache_dir`` under
   ``expression-cnn-<key>.pt``, where the key hashes the training options, the train and validation
   data fingerprints, the resolved precision and :data:`MODEL_VERSION`; a second ``prepare`` with the
   same inputs loads that file instead of training.
2. Ahead of the run, for long trainings (FER+): ``taskcodec train CONFIG`` calls :meth:`ExpressionCNN.train`,
   which trains with the same options, saves its full state (model, optimizer, step, RNG, best weights,
   history) after every epoch and resumes from it when run again after a kill, then writes the
   checkpoint to the ``checkpoint`` option's path (or ``--out``).
3. ``checkpoint``: a file written by this plugin (1 or 2), loaded with ``torch.load(weights_only=True)``;
   its metadata carries the classes, input spec, architecture, the training options, the train/val
   data fingerprints and a description of the data (dataset, splits, counts, label mode), the
   validation metrics (with and without flip TTA) and the training history and time.

Files are written to a temporary name, fsynced and renamed into place, so a process killed mid-write
leaves no partial file under the final name.

Options (all optional):

``train_split`` ('train'), ``val_split`` ('val'; None to skip validation), ``checkpoint`` (path of a
file saved by this plugin: use it instead of training on the fly; ``taskcodec train`` writes it),
``arch`` ('compact': ~0.29M parameters at width 16; 'vgg': VGG-13-like, 8 conv layers, ~1.17M
parameters at width 32, for 48x48 FER; see :func:`build_model`), ``width`` (16: channels of the first
stage), ``epochs`` (10), ``batch_size`` (64), ``optimizer`` ('adamw' or 'sgd' (Nesterov, momentum 0.9)),
``lr`` (peak learning rate, 4e-3), ``warmup`` (0.2: fraction of the steps with a linear warm-up; then
cosine annealing), ``weight_decay`` (5e-4; not on BN/bias), ``label_smoothing`` (0.05), ``seed``
(default: the benchmark's seed), ``augment`` (True: random horizontal flips, which keep expressions,
plus what follows), ``shift`` (2: max translation in pixels, edges replicated), ``rotate`` (0: max
degrees), ``scale`` (0: max relative zoom), ``erase`` (0: random-erasing probability), ``select``
('last', or 'val': keep the epoch with the best validation accuracy), ``targets`` ('hard', or 'soft':
the split's ``dataset.targets`` vote distributions, e.g. ``ferplus`` with ``mode: soft``), ``tta``
('none', or 'flip': average the logits of the image and its mirror at inference; recorded in the
fingerprint), ``precision`` ('auto', 'bf16' or 'fp32'; auto = bf16 where the CPU has native bf16
(AVX512-BF16/AMX) or the GPU supports it, else fp32), ``eval_batch_size`` (images per forward pass at
inference; default 64 on the CPU, 256 on a GPU: on 2 CPU cores the FER+ VGG classified 1,650 images/s in
batches of 64 against 1,060 in batches of 256, whose activations outgrow the caches; the predictions are
the same, see the tests). The runner's
``device`` (auto = CUDA when available) is used for training and inference.

Images are fed as ``(x - 128) / 64``. A network trained on grey images turns RGB input
into BT.601 luma; one trained on RGB repeats a grey image over three channels. An image
whose height x width differs from the training images' is refused (no silent resizing).

Training is deterministic for a given seed, data, precision, device and torch thread
count: the weights are initialised under ``torch.manual_seed(seed)`` in a forked RNG
(the process's global RNG is left alone); each epoch's shuffle, augmentation and dropout
come from generators seeded by (seed, epoch) (see :mod:`taskcodec_plugins.tasks.expression_cnn.training`),
so a resumed training ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec
from taskcodec import ConfigError, Dataset, Task, TaskContext, TaskcodecError, TaskTrainingRequest, stable_json
from taskcodec_plugins.tasks.expression_cnn.model import TaskInputError  # noqa: F401 (part of this task's API)
from taskcodec_plugins.tasks.expression_cnn.model import (ARCHS, build_model, is_class_index, load_checkpoint,
                                                          network_from_checkpoint, run_model, save_checkpoint, to_array,
                                                          train_model)
from taskcodec_plugins.torch_utils import batch_for_device, remembered_weights_facts, resolve_precision, state_digest

MODEL_VERSION = "2"  # bump when the architecture or the training code changes: part of the cache key
CACHE_PREFIX = "expression-cnn-"
FACTS_KIND = "expression-cnn-weights-v1"  # the format of _weights_facts (see remembered_weights_facts)

DEFAULTS: dict[str, Any] = {
    "train_split": "train",
    "val_split": "val",
    "checkpoint": None,
    "epochs": 10,
    "batch_size": 64,
    "lr": 4e-3,
    "weight_decay": 5e-4,
    "label_smoothing": 0.05,
    "seed": None,
    "augment": True,
    "width": 16,
    "arch": "compact",
    "optimizer": "adamw",
    "warmup": 0.2,
    "shift": 2,
    "rotate": 0,
    "scale": 0,
    "erase": 0,
    "select": "last",
    "targets": "hard",
    "tta": "none",
    "precision": "auto",
    "eval_batch_size": None,  # None: 64 on the CPU, 256 on a GPU (see the module doc)
}
# Options that decide the trained weights (and so enter the cache key).
TRAINING_KEYS = ("train_split", "epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "seed",
                 "augment", "width", "arch", "optimizer", "warmup", "shift", "rotate", "scale", "erase", "select",
                 "targets")


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise taskcodec.unknown_options(ExpressionCNN, unknown, DEFAULTS)
    o = {**DEFAULTS, **options}

    def bad(key: str, expected: str) -> ConfigError:
        return taskcodec.invalid_option(ExpressionCNN, key, o[key], expected)

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("epochs", "batch_size", "width"):
        if not is_int(o[key]) or o[key] < 1:
            raise bad(key, "a positive integer")
    if o["eval_batch_size"] is not None and (not is_int(o["eval_batch_size"]) or o["eval_batch_size"] < 1):
        raise bad("eval_batch_size", "a positive integer or null (64 on the CPU, 256 on a GPU)")
    for key in ("lr", "weight_decay", "label_smoothing"):
        if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or not 0 <= o[key] < 10:
            raise bad(key, "a number >= 0")
    for key, high in (("rotate", 45), ("scale", 0.5), ("erase", 1), ("warmup", 1), ("shift", 16)):
        if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or not 0 <= o[key] <= high:
            raise bad(key, f"a number in [0, {high}]")
    for key, allowed in (("arch", ARCHS), ("optimizer", ("adamw", "sgd")), ("select", ("last", "val")),
                         ("targets", ("hard", "soft")), ("tta", ("none", "flip"))):
        if o[key] not in allowed:
            raise bad(key, " or ".join(repr(a) for a in allowed))
    if o["select"] == "val" and o["val_split"] is None:
        raise bad("select", "'last' when val_split is null (selecting on validation needs a validation split)")
    if not 0 <= o["label_smoothing"] < 1:
        raise bad("label_smoothing", "a number in [0, 1)")
    if o["seed"] is not None and not (is_int(o["seed"]) and o["seed"] >= 0):
        raise bad("seed", "an integer >= 0 or null (the benchmark's seed)")
    if not isinstance(o["augment"], bool):
        raise bad("augment", "true or false")
    if o["precision"] not in ("auto", "bf16", "fp32"):
        raise bad("precision", "'auto', 'bf16' or 'fp32'")
    if not isinstance(o["train_split"], str):
        raise bad("train_split", "a split name such as 'train'")
    if o["val_split"] is not None and not isinstance(o["val_split"], str):
        raise bad("val_split", "a split name such as 'val', or null")
    if o["checkpoint"] is not None and not isinstance(o["checkpoint"], (str, os.PathLike)):
        raise bad("checkpoint", "a file path or null")
    return o


# ---------------------------------------------------------------------- the task

@dataclass(frozen=True)
class _TrainingArrays:
    """A training's data as the training loop takes it."""

    images: np.ndarray  # N x C x H x W uint8
    labels: np.ndarray  # N class indices
    channels: int
    size: tuple[int, int]  # (height, width)
    targets: Any  # N x K soft labels with targets 'soft', else None
    val: tuple[np.ndarray, np.ndarray] | None  # (images, labels) of the validation split

class ExpressionCNN(Task):
    """A CNN expression classifier trained on the benchmark's train split (see module doc)."""

    name = "expression-cnn"
    task_type = "classification"
    default_metrics = ("accuracy", "balanced-accuracy", "macro-f1")
    description = ("CNN expression classifier (compact or VGG-style): trained on the fly (cached), "
                   "by `taskcodec train`, or loaded from a checkpoint")
    accepted_options = tuple(DEFAULTS)

    def __init__(self, **options: Any) -> None:
        self._resolved = _check_options(options)
        super().__init__(**options)
        self._model: Any = None
        self._state: dict[str, Any] | None = None  # loaded weights not yet in a model
        self._facts: dict[str, Any] | None = None  # weights_sha256, parameters, meta (see _weights_facts)
        self._file_sha256: str | None = None  # of the checkpoint file (the `checkpoint` option)
        self.meta: dict[str, Any] = {}
        self.trained = False  # True when the last prepare() trained (rather than loaded) the weights
        self.cache_path: Path | None = None
        self._fingerprint: str | None = None
        self._device = "cpu"
        self._precision = "fp32"

    # -------------------------------------------------------------- prepare
    def prepare(self, dataset: Dataset, context: TaskContext) -> None:
        """Find the weights (train, load from the store's cache, or a checkpoint) and learn their facts.

        With a checkpoint whose facts a previous run remembered in ``context.cache_dir``, nothing is loaded
        (and torch is not imported) until :meth:`predict` needs the network: a run that finds every output
        in the store only fingerprints the model.
        """
        o = self._resolved
        self._device = context.device
        log = context.log if context.progress else None
        classes = list(getattr(dataset, "classes", ()) or ())
        self._model, self._state, self._file_sha256 = None, None, None
        if o["checkpoint"] is not None:
            path = Path(o["checkpoint"])
            if not path.exists():
                raise TaskcodecError(f"expression-cnn: checkpoint {str(path)!r} does not exist; build it with "
                                     f"`taskcodec train CONFIG` (the config whose task names this checkpoint)")
            loaded: dict[str, Any] = {}

            def load() -> dict[str, Any]:
                loaded["state"], meta = load_checkpoint(path)
                return _weights_facts(loaded["state"], meta)

            self._file_sha256, facts = remembered_weights_facts(path, context.cache_dir, FACTS_KIND, load)
            self._state = loaded.get("state")
            self.trained = False
            self.cache_path = path
        else:
            self._state, meta = self._train_or_load(classes, context, log)
            facts = json.loads(stable_json(_weights_facts(self._state, meta)))
        meta = facts["meta"]
        if classes and list(meta["classes"]) != classes:
            raise TaskcodecError(f"expression-cnn: the model's classes {list(meta['classes'])} differ from the "
                                 f"dataset's {classes}")
        self._precision = resolve_precision(o["precision"], context.device)
        self._facts = facts
        self.meta = meta
        self._fingerprint = None

    @property
    def model(self) -> Any:
        """The network on the run's device, built on first use (None before :meth:`prepare`)."""
        if self._model is None and self._facts is not None:
            import torch

            state = self._state
            if state is None:  # prepare() only read the remembered facts: load the checkpoint now
                path = Path(self._resolved["checkpoint"])
                state, _ = load_checkpoint(path)
                if state_digest(state) != self._facts["weights_sha256"]:
                    raise TaskcodecError(f"expression-cnn: checkpoint {str(path)!r} changed after prepare() "
                                         f"(its weights no longer match the fingerprint); run again")
            network = network_from_checkpoint(state, self.meta)
            self._model = network.to(device=self._device, memory_format=torch.channels_last).eval()
            self._state = None
        return self._model

    def _plan(self, context: TaskContext, classes: list[str]) -> dict[str, Any]:
        """The training's inputs (splits, fingerprints) and its identity ``key``."""
        o = self._resolved
        train = context.load_split(o["train_split"])
        val = context.load_split(o["val_split"]) if o["val_split"] else None
        train_classes = list(getattr(train, "classes", ()) or ())
        if classes and train_classes != classes:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r} has classes {train_classes}, "
                                 f"the evaluated split has {classes}")
        if not train_classes:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r} has no class names (dataset.classes)")
        precision = resolve_precision(o["precision"], context.device)
        seed = context.seed if o["seed"] is None else o["seed"]
        training = {k: o[k] for k in TRAINING_KEYS} | {"seed": seed}
        train_fp = train.fingerprint()
        val_fp = val.fingerprint() if val is not None else None
        key = hashlib.sha256(stable_json({
            "model_version": MODEL_VERSION, "training": training, "train_fingerprint": train_fp,
            "val_split": o["val_split"], "val_fingerprint": val_fp, "classes": train_classes, "precision": precision,
        }).encode()).hexdigest()
        return {"train": train, "val": val, "classes": train_classes, "precision": precision, "seed": seed,
                "training": training, "train_fp": train_fp, "val_fp": val_fp, "key": key}

    def _train_or_load(self, classes: list[str], context: TaskContext,
                       log: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        plan = self._plan(context, classes)
        path = Path(context.cache_dir) / f"{CACHE_PREFIX}{plan['key'][:20]}.pt"
        self.cache_path = path
        if path.exists():
            try:
                state, meta = load_checkpoint(path)
                if meta.get("cache_key") == plan["key"]:
                    self.trained = False
                    if log:
                        log(f"expression-cnn: loaded cached weights {path}")
                    return state, meta
            except TaskcodecError as exc:  # unreadable: retrain and overwrite
                if log:
                    log(f"expression-cnn: ignoring unusable cache file ({exc}); retraining")
        model, meta = self._fit(plan, context, log, state_path=None)
        save_checkpoint(path, model, meta)
        self.trained = True
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}, meta

    def _fit(self, plan: dict[str, Any], context: TaskContext, log: Any,
             state_path: Path | None) -> tuple[Any, dict[str, Any]]:
        """Train as ``plan`` says; returns (model, checkpoint metadata)."""
        o = self._resolved
        arrays = self._training_arrays(plan)
        size, channels, precision = arrays.size, arrays.channels, plan["precision"]
        if log:
            log(f"expression-cnn: training a {o['arch']} network (width {o['width']}) on {len(arrays.labels)} images "
                f"of split {o['train_split']!r} ({size[0]}x{size[1]}, {channels} channel(s), {precision}, "
                f"{context.device}) for {o['epochs']} epochs")
        o = {**o, "eval_batch_size": eval_batch_size(o, context.device)}
        model, facts = train_model(arrays.images, arrays.labels, len(plan["classes"]), o, plan["seed"], context.device,
                                   precision, log, targets=arrays.targets, val=arrays.val, state_path=state_path,
                                   key=plan["key"], progress=bool(context.progress and state_path is not None))
        meta = self._metadata(plan, arrays, model, facts)
        if arrays.val is not None:
            from taskcodec_plugins.tasks.expression_cnn.training import evaluate

            metrics = evaluate(model, arrays.val[0], arrays.val[1], len(plan["classes"]), context.device, precision,
                               o["eval_batch_size"])
            meta["val_accuracy"] = metrics["accuracy"]
            meta["val_metrics"] = metrics
            meta["val_images"] = len(arrays.val[1])
            if log:
                log(f"expression-cnn: validation accuracy {metrics['accuracy']:.4f} (flip TTA "
                    f"{metrics['accuracy_flip_tta']:.4f}, balanced {metrics['balanced_accuracy']:.4f}) on "
                    f"{len(arrays.val[1])} images, epoch {facts['selected_epoch']} selected")
        meta = json.loads(stable_json(meta))  # the same plain types as when loaded from a file
        return model, meta

    def _training_arrays(self, plan: dict[str, Any]) -> _TrainingArrays:
        """The plan's splits as arrays, after checking their classes, labels and (soft) targets."""
        o = self._resolved
        train, val, train_classes = plan["train"], plan["val"], plan["classes"]
        if val is not None and list(getattr(val, "classes", ()) or ()) != train_classes:
            raise TaskcodecError(f"expression-cnn: split {o['val_split']!r} has classes {list(val.classes)}, "
                                 f"split {o['train_split']!r} has {train_classes}")
        samples = list(train)
        if not samples:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r} is empty")
        bad = [s.id for s in samples if not is_class_index(s.label, len(train_classes))]
        if bad:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r}: labels must be class indices "
                                 f"0..{len(train_classes) - 1}; {len(bad)} are not (first: {bad[0]!r})")
        targets = None
        if o["targets"] == "soft":
            targets = getattr(train, "targets", None)
            if targets is None or len(targets) != len(samples):
                raise TaskcodecError(f"expression-cnn: targets 'soft' needs a split with soft labels (dataset.targets, "
                                     f"e.g. ferplus with mode: soft); split {o['train_split']!r} has none")
        labels = np.array([s.label for s in samples], dtype=np.int64)
        channels = 3 if samples[0].image.ndim == 3 else 1
        images = to_array([s.image for s in samples], channels, None)
        size = (int(images.shape[2]), int(images.shape[3]))
        val_arrays = None
        if val is not None:
            vs = list(val)
            val_arrays = (to_array([s.image for s in vs], channels, size), np.array([s.label for s in vs]))
        return _TrainingArrays(images, labels, channels, size, targets, val_arrays)

    def _metadata(self, plan: dict[str, Any], arrays: _TrainingArrays, model: Any,
                  facts: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's metadata: model, training options, data fingerprints and descriptions, facts."""
        o = self._resolved
        train, val = plan["train"], plan["val"]
        return {
            "model_version": MODEL_VERSION, "cache_key": plan["key"], "classes": plan["classes"],
            "in_channels": arrays.channels, "size": list(arrays.size), "width": o["width"], "arch": o["arch"],
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "training": plan["training"], "train_split": o["train_split"], "train_fingerprint": plan["train_fp"],
            "val_split": o["val_split"], "val_fingerprint": plan["val_fp"],
            "data": {"dataset": getattr(train, "name", type(train).__name__),
                     "train": {"split": o["train_split"], "images": len(arrays.labels), "metadata": train.metadata()},
                     "val": None if val is None else {"split": o["val_split"], "images": len(val),
                                                       "metadata": val.metadata()}},
            **facts,
        }

    # -------------------------------------------------------------- the training command
    def train(self, request: TaskTrainingRequest) -> dict[str, Any]:
        """Train and write a checkpoint to ``request.out`` (default: the ``checkpoint`` option); resumable.

        The state of the training is saved after every epoch in ``context.cache_dir`` under
        ``expression-cnn-train-<key>.state.pt`` (key: as for the cache, so changed options or data
        start afresh); running the same command again after a kill resumes from it. The finished
        checkpoint is written atomically, then the state file is removed. If ``out`` already holds
        the checkpoint of exactly this training, nothing is done.
        """
        context, out = request.context, request.out
        o = self._resolved
        target = Path(out) if out is not None else (Path(o["checkpoint"]) if o["checkpoint"] else None)
        if target is None:
            raise TaskcodecError("expression-cnn: nowhere to write the trained model: set the task option "
                                 "`checkpoint` in the config or pass --out")
        log = context.log
        plan = self._plan(context, [])
        if target.exists():
            try:
                _, meta = load_checkpoint(target)
                if meta.get("cache_key") == plan["key"]:
                    log(f"expression-cnn: {target} already holds this training's result; nothing to do")
                    return _summary(meta, target, done=False)
            except TaskcodecError:
                pass
            log(f"expression-cnn: {target} exists and will be replaced when training ends")
        state_path = Path(context.cache_dir) / f"{CACHE_PREFIX}train-{plan['key'][:20]}.state.pt"
        model, meta = self._fit(plan, context, log, state_path=state_path)
        save_checkpoint(target, model, meta)
        state_path.unlink(missing_ok=True)
        log(f"expression-cnn: wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
        return _summary(meta, target, done=True)

    # -------------------------------------------------------------- use
    def _require(self) -> None:
        if self._facts is None:
            raise TaskcodecError("expression-cnn: call prepare() before fingerprint()/predict()")

    def fingerprint(self) -> str:
        """sha256 of the weights, the class names, the input spec, the inference precision and TTA."""
        self._require()
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(self._facts["weights_sha256"].encode())
            spec = {"classes": list(self.meta["classes"]), "in_channels": self.meta["in_channels"],
                    "size": list(self.meta["size"]), "precision": self._precision}
            if self._resolved["tta"] != "none":
                spec["tta"] = self._resolved["tta"]
            h.update(stable_json(spec).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def predict(self, images: Sequence[np.ndarray]) -> list[int]:
        self._require()
        arr = to_array(list(images), int(self.meta["in_channels"]), tuple(self.meta["size"]))
        if len(arr) == 0:
            return []
        batch = eval_batch_size(self._resolved, self._device)
        scores = run_model(self.model, arr, self._device, self._precision, batch, self._resolved["tta"])
        return [int(k) for k in scores.argmax(1)]

    def sample_rows(self, dataset: Dataset, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"image": sid, "label": label, "pred": outputs[sid]} for sid, label in dataset.ids_and_labels()]

    def differentiable(self, context: TaskContext) -> taskcodec.DifferentiableTask:
        """The classifier for task-aware codec training: features = the pooled activations before the
        linear layer, loss = cross-entropy on the reconstructions (fp32, batch norms in eval mode)."""
        path = self._resolved["checkpoint"]
        if path is None:
            raise TaskcodecError("expression-cnn: codec training needs a trained classifier: set the task option "
                                 "`checkpoint` (build one with `taskcodec train CONFIG`)")
        state, meta = load_checkpoint(Path(path))
        from taskcodec_plugins.tasks.expression_cnn.differentiable import ClassifierTrainingView

        return ClassifierTrainingView(network_from_checkpoint(state, meta).to(context.device).eval(), meta)

    def provenance(self) -> dict[str, Any]:
        self._require()
        m = self.meta
        keep = ("model_version", "classes", "in_channels", "size", "width", "arch", "training", "train_split",
                "train_fingerprint", "val_split", "val_fingerprint", "val_accuracy", "val_metrics", "val_images",
                "selected_epoch", "train_time_s", "train_images", "steps", "torch_threads", "torch_version", "device",
                "precision", "data", "history")
        # the same whether this process trained the weights or loaded them from the cache
        source = "checkpoint" if self._resolved["checkpoint"] else "trained-on-the-fly (cached)"
        checkpoint = None
        if self.cache_path is not None:
            checkpoint = self.cache_path.name  # a file in the store: its folder is machine-specific
            if source == "checkpoint" and self.cache_path.is_file():
                checkpoint = {"path": str(self._resolved["checkpoint"]), "file_sha256": self._file_sha256,
                              "bytes": self.cache_path.stat().st_size}
        return {
            "fingerprint": self.fingerprint(),
            "weights_sha256": self._facts["weights_sha256"],
            "options": self.options(),
            "source": source,
            "checkpoint": checkpoint,
            "inference_precision": self._precision,
            "test_time_augmentation": self._resolved["tta"],
            "parameters": self._facts["parameters"],
            **{k: m[k] for k in keep if k in m},
        }


def eval_batch_size(options: dict[str, Any], device: str) -> int:
    """The ``eval_batch_size`` option, or its default for ``device`` (see the module doc)."""
    return batch_for_device(options["eval_batch_size"], device, cpu=64, gpu=256)


def _weights_facts(state: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """What fingerprint() and provenance() need from the weights, without keeping the network."""
    parameters = int(sum(p.numel() for p in network_from_checkpoint(state, meta).parameters()))
    return {"weights_sha256": state_digest(state), "parameters": parameters, "meta": meta}


def _summary(meta: dict[str, Any], path: Path, done: bool) -> dict[str, Any]:
    keys = ("arch", "width", "parameters", "classes", "train_images", "val_images", "val_metrics", "selected_epoch",
            "train_time_s", "resumed_from_epoch", "device", "precision", "torch_threads")
    return {"checkpoint": str(path), "trained_now": done, **{k: meta[k] for k in keys if k in meta}}
