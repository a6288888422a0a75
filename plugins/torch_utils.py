"""Small helpers shared by the built-in model plugins: torch (imported inside each) and atomic file writes."""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from taskcodec import StoreError


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


def write_atomic(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it and rename it into place: a
    process killed mid-write leaves the previous file, never a truncated one. The temporary name is
    unique per call, so processes writing the same file at once (e.g. parallel ``--rate-points``
    trainings) never share one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
        if isinstance(exc, RuntimeError) and "enforce fail" not in str(exc) and not isinstance(exc.__cause__, OSError):
            raise
        raise StoreError(f"cannot write {path}: {type(exc).__name__}: {str(exc).splitlines()[0]} (disk full or "
                         f"folder not writable?); any previous {path.name} is unchanged") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (see :func:`write_atomic`)."""
    import torch

    write_atomic(path, lambda f: torch.save(obj, f))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    data = text.encode()
    write_atomic(path, lambda f: f.write(data))
