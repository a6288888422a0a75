"""Models and checkpoints of the ``learned`` codec: CompressAI architectures, the checkpoint file
format, the weights digest that identifies a model, and deterministic untrained stand-ins.

Nothing heavy is imported at module level: torch and compressai load inside the functions, so
that ``taskcodec plugins`` stays fast. Training code (``taskcodec train-codec``, see
:mod:`taskcodec_plugins.codecs.learned.training`) builds its models with
:func:`build_model` and writes them with :func:`save_checkpoint`; the codec reads them back with
:func:`load_checkpoint` and :func:`model_from_checkpoint`.

Checkpoint file (``<anything>.pt`` in the codec's ``models`` folder, written by ``torch.save``,
read with ``weights_only=True``): a dict with

  format "taskcodec-learned-codec", format_version 1,
  arch (a key of :data:`ARCHITECTURES`), N, M (channel widths), in_channels (1 or 3),
  lambda (the rate point: the rate-distortion trade-off it was trained for, > 0),
  mode ("rd", "task", "joint", or "untrained"), seed (int),
  state_dict (the model's tensors: :func:`save_checkpoint` writes ``model.state_dict()`` whole, so
    CompressAI's ``load_state_dict`` reads it; the derived entropy-coder tables may be left out),
  digest (optional: :func:`weights_digest`, checked on load when present),
  and any further JSON-like metadata (loss weights, training data, metrics, steps...).

The weights digest is the sha256 of the architecture (arch, N, M, in_channels) and every tensor
of the state dict in sorted key order (name, dtype, shape, raw bytes), leaving out the entropy
coder's tables (``_quantized_cdf``, ``_offset``, ``_cdf_length``, ``scale_table``) that
``model.update(force=True)`` recomputes from the weights on load.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from taskcodec_plugins.codecs.trained.bitstream import MODEL_ID_BYTES
from taskcodec_plugins.codecs.trained.checkpoints import (CHECKPOINT_SUFFIX, DERIVED_BUFFERS, MODES, CheckpointError,
                                                          is_derived, load_weights, read_checkpoint)
from taskcodec_plugins.torch_utils import save_atomic

CHECKPOINT_FORMAT = "taskcodec-learned-codec"
CHECKPOINT_VERSION = 1
ENTROPY_CODER = "ans"


class ArchSpec(NamedTuple):
    compressai_class: str  # in compressai.models
    downsampling: int  # the input must be a multiple of this
    strings: int  # entropy-coded strings per image (y, then z)
    latent_factor: int  # input size / the spatial shape ``decompress`` takes


ARCHITECTURES = {
    "bmshj2018-factorized": ArchSpec("FactorizedPrior", 16, 1, 16),
    "bmshj2018-hyperprior": ArchSpec("ScaleHyperprior", 64, 2, 64),
    "mbt2018-mean": ArchSpec("MeanScaleHyperprior", 64, 2, 64),
}


@dataclass(frozen=True)
class ModelEntry:
    """One rate point of the codec: a model's identity and where it comes from."""

    lmbda: float
    digest: str  # weights_digest
    arch: str
    N: int
    M: int
    in_channels: int
    mode: str
    seed: int
    path: str | None = None  # the checkpoint; None for an untrained stand-in

    @property
    def rate_point(self) -> float:
        """The rate point (the codec's rate point): the lambda."""
        return self.lmbda

    @property
    def model_id(self) -> bytes:
        """What the bitstream header carries: the digest's first bytes."""
        return bytes.fromhex(self.digest[: 2 * MODEL_ID_BYTES])

    def describe(self) -> dict[str, Any]:
        """For the codec identity (the cache key): everything but the path."""
        return {"lambda": self.lmbda, "digest": self.digest, "arch": self.arch, "N": self.N, "M": self.M,
                "in_channels": self.in_channels, "mode": self.mode, "seed": self.seed}


def _compressai():
    from taskcodec import ensure_torchvision

    ensure_torchvision()  # before compressai imports torchvision
    import compressai

    if ENTROPY_CODER not in compressai.available_entropy_coders():
        raise RuntimeError(f"CompressAI's {ENTROPY_CODER!r} entropy coder is not available")
    compressai.set_entropy_coder(ENTROPY_CODER)
    return compressai


def build_model(arch: str, N: int, M: int, in_channels: int = 3):
    """A freshly initialised CompressAI model (train mode) taking ``in_channels``-channel images in [0, 1].

    CompressAI's classes are built for RGB; for ``in_channels`` 1 the first analysis
    convolution and the last synthesis deconvolution are replaced (same shapes otherwise, same
    state-dict keys).
    """
    spec = ARCHITECTURES[arch]
    _compressai()
    import compressai.models as models
    from compressai.models.utils import conv, deconv

    model = getattr(models, spec.compressai_class)(N, M)
    if in_channels != 3:
        model.g_a[0] = conv(in_channels, N)
        model.g_s[-1] = deconv(N, in_channels)
    return model


def weights_digest(arch: str, N: int, M: int, in_channels: int, state_dict: dict[str, Any]) -> str:
    """sha256 (hex) identifying a model: architecture plus weights, derived tables excluded."""
    import torch

    h = hashlib.sha256(json.dumps([arch, int(N), int(M), int(in_channels)]).encode())
    for key in sorted(state_dict):
        if is_derived(key):
            continue
        tensor = state_dict[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _canonical_state(model) -> dict[str, Any]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items() if not is_derived(k)}


