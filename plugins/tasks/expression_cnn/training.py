"""The training loop of the ``expression-cnn`` classifier: augmentation, schedule, model selection, resume.

Used by :class:`taskcodec_plugins.tasks.expression_cnn.task.ExpressionCNN` both when it trains on the fly (the
quickstart) and by its training command, ``taskcodec train CONFIG`` (``ExpressionCNN.train``).

What :func:`fit` does, per epoch:

- shuffles the training images, then for each batch applies the augmentation on the fly, in one
  ``grid_sample`` per batch: horizontal flip (p = 0.5; expressions are left-right symmetric), a random
  affine map (rotation up to ``rotate`` degrees, scale within ``1 +- scale``, translation up to
  ``shift`` pixels, edge pixels replicated: a random crop/shift), then random erasing (with
  probability ``erase`` a rectangle of 2-25% of the image, aspect 0.3-3.3, set to mid-grey);
- trains with AdamW or SGD (Nesterov, momentum 0.9), the learning rate warmed up linearly over the
  first ``warmup`` fraction of the steps and then annealed on a cosine to ~0, cross-entropy with
  ``label_smoothing`` (or, with soft targets, the cross-entropy to the vote distribution),
  in bf16 autocast where ``precision`` is bf16, channels_last;
- evaluates the validation split (centre view, and with flip test-time augmentation) and keeps the
  weights of the best epoch by validation accuracy when ``select`` is ``val`` (else the last epoch);
- with a ``state_path``: saves model, optimizer, step, RNG state, best weights and history there
  atomically (temporary file + fsync + rename) after every epoch.

Randomness: every epoch draws its shuffle, augmentation and dropout from generators seeded by
``(seed, epoch)``, so an epoch does not depend on how the process got there. A run killed at any
point and restarted with the same inputs resumes after its last completed epoch and ends with
**bit-identical weights** to an uninterrupted run on the same machine, torch build and thread count
(CPU kernels are deterministic for a fixed thread count; on CUDA, cuDNN may pick non-deterministic
algorithms, so there a resumed run is only guaranteed to continue from the saved epoch).
"""
from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from taskcodec_plugins.tasks.expression_cnn.model import build_model, normalise, run_model
from taskcodec_plugins.torch_utils import autocast, save_atomic

