"""The expression classifier's network and its plain helpers: building it, stacking images into
its input array, running it, and its checkpoint files. Shared by the task
(:mod:`taskcodec_plugins.tasks.expression_cnn.task`), its training loop (:mod:`taskcodec_plugins.tasks.expression_cnn.training`)
and the torch view used in codec training (:mod:`taskcodec_plugins.tasks.expression_cnn.differentiable`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from taskcodec import TaskcodecError, stable_json
from taskcodec_plugins.torch_utils import autocast, save_atomic

ARCHS = ("compact", "vgg")


class TaskInputError(TaskcodecError, ValueError):
    """Images given to a task do not match what the model was trained on."""


# ---------------------------------------------------------------------- the network
def build_model(in_channels: int, n_classes: int, width: int = 16, arch: str = "compact") -> Any:
    """The classifier network; both architectures end in global average pooling (any input >= 8x8).

    ``compact`` (the quickstart's, ~0.29M parameters at width 16): conv(w) pool | conv(2w) conv(2w) pool |
    conv(4w) conv(4w) pool | conv(8w) GAP, dropout 0.2, linear.
    ``vgg`` (for 48x48 FER, ~1.17M parameters at width 32; VGG-13's pattern of paired 3x3 convolutions,
    narrower, as in the FER+ paper's VGG-13 variant): [conv(w) conv(w) pool] [conv(2w) conv(2w) pool]
    [conv(4w) conv(4w) pool] [conv(8w) conv(8w)] GAP, dropout 0.3, linear; every conv 3x3 + BN + ReLU.
    """
    from torch import nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    if arch == "vgg":
        return nn.Sequential(
            *block(in_channels, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), *block(4 * w, 4 * w), nn.MaxPool2d(2),
            *block(4 * w, 8 * w), *block(8 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(0.3), nn.Linear(8 * w, n_classes),
        )
    if arch != "compact":
        raise ValueError(f"unknown architecture {arch!r}; expected one of {list(ARCHS)}")
    return nn.Sequential(
        *block(in_channels, w), nn.MaxPool2d(2),
        *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
        *block(2 * w, 4 * w), *block(4 * w, 4 * w), nn.MaxPool2d(2),
        *block(4 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(8 * w, n_classes),
    )


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


def normalise(x: Any) -> Any:
    return (x.float() - 128.0) / 64.0


def train_model(images: np.ndarray, labels: np.ndarray, n_classes: int, options: dict[str, Any], seed: int,
                device: str, precision: str, log: Any = None, **fit_args: Any) -> tuple[Any, dict[str, Any]]:
    """Train a fresh network on ``images`` (N x C x H x W uint8); returns (model, training facts).

    The loop lives in :func:`taskcodec_plugins.tasks.expression_cnn.training.fit` (``fit_args``: targets, val,
    state_path, key, progress).
    """
    from taskcodec_plugins.tasks.expression_cnn.training import fit

    return fit(images, labels, n_classes, options, seed, device, precision, log=log, **fit_args)


def run_model(model: Any, images: np.ndarray, device: str, precision: str, batch_size: int,
              tta: str = "none") -> np.ndarray:
    """Class scores (N x K float32 logits) for ``images`` (N x C x H x W uint8).

    ``tta="flip"``: the mean of the logits of each image and its left-right mirror.
    """
    import torch

    outs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            xb = normalise(xb).contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                scores = model(xb).float()
                if tta == "flip":
                    scores = (scores + model(xb.flip(3)).float()) / 2
            outs.append(scores.cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def save_checkpoint(path: Path, model: Any, meta: dict[str, Any]) -> None:
    """Write ``{state_dict, meta}`` to ``path`` atomically (temporary file, fsync, rename)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    # meta as plain JSON types: torch.load(weights_only=True) refuses other classes
    save_atomic({"state_dict": state, "meta": json.loads(stable_json(meta))}, path)


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


def network_from_checkpoint(state: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The network a checkpoint's metadata describes, holding its weights (on the CPU)."""
    model = build_model(int(meta["in_channels"]), len(meta["classes"]), int(meta["width"]),
                        str(meta.get("arch", "compact")))
    model.load_state_dict(state)  # refuses weights of another architecture
    return model


def is_class_index(label: Any, n_classes: int) -> bool:
    return isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < n_classes
