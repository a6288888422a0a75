"""Checkpoints of the ``integer-hyperprior`` codec: one file holds one variable-rate model.

Checkpoint (``*.pt`` in the codec's ``models`` folder, ``torch.save``, read with ``weights_only=True``):

  format "taskcodec-integer-hyperprior", format_version 1,
  N, M, Nz, stages, in_channels (the architecture, :class:`.network.GainedHyperprior`),
  lambdas (the rate points, ascending: rate point i uses gain row i), mode ("rd", "task", "joint",
  "untrained"), seed,
  state_dict: the floating-point training parameters, stored as float16 (what fine-tuning starts from;
    half the size, and coding never reads them); no buffers: those are constants that the
    constructor sets (float16 would turn CompressAI's likelihood bound 1e-9 into 0, whose log is
    -inf in training). Files written before 2026-12-03 also hold buffers, which loading ignores,
  exact: the integer model the codec codes with, exported once from the weights when the file is
    written (:func:`.integer_network.export`): integer weights, shifts, gains and the entropy
    coder's tables. Nothing that selects an entropy model or makes a pixel is recomputed in floating
    point on the machine that decodes.
  digest: sha256 of the architecture, the lambdas and every tensor of ``state_dict`` and ``exact``;
  and JSON-like metadata (training facts, loss weights, training data, validation per rate point).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcodec_plugins.codecs.trained.checkpoints import CHECKPOINT_SUFFIX, MODES, CheckpointError, read_checkpoint
from taskcodec_plugins.torch_utils import save_atomic

CHECKPOINT_FORMAT = "taskcodec-integer-hyperprior"
CHECKPOINT_VERSION = 1
ARCH_KEYS = ("N", "M", "Nz", "stages", "in_channels")
STREAM_ID_BYTES = 2


@dataclass(frozen=True)
class RatePointEntry:
    """One rate point: a model (by digest) and the gain row it uses."""

    lmbda: float
    index: int
    digest: str  # the checkpoint's digest
    arch: tuple[int, ...]  # ARCH_KEYS' values
    mode: str
    seed: int
    path: str | None = None

    @property
    def rate_point(self) -> float:
        return self.lmbda

    @property
    def model_id(self) -> bytes:
        """What the stream carries: the first bytes of sha256(model digest, rate point index)."""
        return hashlib.sha256(f"{self.digest}:{self.index}".encode()).digest()[:STREAM_ID_BYTES]

    @property
    def full_id(self) -> bytes:
        """What the stream's checksum covers besides its bytes: a stream of another model fails it."""
        return hashlib.sha256(f"{self.digest}:{self.index}".encode()).digest()

    def describe(self) -> dict[str, Any]:
        return {"lambda": self.lmbda, "index": self.index, "digest": self.digest,
                **dict(zip(ARCH_KEYS, self.arch)), "mode": self.mode, "seed": self.seed}


def build_model(N: int, M: int, Nz: int, stages: int, in_channels: int, rate_points: int):
    from taskcodec import ensure_torchvision

    ensure_torchvision()  # before compressai imports torchvision
    from taskcodec_plugins.codecs.integer_hyperprior.network import GainedHyperprior

    return GainedHyperprior(N, M, Nz, in_channels, stages, rate_points)


