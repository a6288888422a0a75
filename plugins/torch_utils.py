"""Small torch helpers shared by the built-in model plugins (torch is imported inside each)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import taskcodec


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


def autocast(device: str, precision: str) -> Any:
    """bf16 autocast on ``device`` when ``precision`` is 'bf16', else a no-op context."""
    import contextlib

    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def state_digest(state_dict: dict[str, Any]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (see :func:`taskcodec.write_atomic`)."""
    import torch

    taskcodec.write_atomic(path, lambda f: torch.save(obj, f))
