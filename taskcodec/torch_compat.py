"""Make torchvision importable next to a CPU-only torch.

The torchvision wheel on PyPI for Linux is a CUDA build: its ``_C.so`` links CUDA
libraries that a CPU torch lacks, and ``import torchvision`` then dies with
``RuntimeError: operator torchvision::nms does not exist`` (its meta registrations
refer to the op unconditionally). CompressAI and facenet-pytorch import torchvision,
so without this module neither imports on a CPU machine.

:func:`ensure_torchvision` defines the ``torchvision::nms``/``qnms`` schemas with
``torch.library``, registers a plain-torch greedy NMS for CPU, and points
``torchvision.ops.boxes.nms`` at it. It does nothing when torchvision's native ops
load (e.g. a CUDA torch with its matching torchvision). Call it before anything
imports torchvision; it is idempotent.
"""
from __future__ import annotations

import importlib.util
import os

_state: dict[str, bool] = {}


def _native_ops_load() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # nothing to fix: torchvision is absent
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.startswith("_C.") and name.endswith((".so", ".pyd")):
                try:
                    torch.ops.load_library(os.path.join(folder, name))
                    return True
                except (OSError, RuntimeError):
                    return False
    return False


def greedy_nms(boxes, scores, iou_threshold: float):
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        i = order[rank]
        keep.append(i)
        rest = order[rank + 1 :]
        xx1 = torch.maximum(x1[i], x1[rest])
        yy1 = torch.maximum(y1[i], y1[rest])
        xx2 = torch.minimum(x2[i], x2[rest])
        yy2 = torch.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        suppressed[rank + 1 :] |= iou > iou_threshold
    return torch.stack(keep)


def ensure_torchvision() -> bool:
    """Prepare torchvision for import; True when the plain-torch fallback was installed."""
    if "done" in _state:
        return _state["done"]
    import torch

    patched = False
    if not _native_ops_load():
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", greedy_nms, "CPU")
        _state["library"] = lib  # keep the registration alive
        import torchvision.ops.boxes as boxes

        def nms(boxes_, scores, iou_threshold):
            return greedy_nms(boxes_, scores, float(iou_threshold))

        boxes.nms = nms
        import torchvision.ops

        torchvision.ops.nms = nms
        patched = True
    _state["done"] = patched
    return patched