def weights_digest(arch: dict[str, int], lambdas: list[float], tensors: dict[str, dict[str, Any]]) -> str:
    import torch

    h = hashlib.sha256(json.dumps([[arch[k] for k in ARCH_KEYS], [float(v) for v in lambdas]]).encode())
    for group in sorted(tensors):
        for key in sorted(tensors[group]):
            tensor = tensors[group][key].detach().to("cpu").contiguous()
            h.update(f"{group}.{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_metadata(document: dict[str, Any], where: str) -> None:
    problems = []
    for key in ARCH_KEYS:
        value = document.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{key}={value!r} must be a positive integer")
    if document.get("in_channels") not in (1, 3):
        problems.append(f"in_channels={document.get('in_channels')!r} must be 1 or 3")
    lambdas = document.get("lambdas")
    if (not isinstance(lambdas, list) or not lambdas
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                       for v in lambdas) or sorted(set(lambdas)) != lambdas):
        problems.append(f"lambdas={lambdas!r} must be a non-empty ascending list of distinct positive numbers")
    if document.get("mode") not in MODES:
        problems.append(f"mode {document.get('mode')!r} is not one of {list(MODES)}")
    seed = document.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"seed={seed!r} must be an integer")
    if not isinstance(document.get("exact"), dict):
        problems.append("'exact' (the integer model) is missing")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def _document_digest(document: dict[str, Any], state_dict: dict[str, Any]) -> str:
    return weights_digest({k: document[k] for k in ARCH_KEYS}, document["lambdas"],
                          {"state_dict": state_dict, "exact": document["exact"]})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked checkpoint dict with ``digest`` recomputed (CheckpointError naming the file otherwise)."""
    return read_checkpoint(path, checkpoint_format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                           family="integer-hyperprior", check=check_metadata, digest=_document_digest,
                           digest_required=True)


def training_state(model) -> dict[str, Any]:
    """The float parameters as stored: float16, buffers left out (the constructor's constants)."""
    import torch

    return {k: v.detach().to("cpu", torch.float16).clone() for k, v in model.named_parameters()}


def save_checkpoint(path: str | Path, model, *, lambdas: list[float], mode: str, seed: int,
                    **metadata: Any) -> str:
    """Export ``model`` to integers and write the checkpoint atomically; return its digest."""
    from taskcodec_plugins.codecs.integer_hyperprior import integer_network

    arch = {"N": model.N, "M": model.M, "Nz": model.Nz, "stages": model.stages, "in_channels": model.in_channels}
    document = {**metadata, "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **arch,
                "lambdas": [float(v) for v in lambdas], "mode": mode, "seed": int(seed)}
    document["state_dict"] = training_state(model)
    document["exact"] = integer_network.export(model)
    check_metadata(document, str(path))
    document["digest"] = _document_digest(document, document["state_dict"])
    save_atomic(document, Path(path))
    return document["digest"]


def model_from_checkpoint(document: dict[str, Any], lambdas: list[float] | None = None):
    """The float model of a checkpoint (for fine-tuning), in train mode.

    ``lambdas`` (default: the checkpoint's) may add rate points to the checkpoint's: their gain rows start
    on the straight line through the nearest two trained rows in log lambda (interpolated between them,
    extrapolated beyond the ends), which is where a variable-rate model's gains lie nearly.
    """
    import torch

    trained = list(document["lambdas"])
    lambdas = trained if lambdas is None else list(lambdas)
    if not set(trained) <= set(lambdas):
        raise CheckpointError(f"the checkpoint was trained for lambdas {trained}; a fine-tune may add rate points "
                              f"but keeps those, got {lambdas}")
    model = build_model(*(document[k] for k in ARCH_KEYS), rate_points=len(lambdas))
    buffers = {k for k, _ in model.named_buffers()}
    gains = ("log_gain", "log_inverse_gain")
    # the buffers stay the constructor's (older files hold float16 copies of them, see the module docstring)
    state = {k: v.float() for k, v in document["state_dict"].items() if k not in buffers and k not in gains}
    result = torch.nn.Module.load_state_dict(model, state, strict=False)
    missing = [k for k in result.missing_keys if k not in buffers and k not in gains]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"state_dict does not fit integer-hyperprior "
                              f"{dict(zip(ARCH_KEYS, (document[k] for k in ARCH_KEYS)))}: missing {missing[:5]}, "
                              f"unexpected {result.unexpected_keys[:5]}")
    with torch.no_grad():
        for name in gains:
            rows = document["state_dict"][name].float()
            getattr(model, name).copy_(torch.stack([_gain_row(rows, trained, v) for v in lambdas]))
    return model


def _gain_row(rows: Any, trained: list[float], lmbda: float) -> Any:
    """Row ``lmbda`` of the trained gain rows: itself, or the log-lambda line through the nearest two."""
    if lmbda in trained:
        return rows[trained.index(lmbda)]
    if len(trained) == 1:
        return rows[0]
    below = max([i for i, v in enumerate(trained) if v < lmbda], default=0)
    i = min(below, len(trained) - 2)
    t = (math.log(lmbda) - math.log(trained[i])) / (math.log(trained[i + 1]) - math.log(trained[i]))
    return rows[i] + t * (rows[i + 1] - rows[i])


__all__ = ["ARCH_KEYS", "CHECKPOINT_SUFFIX", "CheckpointError", "RatePointEntry", "build_model", "load_checkpoint",
           "model_from_checkpoint", "save_checkpoint", "weights_digest"]