def save_checkpoint(path: str | Path, model, *, arch: str, N: int, M: int, in_channels: int, lmbda: float,
                    mode: str, seed: int, **metadata: Any) -> str:
    """Write ``model`` as a checkpoint the codec reads (atomically); return its weights digest.

    ``metadata`` (loss weights, training data, metrics...) must be plain Python values.
    """
    import torch

    check_metadata(arch, N, M, in_channels, lmbda, mode, seed, where=str(path))
    # the whole state dict, entropy tables included, so that CompressAI's own load_state_dict reads it too
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    digest = weights_digest(arch, N, M, in_channels, state)
    document = {
        **metadata, "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "arch": arch, "N": int(N),
        "M": int(M), "in_channels": int(in_channels), "lambda": float(lmbda), "mode": mode, "seed": int(seed),
        "digest": digest, "state_dict": state,
    }
    save_atomic(document, Path(path))
    return digest


def check_metadata(arch: Any, N: Any, M: Any, in_channels: Any, lmbda: Any, mode: Any, seed: Any, where: str) -> None:
    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    problems = []
    if arch not in ARCHITECTURES:
        problems.append(f"arch {arch!r} is not one of {sorted(ARCHITECTURES)}")
    if not positive_int(N) or not positive_int(M):
        problems.append(f"N={N!r}, M={M!r} must be positive integers")
    if in_channels not in (1, 3) or isinstance(in_channels, bool):
        problems.append(f"in_channels={in_channels!r} must be 1 or 3")
    if isinstance(lmbda, bool) or not isinstance(lmbda, (int, float)) or not math.isfinite(lmbda) or lmbda <= 0:
        problems.append(f"lambda={lmbda!r} must be a positive number")
    if mode not in MODES:
        problems.append(f"mode {mode!r} is not one of {list(MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(f"seed={seed!r} must be an integer")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked checkpoint dict (see the module docstring) with ``digest`` recomputed."""
    document = read_checkpoint(path, checkpoint_format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                               family="learned-codec", check=_check_document, digest=_document_digest,
                               digest_required=False)
    document["lambda"] = float(document["lambda"])
    return document


def _check_document(document: dict[str, Any], where: str) -> None:
    check_metadata(*(document.get(k) for k in ("arch", "N", "M", "in_channels", "lambda", "mode", "seed")),
                   where=where)


def _document_digest(document: dict[str, Any], state_dict: dict[str, Any]) -> str:
    return weights_digest(document["arch"], document["N"], document["M"], document["in_channels"], state_dict)


def model_from_checkpoint(document: dict[str, Any], device: str = "cpu"):
    """The ready-to-code model of a checkpoint: weights loaded, entropy tables updated, eval mode."""
    model = build_model(document["arch"], document["N"], document["M"], document["in_channels"])
    load_weights(model, document["state_dict"], f"{document['arch']} N={document['N']} M={document['M']} "
                                                f"in_channels={document['in_channels']}")
    return prepare_for_coding(model, device)


def likelihoods(model, x) -> list:
    """The entropy models' likelihoods of ``x``'s latents, as the eval-mode forward pass computes them
    (rounded latents), without running the synthesis transform that the rate does not need."""
    y = model.g_a(x)
    if not hasattr(model, "h_a"):  # factorized prior
        return [model.entropy_bottleneck(y)[1]]
    is_mean_scale = type(model).__name__ == "MeanScaleHyperprior"
    z = model.h_a(y if is_mean_scale else y.abs())
    z_hat, z_likelihoods = model.entropy_bottleneck(z)
    if is_mean_scale:
        scales, means = model.h_s(z_hat).chunk(2, 1)
        _, y_likelihoods = model.gaussian_conditional(y, scales, means=means)
    else:
        _, y_likelihoods = model.gaussian_conditional(y, model.h_s(z_hat))
    return [y_likelihoods, z_likelihoods]


def prepare_for_coding(model, device: str = "cpu"):
    """Move to ``device``, switch to eval mode and (re)build the entropy coder's tables."""
    model = model.to(device).eval()
    model.update(force=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def untrained_gain(lmbda: float) -> float:
    """The latent gain of an untrained stand-in for ``lambda``: larger lambda, finer quantisation, more bits."""
    return 3000.0 * math.sqrt(lmbda)


def untrained_model(arch: str, N: int, M: int, in_channels: int, seed: int, lmbda: float):
    """A deterministic untrained model standing in for a trained one at ``lambda`` (tests only).

    The weights are CompressAI's initialisation under ``torch.manual_seed(seed)`` (the caller's
    random state is left untouched); the last analysis layer is scaled by
    :func:`untrained_gain` and the first synthesis layer by its inverse, so that the rate grows
    with lambda as a trained family's does. The reconstructions mean nothing.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, N, M, in_channels)
    gain = untrained_gain(lmbda)
    with torch.no_grad():
        model.g_a[-1].weight.mul_(gain)
        model.g_a[-1].bias.mul_(gain)
        model.g_s[0].weight.div_(gain)
    return model


def model_digest(model, arch: str, N: int, M: int, in_channels: int) -> str:
    return weights_digest(arch, N, M, in_channels, _canonical_state(model))


__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT_SUFFIX",
    "DERIVED_BUFFERS",
    "MODES",
    "ArchSpec",
    "CheckpointError",
    "ModelEntry",
    "build_model",
    "load_checkpoint",
    "model_digest",
    "model_from_checkpoint",
    "prepare_for_coding",
    "save_checkpoint",
    "untrained_gain",
    "untrained_model",
    "weights_digest",
]
