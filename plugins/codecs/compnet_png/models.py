"""Models and checkpoints of the ``compnet-png`` codec: a compression CNN whose quantised output is
stored losslessly as PNG, and a reconstruction CNN.

The paper (Bian, Liang, Fu, Lei: "A Deep Image Compression Framework for Face Recognition",
arXiv 1907.01714, CCHI 2019) uses a convolutional auto-encoder: a Compression Network (CompNet)
turns the face image into a compact representation that an existing lossless codec (PNG) stores,
and a Reconstruction Network (RecNet) restores the image from it; both are optimised jointly with
a face recognition network. Its rate points come from the size of the representation.

What is ours (the paper gives no code):

* the architecture: ``log2(downsampling)`` stride-2 3x3 convolutions with PReLU and one residual
  block down to ``channels`` maps, then a sigmoid (``y`` in [0, 1]); the decoder mirrors it with
  3x3 convolutions and PixelShuffle upsampling. Its output is left unclamped in training (a
  plain linear head: no dead gradients at 0 and 1) and clamped to [0, 1] in eval mode;
* quantisation to ``levels`` uniform levels, ``q = round(y * (levels-1)) / (levels-1)``, with a
  straight-through estimator in training (the forward pass sees the rounded values, the gradient
  passes as identity) and exact rounding in eval mode;
* a differentiable rate proxy in bits per image: PNG codes each row after a prediction filter and
  deflates the residuals; the proxy takes the symbols ``s = (levels-1) * q`` (integers), their
  horizontal (Sub filter) residuals ``r`` (the first column as is), and their ``-log2`` likelihood
  under a learned factorized density per channel (CompressAI's ``EntropyBottleneck``, initial
  scale half the symbols' range, evaluated at the straight-through values so that gradients reach
  the encoder). Once the density has caught up with the symbols, the proxy is close to their
  zeroth-order entropy, and PNG's payload is close to that too (within ~20% in our checks). The
  module is a CompressAI ``CompressionModel``, so ``aux_loss()`` and ``update()`` exist and
  CompressAI-style training loops work (``forward`` also returns ``likelihoods``);
* the rate parameter :func:`nominal_bpp`, the representation's raw bits per image pixel before PNG:
  ``channels * log2(levels) / downsampling**2``; one trained model per value.

Nothing heavy is imported at module level: the torch modules live in
:mod:`taskcodec_plugins.codecs.compnet_png.network`, imported when a model is first built (``CompNet`` and
``ResidualBlock`` are also reachable here, as attributes looked up on first use).

Checkpoint file (``*.pt``, written by :func:`save_checkpoint`, read with ``weights_only=True``):
a dict with format "taskcodec-compnet", format_version 1, the architecture (channels, levels,
downsampling, in_channels, width), ``setting`` (its nominal bpp, checked against the
architecture), mode ("rd", "task", "joint" or "untrained"), seed, state_dict, digest
(:func:`weights_digest`, checked on load) and free JSON-like metadata.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from taskcodec_plugins.codecs.trained.bitstream import MODEL_ID_BYTES
from taskcodec_plugins.codecs.trained.checkpoints import (CHECKPOINT_SUFFIX, MODES, CheckpointError, identifying_state,
                                                          load_weights, read_checkpoint)
from taskcodec_plugins.torch_utils import save_atomic, state_digest

CHECKPOINT_FORMAT = "taskcodec-compnet"
CHECKPOINT_VERSION = 1
DOWNSAMPLINGS = (2, 4, 8, 16)
MAX_CHANNELS = 256
MAX_LEVELS = 256  # the symbols are PNG's 8-bit samples
DEFAULT_WIDTH = 32  # see build_compnet: 64 is about 3x slower to train on a CPU
UNTRAINED_GAIN = 30.0
RESERVED_KEYS = ("format", "format_version", "channels", "levels", "downsampling", "in_channels", "width",
                 "setting", "mode", "seed", "digest", "state_dict")


class CompNetArch(NamedTuple):
    """The architecture of one model; everything but the weights."""

    channels: int
    levels: int
    downsampling: int
    in_channels: int = 3
    width: int = DEFAULT_WIDTH

    @property
    def nominal_bpp(self) -> float:
        return nominal_bpp(self.channels, self.levels, self.downsampling, self.in_channels)

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when they are valid)."""
        def integer(value: Any, lo: int, hi: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi

        problems = []
        if not integer(self.channels, 1, MAX_CHANNELS):
            problems.append(f"channels={self.channels!r} must be an integer in 1..{MAX_CHANNELS}")
        if not integer(self.levels, 2, MAX_LEVELS):
            problems.append(f"levels={self.levels!r} must be an integer in 2..{MAX_LEVELS}")
        if isinstance(self.downsampling, bool) or self.downsampling not in DOWNSAMPLINGS:
            problems.append(f"downsampling={self.downsampling!r} must be one of {list(DOWNSAMPLINGS)}")
        if isinstance(self.in_channels, bool) or self.in_channels not in (1, 3):
            problems.append(f"in_channels={self.in_channels!r} must be 1 or 3")
        if not integer(self.width, 1, 4096):
            problems.append(f"width={self.width!r} must be an integer in 1..4096")
        return problems


def nominal_bpp(channels: int, levels: int, downsampling: int, in_channels: int = 3) -> float:
    """Raw bits per image pixel of the representation before PNG: ``channels * log2(levels) / downsampling**2``.

    The codec's rate parameter. Per pixel of the image, whatever its channel count (``in_channels``
    does not enter; it is accepted so that callers can pass a whole architecture).
    """
    del in_channels
    return channels * math.log2(levels) / downsampling**2


@dataclass(frozen=True)
class ModelEntry:
    """One rate point of the codec: a model's identity and where it comes from."""

    arch: CompNetArch
    digest: str  # weights_digest
    mode: str
    seed: int
    path: str | None = None  # the checkpoint; None for an untrained stand-in

    @property
    def rate_point(self) -> float:
        return self.arch.nominal_bpp

    @property
    def model_id(self) -> bytes:
        """What the bitstream header carries: the digest's first bytes."""
        return bytes.fromhex(self.digest[: 2 * MODEL_ID_BYTES])

    def describe(self) -> dict[str, Any]:
        """For the codec identity (the cache key): everything but the path."""
        return {"nominal_bpp": self.rate_point, "digest": self.digest, **self.arch._asdict(), "mode": self.mode,
                "seed": self.seed}


# --------------------------------------------------------------------------- the network
def _network():
    """The torch modules (:mod:`.network`), imported on first use: torch and compressai stay unimported until then."""
    from taskcodec_plugins.codecs.compnet_png import network

    return network


def density_init_scale(levels: int) -> float:
    """The residual density's initial scale: half the symbols' range (CompressAI's default, 10, suits
    latents of a few units; with it the proxy overestimates 4-level symbols twofold for hundreds of steps)."""
    return max(1.0, (levels - 1) / 2)


def stage_widths(width: int, downsampling: int) -> tuple[int, ...]:
    """Feature maps after each stride-2 stage, finest resolution first: ``width`` at the coarsest,
    halved per finer stage down to ``min(width, 16)`` (the full-resolution layers dominate the cost)."""
    stages = downsampling.bit_length() - 1
    return tuple(max(width >> (stages - 1 - i), min(width, 16)) for i in range(stages))


def __getattr__(name: str) -> type:
    if name in ("CompNet", "ResidualBlock"):
        return getattr(_network(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_compnet(channels: int, levels: int, downsampling: int, in_channels: int = 3,
                  width: int = DEFAULT_WIDTH):
    """A freshly initialised model (train mode) taking ``in_channels``-channel images in [0, 1].

    ``width`` is the feature maps' count: 32 (default) trains at about 3x the speed of 64 on a CPU.
    Raises ValueError on out-of-range values.
    """
    arch = CompNetArch(channels, levels, downsampling, in_channels, width)
    if arch.problems():
        raise ValueError("; ".join(arch.problems()))
    return _network().CompNet(*arch)


def untrained_compnet(arch: CompNetArch, seed: int):
    """A deterministic UNTRAINED stand-in (tests only): torch's initialisation under ``manual_seed(seed)``
    (the caller's random state is left untouched), the encoder's last layer scaled by
    :data:`UNTRAINED_GAIN` so that the symbols spread over the levels (freshly initialised, ``y`` stays
    within 0.5 +- 0.05: one or two symbols) and the rate grows with channels and levels as a trained
    family's does. The reconstructions mean nothing."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_compnet(*arch)
    with torch.no_grad():
        model.encoder[-1].weight.mul_(UNTRAINED_GAIN)
        model.encoder[-1].bias.mul_(UNTRAINED_GAIN)
    return model


# --------------------------------------------------------------------------- checkpoints
def weights_digest(arch: CompNetArch, state_dict: dict[str, Any]) -> str:
    """sha256 (hex) identifying a model: architecture plus weights (derived tables excluded)."""
    head = json.dumps(["compnet", *(int(v) for v in arch)]).encode()
    return hashlib.sha256(head + state_digest(identifying_state(state_dict)).encode()).hexdigest()


def model_digest(model) -> str:
    return weights_digest(model.arch, model.state_dict())


def _check_document(document: dict[str, Any], where: str) -> CompNetArch:
    arch = CompNetArch(*(document.get(k) for k in CompNetArch._fields))
    problems = arch.problems()
    rate_point = document.get("setting")
    if not problems and (isinstance(rate_point, bool) or not isinstance(rate_point, (int, float))
                         or not math.isclose(rate_point, arch.nominal_bpp, rel_tol=1e-9)):
        problems.append(f"setting={rate_point!r} is not the architecture's nominal bpp {arch.nominal_bpp:g}")
    if document.get("mode") not in MODES:
        problems.append(f"mode {document.get('mode')!r} is not one of {list(MODES)}")
    if isinstance(document.get("seed"), bool) or not isinstance(document.get("seed"), int):
        problems.append(f"seed={document.get('seed')!r} must be an integer")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))
    return arch


def save_checkpoint(path: str | Path, model, *, mode: str, seed: int, **metadata: Any) -> str:
    """Write ``model`` as a checkpoint the codec reads (atomically); return its weights digest.

    ``metadata`` (lambda, loss weights, training data, metrics...) must be plain Python values and
    may not use the format's own keys.
    """
    clash = sorted(set(metadata) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"metadata keys {clash} are reserved by the checkpoint format")
    arch = CompNetArch(*model.arch)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    document = {**metadata, "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **arch._asdict(),
                "setting": arch.nominal_bpp, "mode": mode, "seed": seed, "state_dict": state}
    _check_document(document, str(path))
    document["digest"] = weights_digest(arch, state)
    save_atomic(document, Path(path))
    return document["digest"]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked checkpoint dict (see the module docstring), ``digest`` recomputed, or CheckpointError."""
    document = read_checkpoint(path, checkpoint_format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                               family="compnet", check=_check_document,
                               digest=lambda doc, state: weights_digest(checkpoint_arch(doc), state),
                               digest_required=True)
    document["setting"] = checkpoint_arch(document).nominal_bpp
    return document


def checkpoint_arch(document: dict[str, Any]) -> CompNetArch:
    return CompNetArch(*(document[k] for k in CompNetArch._fields))


def model_from_checkpoint(document: dict[str, Any], device: str = "cpu"):
    """The ready-to-code model of a checkpoint: weights loaded, eval mode, no gradients."""
    arch = checkpoint_arch(document)
    model = build_compnet(*arch)
    load_weights(model, document["state_dict"], f"compnet {arch}")
    return prepare_for_coding(model, device)


def prepare_for_coding(model, device: str = "cpu"):
    """Move to ``device``, eval mode, gradients off (PNG codes the symbols: no entropy tables needed)."""
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_SUFFIX",
    "CHECKPOINT_VERSION",
    "DEFAULT_WIDTH",
    "DOWNSAMPLINGS",
    "CheckpointError",
    "CompNetArch",
    "ModelEntry",
    "build_compnet",
    "checkpoint_arch",
    "load_checkpoint",
    "model_digest",
    "model_from_checkpoint",
    "nominal_bpp",
    "prepare_for_coding",
    "save_checkpoint",
    "untrained_compnet",
    "weights_digest",
]
