"""Small torch helpers shared by the built-in model plugins (torch is imported inside each)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

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


def batch_for_device(asked: int | None, device: str, cpu: int, gpu: int) -> int:
    """The batch size asked for, else the model's default for ``device`` (a CUDA device or the CPU): on a
    few CPU cores large batches are slower (their activations outgrow the caches), on a GPU faster."""
    return asked or (gpu if device.startswith("cuda") else cpu)


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


def remembered_weights_facts(path: Path, cache_dir: Path | None, kind: str,
                             compute: Callable[[], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(sha256 of the file at ``path``, facts about its weights), the facts remembered in ``cache_dir``.

    ``compute()`` loads the file and returns JSON-serialisable facts (e.g. the tensors' digest, the
    parameter count, the file's metadata). They are written to ``cache_dir`` under the file's sha256,
    so that a later run, which only fingerprints the model (a warm rerun), learns them without loading
    the file or importing torch. ``kind`` names the plugin and the facts' format (change it when
    ``compute`` changes). The facts come back as the same JSON either way. A remembered record that is
    unreadable or names another file is ignored and rewritten; one that cannot be written is skipped
    (it only saves time).
    """
    sha = taskcodec.sha256_file(path)
    record = Path(cache_dir) / f"{kind}-facts-{sha[:32]}.json" if cache_dir is not None else None
    if record is not None and record.is_file():
        try:
            saved = json.loads(record.read_text())
            if saved["file_sha256"] == sha and saved["kind"] == kind:
                return sha, saved["facts"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    facts = json.loads(taskcodec.stable_json(compute()))
    # the file may have been replaced while compute() read it: then its facts are not this sha256's
    if record is not None and taskcodec.sha256_file(path) == sha:
        try:
            taskcodec.write_atomic(record, taskcodec.stable_json({"file_sha256": sha, "kind": kind, "facts": facts}),
                                   durable=False)
        except taskcodec.TaskcodecError:  # write_atomic: a StoreError naming the file
            pass
    return sha, facts
