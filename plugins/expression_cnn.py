"""``expression-cnn``: a compact CNN expression classifier, trained on the fly or loaded.

``prepare`` trains the network on ``context.load_split(train_split)`` (a few tens of
seconds on two CPU cores for the default ``synthetic-faces`` split), or loads it from
``checkpoint``. Trained weights are cached in ``context.cache_dir`` under
``expression-cnn-<key>.pt``, where the key hashes the training options, the train and
validation data fingerprints, the resolved precision and :data:`MODEL_VERSION`; a second
``prepare`` with the same inputs loads that file instead of training. Files are written
to a temporary name and renamed into place, so a process killed mid-training leaves no
partial checkpoint under the final name.

Options (all optional):

``train_split`` ('train'), ``val_split`` ('val'; None to skip validation; only reported,
never used to pick weights), ``checkpoint`` (path of a file saved by this plugin: use it
instead of training), ``epochs`` (10), ``batch_size`` (64), ``lr`` (peak AdamW learning
rate, 4e-3, one-cycle schedule), ``weight_decay`` (5e-4), ``label_smoothing`` (0.05),
``seed`` (default: the benchmark's seed), ``augment`` (True: random horizontal flips,
which keep expressions, and shifts of up to 2 pixels), ``width`` (16: channels of the first
stage), ``precision`` ('auto', 'bf16' or 'fp32'; auto = bf16 where the CPU has native
bf16 (AVX512-BF16/AMX) or the GPU supports it, else fp32), ``eval_batch_size`` (256).

Images are fed as ``(x - 128) / 64``. A network trained on grey images turns RGB input
into BT.601 luma; one trained on RGB repeats a grey image over three channels. An image
whose height x width differs from the training images' is refused (no silent resizing).

Training is deterministic for a given seed, data, precision, device and torch thread
count: the weights are initialised under ``torch.manual_seed(seed)`` in a forked RNG
(the process's global RNG is left alone), the batch order and augmentation come from a
numpy Generator.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec
from taskcodec import ConfigError, Dataset, Task, TaskContext, TaskcodecError
from taskcodec.api import stable_json

MODEL_VERSION = "1"  # bump when the architecture or the training code changes: part of the cache key
CACHE_PREFIX = "expression-cnn-"

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
    "precision": "auto",
    "eval_batch_size": 256,
}
# Options that decide the trained weights (and so enter the cache key).
TRAINING_KEYS = ("train_split", "epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "seed",
                 "augment", "width")
MAX_SHIFT = 2  # pixels of random translation when augmenting


class TaskInputError(TaskcodecError, ValueError):
    """Images given to a task do not match what the model was trained on."""


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"task 'expression-cnn': unknown option(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}

    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"task 'expression-cnn': option {key!r} = {o[key]!r} is invalid; expected {expected}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("epochs", "batch_size", "width", "eval_batch_size"):
        if not is_int(o[key]) or o[key] < 1:
            raise bad(key, "a positive integer")
    for key in ("lr", "weight_decay", "label_smoothing"):
        if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or not 0 <= o[key] < 10:
            raise bad(key, "a number >= 0")
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


# ---------------------------------------------------------------------- the network
def build_model(in_channels: int, n_classes: int, width: int = 16) -> Any:
    """VGG-style: conv(w) pool | conv(2w) conv(2w) pool | conv(4w) conv(4w) pool | conv(8w) GAP, linear.

    Works at any input size of at least 8x8 (global average pooling at the end).
    """
    from torch import nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(
        *block(in_channels, w), nn.MaxPool2d(2),
        *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
        *block(2 * w, 4 * w), *block(4 * w, 4 * w), nn.MaxPool2d(2),
        *block(4 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(8 * w, n_classes),
    )


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> 'bf16' where bf16 is native (CPU AVX512-BF16/AMX, or a bf16-capable GPU), else 'fp32'."""
    if precision != "auto":
        return precision
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    cpu = getattr(torch, "cpu", None)
    native = any(getattr(cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return "bf16" if native else "fp32"


def _autocast(device: str, precision: str) -> Any:
    import contextlib

    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def to_array(images: Sequence[np.ndarray], channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """Stack images into ``N x C x H x W`` uint8, converting channels, refusing other sizes."""
    out = None
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            got = type(image).__name__ + (f" of dtype {image.dtype}" if isinstance(image, np.ndarray) else "")
            raise TaskInputError(f"expression-cnn: image {i} must be a numpy uint8 array, got {got}")
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
            raise TaskInputError(f"expression-cnn: image {i} has shape {image.shape}; expected HxW or HxWx3")
        if size is not None and tuple(image.shape[:2]) != tuple(size):
            raise TaskInputError(f"expression-cnn: image {i} is {image.shape[0]}x{image.shape[1]} (HxW) but the "
                                 f"model expects {size[0]}x{size[1]} images (its training size); resize or retrain")
        if out is None:
            size = tuple(image.shape[:2])  # type: ignore[assignment]
            out = np.empty((len(images), channels) + image.shape[:2], dtype=np.uint8)
        if image.ndim == 2 or image.shape[2] == 1:
            out[i] = image.reshape(image.shape[:2])[None]
        elif channels == 3:
            out[i] = image.transpose(2, 0, 1)
        else:  # BT.601 luma, as synthetic-faces makes its grey images
            luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            out[i] = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[None]
    if out is None:
        return np.empty((0, channels, 0, 0), dtype=np.uint8)
    return out


def _normalise(x: Any) -> Any:
    return (x.float() - 128.0) / 64.0


def train_model(images: np.ndarray, labels: np.ndarray, n_classes: int, options: dict[str, Any], seed: int,
                device: str, precision: str, log: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train a fresh network on ``images`` (N x C x H x W uint8); returns (model, training facts)."""
    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    n = len(images)
    # Seed in a forked RNG (the CPU's, and the GPU's when training there): the caller's RNG is left alone.
    rng_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = build_model(images.shape[1], n_classes, options["width"])
    model = model.to(device=device, memory_format=torch.channels_last)
    data = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    batch = min(options["batch_size"], n)
    steps_per_epoch = max(n // batch, 1)  # drop the last partial batch: equal-sized steps
    total = steps_per_epoch * options["epochs"]
    opt = torch.optim.AdamW(model.parameters(), lr=options["lr"], weight_decay=options["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options["lr"], total_steps=total, pct_start=0.2)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xC77])))
    pad = MAX_SHIFT if options["augment"] else 0
    h, w = images.shape[2:]
    history = []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed + 1)  # dropout
        model.train()
        for epoch in range(options["epochs"]):
            order = rng.permutation(n)
            flips = rng.random(n) < 0.5
            shifts = rng.integers(-pad, pad + 1, (n, 2)) if pad else None
            loss_sum, correct, seen = 0.0, 0, 0
            for step in range(steps_per_epoch):
                idx = order[step * batch:(step + 1) * batch]
                xb = data[torch.from_numpy(idx).to(device)]
                if options["augment"]:
                    xb = _augment(xb, flips[idx], shifts[idx], pad, h, w)  # type: ignore[index]
                xb = _normalise(xb).contiguous(memory_format=torch.channels_last)
                yb = target[torch.from_numpy(idx).to(device)]
                with _autocast(device, precision):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=options["label_smoothing"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(idx)
            history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen})
            if log is not None:
                log(f"expression-cnn: epoch {epoch + 1}/{options['epochs']} loss {loss_sum / seen:.4f} "
                    f"train accuracy {correct / seen:.3f} ({time.perf_counter() - start:.1f} s)")
    model.eval()
    facts = {"train_time_s": round(time.perf_counter() - start, 3), "history": history, "train_images": n,
             "steps": total, "torch_threads": torch.get_num_threads(), "torch_version": str(torch.__version__),
             "device": device, "precision": precision}
    return model, facts


def _augment(xb: Any, flips: np.ndarray, shifts: np.ndarray, pad: int, h: int, w: int) -> Any:
    """Flip the chosen images left-right and shift each by ``shifts`` pixels (edge-replicated)."""
    import torch
    import torch.nn.functional as F

    flip = torch.from_numpy(flips).to(xb.device)
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    if not pad:
        return xb
    padded = F.pad(xb.float(), (pad, pad, pad, pad), mode="replicate")
    rows = torch.arange(h, device=xb.device)[None, :] + torch.from_numpy(pad + shifts[:, 0]).to(xb.device)[:, None]
    cols = torch.arange(w, device=xb.device)[None, :] + torch.from_numpy(pad + shifts[:, 1]).to(xb.device)[:, None]
    b = torch.arange(len(xb), device=xb.device)[:, None, None]
    # padded: B x C x H' x W' -> gather rows then columns for every image at once
    out = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # B x H x W x C
    return out.permute(0, 3, 1, 2)


def run_model(model: Any, images: np.ndarray, device: str, precision: str, batch_size: int) -> np.ndarray:
    """Class scores (N x K float32 logits) for ``images`` (N x C x H x W uint8)."""
    import torch

    outs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            xb = _normalise(xb).contiguous(memory_format=torch.channels_last)
            with _autocast(device, precision):
                outs.append(model(xb).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def state_digest(state_dict: dict[str, Any]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, model: Any, meta: dict[str, Any]) -> None:
    """Write ``{state_dict, meta}`` to ``path`` atomically (temporary file, fsync, rename)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        with open(tmp, "wb") as f:
            # meta as plain JSON types: torch.load(weights_only=True) refuses other classes
            torch.save({"state_dict": state, "meta": json.loads(stable_json(meta))}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state_dict, meta) from a file written by :func:`save_checkpoint`, loaded with weights_only."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TaskcodecError(f"expression-cnn: checkpoint {str(path)!r} does not exist") from None
    except Exception as exc:
        raise TaskcodecError(
            f"expression-cnn: cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict) or "state_dict" not in obj or "meta" not in obj:
        raise TaskcodecError(f"expression-cnn: {str(path)!r} is not an expression-cnn checkpoint "
                             "(expected a dict with 'state_dict' and 'meta')")
    meta = obj["meta"]
    for key in ("classes", "in_channels", "size", "width"):
        if key not in meta:
            raise TaskcodecError(f"expression-cnn: checkpoint {str(path)!r} lacks meta[{key!r}]")
    return obj["state_dict"], meta


def _is_class_index(label: Any, n_classes: int) -> bool:
    return isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < n_classes


# ---------------------------------------------------------------------- the task
class ExpressionCNN(Task):
    """A small CNN expression classifier trained on the benchmark's train split (see module doc)."""

    name = "expression-cnn"
    kind = "classification"
    default_metrics = ("accuracy", "balanced-accuracy", "macro-f1")
    description = "compact CNN expression classifier, trained on the fly on the train split (cached)"

    def __init__(self, **options: Any) -> None:
        self._resolved = _check_options(options)
        super().__init__(**options)
        self.model: Any = None
        self.meta: dict[str, Any] = {}
        self.trained = False  # True when the last prepare() trained (rather than loaded) the weights
        self.cache_path: Path | None = None
        self._fingerprint: str | None = None
        self._device = "cpu"
        self._precision = "fp32"

    # -------------------------------------------------------------- prepare
    def prepare(self, dataset: Dataset, context: TaskContext) -> None:
        import torch

        o = self._resolved
        self._device = context.device
        log = context.log if context.progress else None
        classes = list(getattr(dataset, "classes", ()) or ())
        if o["checkpoint"] is not None:
            state, meta = load_checkpoint(Path(o["checkpoint"]))
            self.trained = False
            self.cache_path = Path(o["checkpoint"])
        else:
            state, meta = self._train_or_load(classes, context, log)
        if classes and list(meta["classes"]) != classes:
            raise TaskcodecError(f"expression-cnn: the model's classes {list(meta['classes'])} differ from the "
                                 f"dataset's {classes}")
        self._precision = resolve_precision(o["precision"], context.device)
        model = build_model(int(meta["in_channels"]), len(meta["classes"]), int(meta["width"]))
        model.load_state_dict(state)
        self.model = model.to(device=context.device, memory_format=torch.channels_last).eval()
        self.meta = meta
        self._fingerprint = None

    def _train_or_load(self, classes: list[str], context: TaskContext,
                       log: Any) -> tuple[dict[str, Any], dict[str, Any]]:
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
        path = Path(context.cache_dir) / f"{CACHE_PREFIX}{key[:20]}.pt"
        self.cache_path = path
        if path.exists():
            try:
                state, meta = load_checkpoint(path)
                if meta.get("cache_key") == key:
                    self.trained = False
                    if log:
                        log(f"expression-cnn: loaded cached weights {path}")
                    return state, meta
            except TaskcodecError as exc:  # unreadable: retrain and overwrite
                if log:
                    log(f"expression-cnn: ignoring unusable cache file ({exc}); retraining")

        if val is not None and list(getattr(val, "classes", ()) or ()) != train_classes:
            raise TaskcodecError(f"expression-cnn: split {o['val_split']!r} has classes {list(val.classes)}, "
                                 f"split {o['train_split']!r} has {train_classes}")
        samples = list(train)
        if not samples:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r} is empty")
        bad = [s.id for s in samples if not _is_class_index(s.label, len(train_classes))]
        if bad:
            raise TaskcodecError(f"expression-cnn: split {o['train_split']!r}: labels must be class indices "
                                 f"0..{len(train_classes) - 1}; {len(bad)} are not (first: {bad[0]!r})")
        labels = np.array([s.label for s in samples], dtype=np.int64)
        first = samples[0].image
        channels = 3 if first.ndim == 3 else 1
        images = to_array([s.image for s in samples], channels, None)
        if log:
            log(f"expression-cnn: training on {len(samples)} images of split {o['train_split']!r} "
                f"({images.shape[2]}x{images.shape[3]}, {channels} channel(s), {precision}) for {o['epochs']} epochs")
        model, facts = train_model(images, labels, len(train_classes), o, seed, context.device, precision, log)
        meta = {
            "model_version": MODEL_VERSION, "cache_key": key, "classes": train_classes,
            "in_channels": channels, "size": [int(images.shape[2]), int(images.shape[3])], "width": o["width"],
            "training": training, "train_split": o["train_split"], "train_fingerprint": train_fp,
            "val_split": o["val_split"], "val_fingerprint": val_fp, **facts,
        }
        if val is not None:
            vs = list(val)
            vimg = to_array([s.image for s in vs], channels, tuple(meta["size"]))
            vpred = run_model(model, vimg, context.device, precision, o["eval_batch_size"]).argmax(1)
            meta["val_accuracy"] = float(np.mean(vpred == np.array([s.label for s in vs])))
            meta["val_images"] = len(vs)
            if log:
                log(f"expression-cnn: validation accuracy {meta['val_accuracy']:.4f} on {len(vs)} images")
        meta = json.loads(stable_json(meta))  # the same plain types as when loaded from the cache
        save_checkpoint(path, model, meta)
        self.trained = True
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}, meta

    # -------------------------------------------------------------- use
    def _require(self) -> None:
        if self.model is None:
            raise TaskcodecError("expression-cnn: call prepare() before fingerprint()/predict()")

    def fingerprint(self) -> str:
        """sha256 of the weights, the class names, the input spec and the inference precision."""
        self._require()
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(state_digest(self.model.state_dict()).encode())
            h.update(stable_json({"classes": list(self.meta["classes"]), "in_channels": self.meta["in_channels"],
                                  "size": list(self.meta["size"]), "precision": self._precision}).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def predict(self, images: Sequence[np.ndarray]) -> list[int]:
        self._require()
        arr = to_array(list(images), int(self.meta["in_channels"]), tuple(self.meta["size"]))
        if len(arr) == 0:
            return []
        scores = run_model(self.model, arr, self._device, self._precision, self._resolved["eval_batch_size"])
        return [int(k) for k in scores.argmax(1)]

    def sample_rows(self, dataset: Dataset, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"image": s.id, "label": s.label, "pred": outputs[s.id]} for s in dataset]

    def provenance(self) -> dict[str, Any]:
        self._require()
        m = self.meta
        keep = ("model_version", "classes", "in_channels", "size", "width", "training", "train_split",
                "train_fingerprint", "val_split", "val_fingerprint", "val_accuracy", "val_images", "train_time_s",
                "train_images", "steps", "torch_threads", "torch_version", "device", "precision", "history")
        return {
            "fingerprint": self.fingerprint(),
            "weights_sha256": state_digest(self.model.state_dict()),
            "options": self.options(),
            "source": "checkpoint" if self._resolved["checkpoint"] else ("trained" if self.trained else "cache"),
            "checkpoint": str(self.cache_path) if self.cache_path else None,
            "inference_precision": self._precision,
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            **{k: m[k] for k in keep if k in m},
        }


@taskcodec.hookimpl
def register_tasks(register: Any) -> None:
    register(ExpressionCNN)