STATE_FORMAT = 1
ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 3.3)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and machines)."""
    h = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """Linear warm-up from peak/25 over ``warmup`` x total steps, then cosine annealing to peak/1e4."""
    w = int(round(warmup * total))
    if step < w:
        return peak * (1 / 25 + (1 - 1 / 25) * step / max(w, 1))
    t = (step - w) / max(total - w, 1)
    low = peak * 1e-4
    return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def augment(x: Any, gen: Any, cfg: dict[str, Any]) -> Any:
    """Flip / affine / erase a batch ``x`` (B x C x H x W float, normalised, mid-grey = 0)."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    dev = x.device

    def uniform(lo: float, hi: float, n: int = b) -> Any:
        return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(dev)

    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0).to(dev)
    angle = uniform(-cfg["rotate"], cfg["rotate"]) * (math.pi / 180)
    scale = uniform(1 - cfg["scale"], 1 + cfg["scale"])
    tx = uniform(-cfg["shift"], cfg["shift"]) * (2.0 / w)
    ty = uniform(-cfg["shift"], cfg["shift"]) * (2.0 / h)
    if not (cfg["rotate"] or cfg["scale"] or cfg["shift"]):
        x = torch.where((flip < 0)[:, None, None, None], x.flip(3), x)
    else:
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # output -> input coordinates; the flip mirrors the output's x axis
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg["erase"] > 0:
        on = (torch.rand(b, generator=gen) < cfg["erase"]).to(dev)
        area = uniform(*ERASE_AREA) * h * w
        aspect = torch.exp(uniform(math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
        eh = torch.sqrt(area * aspect).round().clamp(1, h)
        ew = torch.sqrt(area / aspect).round().clamp(1, w)
        y0 = (uniform(0, 1) * (h - eh + 1)).floor()
        x0 = (uniform(0, 1) * (w - ew + 1)).floor()
        rows = torch.arange(h, device=dev)[None, :]
        cols = torch.arange(w, device=dev)[None, :]
        inside_r = (rows >= y0[:, None]) & (rows < (y0 + eh)[:, None])
        inside_c = (cols >= x0[:, None]) & (cols < (x0 + ew)[:, None])
        mask = (inside_r[:, :, None] & inside_c[:, None, :] & on[:, None, None])[:, None]
        x = x.masked_fill(mask, 0.0)
    return x


def evaluate(model: Any, images: Any, labels: np.ndarray, n_classes: int, device: str, precision: str,
             batch_size: int) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 (centre view) and accuracy with flip TTA."""
    from taskcodec_plugins.metrics.classification import balanced_accuracy, macro_f1

    was_training = model.training
    model.eval()
    scores = run_model(model, images, device, precision, batch_size)
    flipped = run_model(model, images[..., ::-1], device, precision, batch_size)
    model.train(was_training)
    pred = scores.argmax(1)
    pred_tta = (scores + flipped).argmax(1)
    labels = np.asarray(labels)
    return {
        "accuracy": float(np.mean(pred == labels)),
        "balanced_accuracy": balanced_accuracy(labels.tolist(), pred.tolist()),
        "macro_f1": macro_f1(labels.tolist(), pred.tolist()),
        "accuracy_flip_tta": float(np.mean(pred_tta == labels)),
    }


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save ``state`` to ``path`` atomically: temporary file, fsync, rename."""
    save_atomic(state, path)


def load_state(path: Path, key: str, log: Callable[[str], None] | None) -> dict[str, Any] | None:
    """The saved training state at ``path`` if it belongs to this training (``key``), else None."""
    import torch

    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: start over
        if log:
            log(f"expression-cnn: ignoring unreadable training state {path} ({type(exc).__name__}: {exc})")
        return None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("key") != key:
        if log:
            log(f"expression-cnn: ignoring training state {path}: it belongs to another training")
        return None
    return state


def fit(images: np.ndarray, labels: np.ndarray, n_classes: int, cfg: dict[str, Any], seed: int, device: str,
        precision: str, *, targets: np.ndarray | None = None, val: tuple[np.ndarray, np.ndarray] | None = None,
        state_path: Path | None = None, key: str = "", log: Callable[[str], None] | None = None,
        progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Train a fresh network; returns (model in eval mode holding the selected weights, training facts).

    ``images``: N x C x H x W uint8; ``labels``: N class indices; ``targets``: optional N x K soft
    labels (used when ``cfg["targets"] == "soft"``); ``val``: (images, labels) of the validation split.
    ``cfg`` holds the expression-cnn training options (arch, width, epochs, batch_size, lr, optimizer,
    weight_decay, warmup, label_smoothing, augment, shift, rotate, scale, erase, select, targets).
    With ``state_path``, the state is saved after every epoch and a matching saved state (same ``key``)
    is resumed from.
    """
    started = time.perf_counter()
    run = _start(images, labels, n_classes, cfg, seed, device, precision, targets, val)
    saved = load_state(state_path, key, log) if state_path is not None else None
    if saved is not None:
        _resume(run, saved)
        if log:
            log(f"expression-cnn: resuming from {state_path} after epoch {run.start_epoch}/{cfg['epochs']}")
    resumed_from = run.start_epoch if saved is not None else None
    run.model.train()
    for epoch in range(run.start_epoch, cfg["epochs"]):
        record, seen = _train_epoch(run, epoch, progress)
        _validate(run, epoch, record)
        run.history.append(record)
        elapsed = run.elapsed_before + time.perf_counter() - started
        if state_path is not None:
            _save(run, state_path, key, epoch, elapsed)
        if log:
            _log_epoch(log, run, epoch, record, seen, elapsed, saved_state=state_path is not None)
    return run.model, _finish(run, started, resumed_from, len(images))


@dataclass
class _Run:
    """One fit's model, optimiser, data on the device and schedule, and what it has recorded so far."""

    model: Any
    opt: Any
    cfg: dict[str, Any]
    seed: int
    device: str
    precision: str
    n_classes: int
    rng_devices: list[Any]
    data: Any  # N x C x H x W uint8 tensor
    target: Any  # N class indices (int64 tensor)
    soft_targets: Any  # N x K vote distributions (float tensor) when cfg["targets"] is "soft", else None
    batch: int
    steps_per_epoch: int  # the last partial batch is dropped: equal-sized steps
    aug: dict[str, Any]  # the augmentation's parameters (all 0 without augment)
    val: tuple[np.ndarray, np.ndarray] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None  # {"epoch", "metric", "state"}
    start_epoch: int = 0
    elapsed_before: float = 0.0

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg["epochs"]


def _start(images: np.ndarray, labels: np.ndarray, n_classes: int, cfg: dict[str, Any], seed: int, device: str,
           precision: str, targets: np.ndarray | None, val: tuple[np.ndarray, np.ndarray] | None) -> _Run:
    """A freshly initialised network (under ``seed``, the global RNG left alone), its optimiser and the data."""
    import torch

    n = len(images)
    rng_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = build_model(images.shape[1], n_classes, cfg["width"], cfg["arch"])
    model = model.to(device=device, memory_format=torch.channels_last)
    params_decay = [p for p in model.parameters() if p.ndim > 1]
    params_other = [p for p in model.parameters() if p.ndim <= 1]  # no weight decay on BN and biases
    groups = [{"params": params_decay, "weight_decay": cfg["weight_decay"]}, {"params": params_other, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg["lr"])
    data = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    soft_targets = None
    if cfg.get("targets") == "soft":
        if targets is None:
            raise ValueError("soft targets requested but the training split has none (dataset.targets)")
        soft_targets = torch.from_numpy(np.asarray(targets, dtype=np.float32)).to(device)
    batch = min(cfg["batch_size"], n)
    aug = {k: (cfg[k] if cfg["augment"] else 0) for k in ("shift", "rotate", "scale", "erase")}
    if val is not None:
        val = (np.ascontiguousarray(val[0]), np.asarray(val[1]))
    return _Run(model, opt, cfg, seed, device, precision, n_classes, rng_devices, data, target, soft_targets, batch,
                max(n // batch, 1), aug, val)


def _resume(run: _Run, saved: dict[str, Any]) -> None:
    """Continue from a saved state: weights, optimiser, history, best epoch and torch's RNG."""
    import torch

    run.model.load_state_dict(saved["model"])
    run.opt.load_state_dict(saved["optimizer"])
    run.start_epoch, run.history, run.elapsed_before = (int(saved["epoch"]), list(saved["history"]),
                                                        float(saved["elapsed_s"]))
    if saved.get("best") is not None:
        run.best = saved["best"]
    torch.set_rng_state(saved["torch_rng"])


def _train_epoch(run: _Run, epoch: int, progress: bool) -> tuple[dict[str, Any], int]:
    """One pass over the shuffled training images; returns (the epoch's record, images seen)."""
    import torch
    from tqdm import tqdm

    cfg, device, batch = run.cfg, run.device, run.batch
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(derived_seed(run.seed, epoch, 1))
    order = torch.randperm(len(run.data), generator=gen)
    loss_sum, correct, seen = 0.0, 0, 0
    interactive = sys.stderr.isatty()
    bar = tqdm(total=run.steps_per_epoch * batch, desc=f"epoch {epoch + 1}/{cfg['epochs']}", unit="img", leave=False,
               disable=not progress, file=sys.stderr, dynamic_ncols=True, mininterval=0.5 if interactive else 30.0)
    with torch.random.fork_rng(devices=run.rng_devices):
        torch.manual_seed(derived_seed(run.seed, epoch, 2))  # dropout
        for step in range(run.steps_per_epoch):
            lr = lr_at(epoch * run.steps_per_epoch + step, run.total_steps, cfg["lr"], cfg["warmup"])
            for g in run.opt.param_groups:
                g["lr"] = lr
            idx = order[step * batch:(step + 1) * batch].to(device)
            logits, loss = _step(run, idx, gen)
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == run.target[idx]).sum())
            seen += len(idx)
            bar.update(len(idx))
    bar.close()
    record: dict[str, Any] = {"epoch": epoch + 1, "loss": round(loss_sum / seen, 5),
                              "train_accuracy": round(correct / seen, 5), "lr_end": lr,
                              "seconds": round(time.perf_counter() - t0, 2)}
    return record, seen


def _step(run: _Run, idx: Any, gen: Any) -> tuple[Any, Any]:
    """One optimiser step on the images ``idx`` (augmented from ``gen``); returns (logits, loss)."""
    import torch
    import torch.nn.functional as F

    cfg = run.cfg
    xb = normalise(run.data[idx])
    if cfg["augment"]:
        xb = augment(xb, gen, run.aug)
    xb = xb.contiguous(memory_format=torch.channels_last)
    with autocast(run.device, run.precision):
        logits = run.model(xb)
    logits = logits.float()
    if run.soft_targets is not None:
        tb = run.soft_targets[idx]
        if cfg["label_smoothing"]:
            tb = tb * (1 - cfg["label_smoothing"]) + cfg["label_smoothing"] / run.n_classes
        loss = -(tb * F.log_softmax(logits, 1)).sum(1).mean()
    else:
        loss = F.cross_entropy(logits, run.target[idx], label_smoothing=cfg["label_smoothing"])
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    return logits, loss


def _validate(run: _Run, epoch: int, record: dict[str, Any]) -> None:
    """Score the validation split into ``record``; keep the weights of the best epoch so far."""
    if run.val is None:
        return
    metrics = evaluate(run.model, run.val[0], run.val[1], run.n_classes, run.device, run.precision,
                       run.cfg["eval_batch_size"])
    record.update({f"val_{k}": round(v, 5) for k, v in metrics.items()})
    if run.best is None or metrics["accuracy"] > run.best["metric"]:
        run.best = {"epoch": epoch + 1, "metric": metrics["accuracy"],
                    "state": {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}}


def _save(run: _Run, state_path: Path, key: str, epoch: int, elapsed: float) -> None:
    import torch

    save_state(state_path, {
        "format": STATE_FORMAT, "key": key, "epoch": epoch + 1, "history": run.history, "elapsed_s": elapsed,
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "optimizer": run.opt.state_dict(), "best": run.best, "torch_rng": torch.get_rng_state(),
    })


def _log_epoch(log: Callable[[str], None], run: _Run, epoch: int, record: dict[str, Any], seen: int, elapsed: float,
               saved_state: bool) -> None:
    epochs = run.cfg["epochs"]
    rate = seen / max(record["seconds"], 1e-9)
    eta = (epochs - epoch - 1) * record["seconds"]
    vtext = (f" | val acc {record['val_accuracy']:.4f} (flip TTA {record['val_accuracy_flip_tta']:.4f})"
             if "val_accuracy" in record else "")
    log(f"expression-cnn: epoch {epoch + 1}/{epochs} loss {record['loss']:.4f} train acc "
        f"{record['train_accuracy']:.3f}{vtext} | lr {record['lr_end']:.2e} | {rate:.0f} img/s | "
        f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left" + (" | state saved" if saved_state else ""))


def _finish(run: _Run, started: float, resumed_from: int | None, n: int) -> dict[str, Any]:
    """Select the epoch (best validation accuracy with select 'val', else the last), eval mode; the facts."""
    import torch

    selected = run.cfg["epochs"]
    if run.cfg["select"] == "val" and run.best is not None:
        run.model.load_state_dict(run.best["state"])
        selected = int(run.best["epoch"])
    run.model.eval()
    elapsed = run.elapsed_before + time.perf_counter() - started
    return {"train_time_s": round(elapsed, 3), "history": run.history, "train_images": n, "steps": run.total_steps,
            "selected_epoch": selected, "resumed_from_epoch": resumed_from,
            "torch_threads": torch.get_num_threads(), "torch_version": str(torch.__version__),
            "device": run.device, "precision": run.precision}
