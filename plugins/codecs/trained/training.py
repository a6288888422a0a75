"""Task-aware training of learned codecs: the objective of both papers, resumable.

Per image batch ``x`` and codec model at rate point ``lambda``::

    L = bpp + lambda * (alpha * 255^2 * MSE(x, x_hat) + beta * D_feat(f(x), f(x_hat)) + gamma * L_task(x_hat))

which is the papers' ``L = a*Rate + b*MSE + c*D_feat + d*L_task`` divided by ``lambda`` (rate weight
``1/lambda``), written so that ``lambda`` keeps CompressAI's meaning (larger lambda, more bits) and
names the rate point. ``f`` is the task model's feature extractor and ``L_task`` its loss
(:meth:`taskcodec.Task.differentiable`). ``adaptive: true`` rescales the feature and task terms by
the running ratio of the unweighted MSE term's (255^2 MSE) magnitude to theirs (exponential moving
averages), so that alpha, beta and gamma weigh terms of equal typical size: alpha 0.2, gamma 1 puts
five times the MSE term's weight on the task term, and lowering alpha alone lowers only the MSE
term. (Until 2026-11-22 the reference was the alpha-weighted MSE term, which made alpha scale all
three terms, like a smaller lambda; (alpha, beta, gamma) then equal (alpha, alpha beta, alpha gamma)
now.) The fixed weights are used otherwise.

Modes (``taskcodec train-codec``): ``rd`` trains the codec alone (usually alpha only); ``task``
fine-tunes it with the task model frozen; ``joint`` optimises the codecs of all rate points and one
shared task model together (each step: the same batch through every rate point's codec; the task
model gets the sum of their gradients, plus ``clean_weight`` times its loss on the uncompressed
batch so that it stays accurate on uncompressed images), and writes the task model beside them.

Determinism and resumption: step ``s`` draws its batch from the permutation of epoch
``s // steps_per_epoch`` (seeded by seed and epoch) and seeds torch's generator with (seed, s);
the whole state (models, optimisers, loss averages, history) is saved atomically every
``save_every`` steps under the store, so a killed training resumes where it stopped. Which models
to train, the training keys and what is written: :mod:`taskcodec_plugins.codecs.trained.driver`.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins.torch_utils import save_atomic

TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 2000,          # optimiser steps per training (joint: per step every rate point's codec sees the batch)
    "batch_size": 32,
    "lr": 1e-4,             # codec (Adam); from scratch 1e-3 suits CompressAI models
    "aux_lr": 1e-3,         # the entropy bottlenecks' quantiles (CompressAI's auxiliary loss)
    "task_lr": 1e-5,        # joint mode: the task model
    "lr_drop": 0.8,         # fraction of the steps after which the learning rates drop tenfold
    "alpha": 1.0,           # MSE weight
    "beta": 0.0,            # feature-loss weight
    "gamma": 0.0,           # task-loss weight
    "adaptive": False,      # normalise the feature/task terms to the unweighted MSE term's running magnitude
    "clean_weight": 0.0,    # joint mode: task loss on the uncompressed batch
    "init": None,           # a checkpoint file or a folder of checkpoints (same rate points) to start from
    "task_out": None,       # joint mode: where the task model goes (default: <out>-task-model.pt beside <out>)
    "flip": True,           # random horizontal flips
    "clip_grad": 1.0,
    "save_every": 200,
    "log_every": 100,
    "val_images": 1000,     # images of the validation split scored at the end
}


def training_options(options: dict[str, Any], extra: dict[str, Any], codec: str) -> dict[str, Any]:
    """Defaults merged with ``options``; unknown keys are an error naming them."""
    allowed = {**TRAIN_DEFAULTS, **extra}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise CodecError(f"codec {codec!r}: unknown training option(s) {unknown}; allowed: {', '.join(allowed)}")
    merged = {**allowed, **options}
    for key in ("steps", "batch_size", "save_every", "log_every"):
        if not isinstance(merged[key], int) or isinstance(merged[key], bool) or merged[key] < 1:
            raise CodecError(f"codec {codec!r}: training option {key}={merged[key]!r}: expected a positive integer")
    for key in ("lr", "aux_lr", "task_lr", "alpha", "beta", "gamma", "clean_weight", "lr_drop"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise CodecError(f"codec {codec!r}: training option {key}={value!r}: expected a number >= 0")
    return merged


# --------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    images: Any  # torch uint8 N x C x H x W
    labels: list[Any]
    fingerprint: str
    ids: list[str]

    @property
    def pixels(self) -> int:
        return int(self.images.shape[2] * self.images.shape[3])


def load_data(dataset: Any, limit: int | None = None) -> TrainingData:
    """Every image of ``dataset`` (one size, all gray or all RGB) as a uint8 tensor, with labels."""
    import torch

    samples = list(dataset)
    if limit is not None and len(samples) > limit:
        step = len(samples) / limit  # an even spread over the split, the same every time
        samples = [samples[int(i * step)] for i in range(limit)]
    if not samples:
        raise CodecError(f"training data: the dataset {type(dataset).__name__} split is empty")
    first = samples[0].image
    shape = first.shape
    bad = [s.id for s in samples if s.image.shape != shape]
    if bad:
        raise CodecError(f"training data: images must share one shape ({shape} like {samples[0].id!r}); "
                         f"{len(bad)} differ, e.g. {bad[0]!r} is {next(s.image.shape for s in samples if s.id == bad[0])}")
    arr = np.stack([s.image for s in samples])
    arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
    h = hashlib.sha256()
    for s in samples:
        h.update(s.id.encode() + b"\0")
    h.update(hashlib.sha256(np.ascontiguousarray(arr).tobytes()).digest())
    return TrainingData(torch.from_numpy(np.ascontiguousarray(arr)), [s.label for s in samples], h.hexdigest(),
                        [s.id for s in samples])


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The samples of optimiser step ``step``: consecutive slices of per-epoch seeded permutations."""
    per_epoch = max(1, n // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[position * batch_size : (position + 1) * batch_size]


# --------------------------------------------------------------------------- the loop
@dataclass
class CodecModel:
    """One rate point under training: the model and how to read its rate."""

    point: float
    model: Any
    rate_bits: Callable[[dict[str, Any]], Any]  # forward output -> bits per image (tensor N)
    pad_multiple: int
    lmbda: float | None = None  # the loss's lambda when the rate point is not one (default: the point)
    # (i, n): this rate point trains on images i, i+n, i+2n... of each batch (the n rate points of a variable-rate
    # model share one batch: as many images per step as one rate point alone, n times the data seen); None: all
    batch_share: tuple[int, int] | None = None

    @property
    def trade_off(self) -> float:
        return self.point if self.lmbda is None else self.lmbda


def compressai_rate_bits(out: dict[str, Any]) -> Any:
    """Bits per image from a CompressAI forward pass: sum of -log2 likelihoods."""
    import torch

    return sum((-torch.log2(p)).flatten(1).sum(1) for p in out["likelihoods"].values())


def _split_parameters(model: Any) -> tuple[list[Any], list[Any]]:
    main, aux = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (aux if name.endswith("quantiles") else main).append(p)
    return main, aux


def _pad(x: Any, multiple: int) -> Any:
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class Trainer:
    """Trains one or more rate points' codecs (and in joint mode the task model) for a request."""

    def __init__(self, request: CodecTrainingRequest, options: dict[str, Any], models: Sequence[CodecModel],
                 data: TrainingData, key: str, adapter: Any = None):
        self.request, self.o, self.models, self.data, self.key = request, options, list(models), data, key
        self.adapter = adapter
        self.joint = request.mode == "joint"
        self.log = request.context.log
        self.device = request.context.device
        self.state_path = Path(request.state_dir) / f"{key[:24]}.state.pt"
        self.uses_task = adapter is not None and (options["beta"] > 0 or options["gamma"] > 0
                                                  or options["clean_weight"] > 0)

    def _optimisers(self) -> dict[str, Any]:
        import torch

        main, aux, seen = [], [], set()
        for m in self.models:  # the rate points of a variable-rate model share their parameters: each once
            a, b = _split_parameters(m.model)
            main += [p for p in a if id(p) not in seen]
            aux += [p for p in b if id(p) not in seen]
            seen.update(id(p) for p in a + b)
        opts = {"main": torch.optim.Adam(main, lr=self.o["lr"])}
        if aux:
            opts["aux"] = torch.optim.Adam(aux, lr=self.o["aux_lr"])
        if self.joint:
            opts["task"] = torch.optim.Adam([p for p in self.adapter.module.parameters() if p.requires_grad],
                                            lr=self.o["task_lr"])
        return opts

    def run(self) -> dict[str, Any]:
        o = self.o
        self._training_mode()
        opts = self._optimisers()
        start_step, ema, history, elapsed = self._resume(opts)
        batch = min(o["batch_size"], len(self.data.images))
        t0 = time.perf_counter() - elapsed
        running: dict[str, list[float]] = {}
        for step in range(start_step, o["steps"]):
            for k, v in self._step(step, batch, opts, ema).items():
                running.setdefault(k, []).append(v)
            done = step + 1
            if done % o["log_every"] == 0 or done == o["steps"]:
                history.append(self._log_progress(done, running, batch, t0))
                running = {}
            if done % o["save_every"] == 0 or done == o["steps"]:
                self._save_state(done, opts, ema, history, t0)
        seconds = time.perf_counter() - t0
        for m in self.models:
            m.model.eval()
        return {"steps": o["steps"], "batch_size": batch, "seconds": round(seconds, 1),
                "images_per_s": round(o["steps"] * self._images_per_step(batch) / max(seconds, 1e-9), 1),
                "history": history}

    def _training_mode(self) -> None:
        """Codecs in train mode; the task model in eval mode (its batch norms keep their statistics, also in
        joint mode), trainable only in joint mode."""
        for m in self.models:
            m.model.to(self.device).train()
        if self.adapter is not None:
            self.adapter.module.to(self.device).eval()
            for p in self.adapter.module.parameters():
                p.requires_grad_(self.joint)

    def _resume(self, opts: dict[str, Any]) -> tuple[int, dict[str, float], list[dict[str, float]], float]:
        """(first step, loss averages, history, seconds spent): from this training's saved state if there is one."""
        import torch

        if self.state_path.is_file():
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
            if state.get("key") == self.key:
                for m, sd in zip(self.models, state["models"]):
                    m.model.load_state_dict(sd)
                for name, sd in state["optimisers"].items():
                    opts[name].load_state_dict(sd)
                if self.joint:
                    self.adapter.module.load_state_dict(state["task"])
                self.log(f"train-codec: resuming at step {state['step']} of {self.o['steps']} from {self.state_path}")
                return state["step"], dict(state["ema"]), list(state["history"]), state["elapsed"]
        return 0, {}, [], 0.0

    def _step(self, step: int, batch: int, opts: dict[str, Any], ema: dict[str, float]) -> dict[str, float]:
        """One optimisation step on step ``step``'s batch; returns the loss parts."""
        import torch

        o, seed = self.o, self.request.context.seed
        factor = 0.1 if step >= int(o["lr_drop"] * o["steps"]) else 1.0
        base_lr = {"main": o["lr"], "aux": o["aux_lr"], "task": o["task_lr"]}
        for name, opt in opts.items():
            for g in opt.param_groups:
                g["lr"] = base_lr[name] * factor
        torch.manual_seed(seed * 1_000_003 + step)
        idx = batch_indices(len(self.data.images), batch, step, seed)
        x = self.data.images[torch.from_numpy(idx)].to(self.device).float().div_(255.0)
        if o["flip"]:
            flips = torch.rand(len(x)) < 0.5
            x[flips] = x[flips].flip(3)
        labels = [self.data.labels[i] for i in idx]
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        total, parts = self._loss(x, labels, ema)
        total.backward()
        params = [p for opt in (opts["main"], opts.get("task")) if opt for g in opt.param_groups for p in g["params"]]
        if o["clip_grad"]:
            torch.nn.utils.clip_grad_norm_(params, o["clip_grad"])
        opts["main"].step()
        if "task" in opts:
            opts["task"].step()
        if "aux" in opts:
            aux_loss = sum(loss() for loss in self._aux_losses())
            aux_loss.backward()
            opts["aux"].step()
        return parts

    def _images_per_step(self, batch: int) -> int:
        """Images through a codec per step: the batch once per rate point, or once when the points share it."""
        return batch if all(m.batch_share is not None for m in self.models) else batch * len(self.models)

    def _aux_losses(self) -> list[Callable[[], Any]]:
        """Each distinct model's auxiliary loss once (a variable-rate model's views share one)."""
        losses, seen = [], set()
        for m in self.models:
            owner = getattr(m.model, "model", m.model)
            if id(owner) not in seen:
                seen.add(id(owner))
                losses.append(m.model.aux_loss)
        return losses

    def _log_progress(self, done: int, running: dict[str, list[float]], batch: int, t0: float) -> dict[str, float]:
        """The history record of the steps since the last one (their mean loss parts), logged."""
        record = {"step": done, **{k: float(np.mean(v)) for k, v in running.items()},
                  "seconds": round(time.perf_counter() - t0, 1)}
        rate = done * self._images_per_step(batch) / max(1e-9, time.perf_counter() - t0)
        self.log("train-codec: step {}/{}  ".format(done, self.o["steps"]) + "  ".join(
            f"{k} {v:.4g}" for k, v in record.items() if k not in ("step", "seconds")) + f"  ({rate:.0f} img/s)")
        return record

    def _save_state(self, done: int, opts: dict[str, Any], ema: dict[str, float], history: list[dict[str, float]],
                    t0: float) -> None:
        save_atomic({"key": self.key, "step": done, "models": [m.model.state_dict() for m in self.models],
                     "optimisers": {k: v.state_dict() for k, v in opts.items()},
                     "task": self.adapter.module.state_dict() if self.joint else None,
                     "ema": ema, "history": history, "elapsed": time.perf_counter() - t0}, self.state_path)

    def _loss(self, x: Any, labels: list[Any], ema: dict[str, float]) -> tuple[Any, dict[str, float]]:
        import torch
        import torch.nn.functional as F

        o = self.o
        h, w = x.shape[-2:]
        total = x.new_zeros(())
        parts: dict[str, float] = {}
        target = None
        if self.uses_task and o["beta"] > 0:
            with torch.no_grad():  # the ORIGINAL task model's features: in joint mode a moving target could collapse
                target = self.adapter.target_features(x)
        for m in self.models:
            x_all, labels_all, target_all = x, labels, target
            if m.batch_share is not None:
                i, n = m.batch_share
                x, labels = x_all[i::n], labels_all[i::n]
                target = target_all[i::n] if target_all is not None else None
            out = m.model(_pad(x, m.pad_multiple))
            x_hat = out["x_hat"][..., :h, :w]
            bpp = m.rate_bits(out).mean() / (h * w)
            mse = 255.0**2 * F.mse_loss(x_hat, x)
            distortion = o["alpha"] * mse
            tag = f"{m.point:g}" if len(self.models) > 1 else ""
            parts[f"bpp{tag}"] = float(bpp.detach())
            parts[f"mse{tag}"] = float(mse.detach()) / 255.0**2
            _update_ema(ema, "mse", float(mse.detach()))  # unweighted: alpha must not scale beta's and gamma's terms
            if self.uses_task and o["beta"] > 0:
                feat = F.mse_loss(self.adapter.features(x_hat), target)
                _update_ema(ema, "feat", float(feat.detach()))
                distortion = distortion + o["beta"] * feat * self._scale(ema, "feat")
                parts[f"feat{tag}"] = float(feat.detach())
            if self.uses_task and o["gamma"] > 0:
                task = self.adapter.loss(x_hat, x, labels)
                _update_ema(ema, "task", float(task.detach()))
                distortion = distortion + o["gamma"] * task * self._scale(ema, "task")
                parts[f"task{tag}"] = float(task.detach())
            total = total + bpp + m.trade_off * distortion
            x, labels, target = x_all, labels_all, target_all
        if self.joint and o["clean_weight"] > 0:
            clean = self.adapter.loss(x, x, labels)
            total = total + o["clean_weight"] * clean
            parts["task_clean"] = float(clean.detach())
        parts["loss"] = float(total.detach())
        return total, parts

    def _scale(self, ema: dict[str, float], name: str) -> float:
        if not self.o["adaptive"]:
            return 1.0
        return ema["mse"] / max(ema[name], 1e-12)


def _update_ema(ema: dict[str, float], name: str, value: float, decay: float = 0.99) -> None:
    ema[name] = value if name not in ema else decay * ema[name] + (1 - decay) * value


def evaluate(models: Sequence[CodecModel], data: TrainingData, adapter: Any, device: str,
             batch_size: int = 64) -> dict[float, dict[str, float]]:
    """Per rate point on ``data``: estimated bpp (rounded latents), PSNR, and the task score."""
    import torch

    out: dict[float, dict[str, float]] = {}
    for m in models:
        m.model.eval()
        bits, sq, scores, count = 0.0, [], [], 0
        with torch.no_grad():
            for start in range(0, len(data.images), batch_size):
                x = data.images[start : start + batch_size].to(device).float().div_(255.0)
                h, w = x.shape[-2:]
                res = m.model(_pad(x, m.pad_multiple))
                x_hat = res["x_hat"][..., :h, :w].clamp(0, 1)
                x_hat = torch.round(x_hat * 255.0) / 255.0  # what the decoder's uint8 output carries
                bits += float(m.rate_bits(res).sum())
                sq.append(((x_hat - x) ** 2).flatten(1).mean(1))
                if adapter is not None:
                    labels = data.labels[start : start + batch_size]
                    scores.append(float(adapter.accuracy(x_hat, x, labels)) * len(x))
                count += len(x)
        mse = torch.cat(sq)
        psnr = float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())
        out[m.point] = {"estimated_bpp": bits / count / data.pixels, "psnr": psnr, "images": count}
        if scores:
            out[m.point]["task_score"] = sum(scores) / count
    return out
