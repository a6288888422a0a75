"""``taskcodec train-codec`` for the ``learned`` codec: one CompressAI model per lambda.

Writes ``<out>/lambda-<lambda>.pt`` (the codec's checkpoint format; metadata: mode, loss weights,
training data fingerprint, seed, steps, time, throughput, hardware, validation metrics) and
``<out>/training.json`` (the same facts for every rate point, for leaderboards). Joint mode also
writes the jointly trained task model (``task_out``, default ``<out>-task-model.pt``).

Training options (besides :data:`taskcodec_plugins.codecs.trained.training.TRAIN_DEFAULTS`):
``arch``, ``N``, ``M`` (the architecture; taken from ``init`` checkpoints when given) and
``in_channels`` (default: the training images' channels).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins.codecs.trained.training import CodecModel, compressai_rate_bits, training_options
from taskcodec_plugins.codecs.trained import driver
from taskcodec_plugins.codecs.learned import models

EXTRA_OPTIONS = {"arch": "bmshj2018-factorized", "N": 64, "M": 96, "in_channels": None}


def _init_documents(init: Any, points: tuple[float, ...]) -> dict[float, dict[str, Any]]:
    """The checkpoint each rate point starts from: a file (all points) or a folder (same lambda)."""
    if init is None:
        return {}
    path = Path(init)
    try:
        if path.is_file():
            doc = models.load_checkpoint(path)
            return {p: doc for p in points}
        if path.is_dir():
            by_lambda = {doc["lambda"]: doc for doc in map(models.load_checkpoint, sorted(path.glob("*" + models.CHECKPOINT_SUFFIX)))}
            found = {p: next((d for q, d in by_lambda.items() if abs(p - q) <= 1e-9 * max(1.0, p)), None) for p in points}
            missing = [p for p, d in found.items() if d is None]
            if missing:
                raise CodecError(f"codec 'learned': init folder {path} has no checkpoint for lambda {missing} "
                                 f"(it has {sorted(by_lambda)})")
            return found  # type: ignore[return-value]
    except models.CheckpointError as exc:
        raise CodecError(f"codec 'learned': init: {exc}") from None
    raise CodecError(f"codec 'learned': init={str(init)!r} is neither a checkpoint file nor a folder")


def train_learned(request: CodecTrainingRequest) -> dict[str, Any]:
    import torch

    o = training_options(request.options, EXTRA_OPTIONS, "learned")
    points = tuple(sorted(float(p) for p in request.rate_points))
    if any(p <= 0 for p in points):
        raise CodecError(f"codec 'learned': rate points are lambdas > 0, got {list(points)}")
    inits = _init_documents(o["init"], points)
    if inits:
        doc = next(iter(inits.values()))
        for key in ("arch", "N", "M", "in_channels"):
            if key in request.options and request.options[key] != doc[key]:
                raise CodecError(f"codec 'learned': training option {key}={request.options[key]!r} but the init "
                                 f"checkpoint has {doc[key]!r}")
            o[key] = doc[key]
    if o["arch"] not in models.ARCHITECTURES:
        raise CodecError(f"codec 'learned': arch {o['arch']!r} is not one of {sorted(models.ARCHITECTURES)}")
    sample = request.dataset[0].image
    channels = 1 if sample.ndim == 2 else sample.shape[2]
    if o["in_channels"] is None:
        o["in_channels"] = channels
    if o["in_channels"] != channels:
        raise CodecError(f"codec 'learned': the model takes {o['in_channels']}-channel images, the training data "
                         f"has {channels} channels")
    arch = {k: o[k] for k in ("arch", "N", "M", "in_channels")}
    seed, out = request.context.seed, Path(request.out)

    def build(point: float) -> CodecModel:
        if point in inits:
            model = models.build_model(**{k: inits[point][k] for k in ("arch", "N", "M", "in_channels")})
            state = {k: v for k, v in inits[point]["state_dict"].items() if k.rsplit(".", 1)[-1] not in models.DERIVED_BUFFERS}
            torch.nn.Module.load_state_dict(model, state, strict=False)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = models.build_model(**arch)
        return CodecModel(point, model, compressai_rate_bits, models.ARCHITECTURES[o["arch"]].downsampling)

    def save(m: CodecModel, meta: dict[str, Any]) -> None:
        init = {"digest": inits[m.point]["digest"], "mode": inits[m.point]["mode"]} if m.point in inits else None
        models.save_checkpoint(file_for(m.point), m.model, **arch, lmbda=m.point, mode=request.mode, seed=seed,
                           init=init, **meta)

    def file_for(point: float) -> Path:
        return out / f"lambda-{point:g}{models.CHECKPOINT_SUFFIX}"

    def load_metadata(path: Path) -> dict[str, Any]:
        return {k: v for k, v in models.load_checkpoint(path).items() if k != "state_dict"}

    family = driver.CodecFamily("learned", file_for, build, save, load_metadata, arch)
    identity = {"options": {k: v for k, v in o.items() if k != "init"}, "version": 1,
                "init_digests": {f"{p:g}": d["digest"] for p, d in inits.items()}}
    return driver.train_rate_points(request, o, points, family, identity)
