"""``mobilefacenet``: MobileFaceNet (Chen et al. 2018, arXiv 1804.07573) face embedder, pretrained weights.

The architecture is written to load the CASIA-WebFace checkpoint ``mobilefacenet_casia_068.ckpt``
(a dict ``{'epoch', 'net_state_dict'}``; the checkpoint's authors report 99.30% on LFW) with
``load_state_dict(strict=True)``; the file is read with ``torch.load(weights_only=True,
map_location='cpu')``. Input: 112 x 96 (h x w) RGB crops aligned to the SphereFace template,
normalised (x - 127.5) / 128. Output: a 128-d embedding (256-d flip-fused, see
:mod:`taskcodec_plugins.tasks.face_embedders.base` for the options shared with ``facenet``).

Layout (stride in brackets): conv 3x3 64 [2] -> depthwise 3x3 64 -> inverted-residual
bottlenecks (expansion t, channels c, repeats n, first stride s) (2, 64, 5, 2), (4, 128, 1, 2),
(2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1) -> conv 1x1 512 -> global depthwise conv 7x6
(linear) -> conv 1x1 128 (linear) -> flatten. Every conv is followed by batch norm and, except
the linear ones and the bottlenecks' projections, a per-channel PReLU.

Weights: option ``weights`` (a path), else the environment variable ``TASKCODEC_MOBILEFACENET``.
The weights are research weights without a stated licence: never commit or ship them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import taskcodec
from taskcodec import TaskcodecError

from taskcodec_plugins.tasks.face_embedders.base import BASE_DEFAULTS, FaceEmbedderTask

WEIGHTS_ENV = "TASKCODEC_MOBILEFACENET"
WEIGHTS_FILE = "mobilefacenet_casia_068.ckpt"


def build_mobilefacenet(embedding_size: int = 128, input_size: tuple[int, int] = (112, 96)) -> Any:
    """The network (random weights); its state-dict keys match the checkpoint's."""
    from taskcodec_plugins.tasks.face_embedders.mobilefacenet_network import MobileFaceNet

    return MobileFaceNet(embedding_size, input_size)


def fold_batchnorm(model: Any) -> Any:
    """An inference copy of ``model`` with every batch norm folded into the convolution before it
    (same outputs to float rounding; ~1.3x faster on CPU). The original is left untouched."""
    import copy

    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv, module.bn = fuse_conv_bn_eval(conv, bn), nn.Identity()
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i], module[i + 1] = fuse_conv_bn_eval(module[i], module[i + 1]), nn.Identity()
    return model


def resolve_weights(path: Any) -> Path:
    """The checkpoint path: the option, else $TASKCODEC_MOBILEFACENET; a clear error if absent."""
    chosen = path if path is not None else os.environ.get(WEIGHTS_ENV)
    if not chosen:
        raise TaskcodecError(
            f"task 'mobilefacenet': no weights given. Put the pretrained checkpoint {WEIGHTS_FILE} somewhere outside "
            f"the repository and set the task option `weights: /path/to/{WEIGHTS_FILE}` or the environment variable "
            f"{WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE} (on the project machines: ../shared/models/{WEIGHTS_FILE})")
    p = Path(os.path.expanduser(str(chosen)))
    if not p.is_file():
        raise TaskcodecError(
            f"task 'mobilefacenet': weights file {p} does not exist (from "
            f"{'the task option weights' if path is not None else '$' + WEIGHTS_ENV}). Put {WEIGHTS_FILE} there "
            f"or point the option/variable at it (on the project machines: ../shared/models/{WEIGHTS_FILE})")
    return p


def load_mobilefacenet(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, facts): the checkpoint loaded strictly with weights_only=True."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TaskcodecError(f"task 'mobilefacenet': cannot read {path}: {type(exc).__name__}: {exc}") from exc
    state = obj.get("net_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise TaskcodecError(f"task 'mobilefacenet': {path} holds no state dict (expected {{'net_state_dict': ...}})")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model = build_mobilefacenet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TaskcodecError(f"task 'mobilefacenet': {path} is not a MobileFaceNet checkpoint of this layout: {exc}")
    facts = {"weights_file": Path(path).name, "checkpoint_epoch": obj.get("epoch") if isinstance(obj, dict) else None}
    return model.eval(), facts


class MobileFaceNetTask(FaceEmbedderTask):
    """MobileFaceNet on SphereFace-aligned 112x96 RGB crops (see the module doc and face_embedders)."""

    name = "mobilefacenet"
    description = "MobileFaceNet face embedder (pretrained CASIA-WebFace checkpoint), cosine of flip-fused embeddings"
    input_size = (112, 96)
    template = "sphereface"
    extra_defaults = {"weights": None}
    accepted_options = (*BASE_DEFAULTS, *extra_defaults)
    inference = "bn-folded-1"

    def load_network(self, options: dict[str, Any], log: Any) -> tuple[Any, dict[str, Any]]:
        path = resolve_weights(options["weights"])
        model, facts = load_mobilefacenet(path)
        if log:
            log(f"mobilefacenet: loaded {path}")
        return model, facts

    def inference_model(self, model: Any) -> Any:
        return fold_batchnorm(model)

    def save_network(self, model: Any, path: Path, metadata: dict[str, Any]) -> None:
        """The checkpoint layout the original uses (``{"net_state_dict": ...}``), plus the training facts."""
        import json

        from taskcodec_plugins.torch_utils import save_atomic

        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        save_atomic({"net_state_dict": state, "joint_codec_training": json.loads(json.dumps(metadata, default=str))},
                    Path(path))
