"""Reading the checkpoints of trained-model codecs (``learned``, ``compnet-png``): what their file formats
share. Each family's models module names its format and supplies the family-specific checks; torch is
imported inside the functions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

CHECKPOINT_SUFFIX = ".pt"
MODES = ("rd", "task", "joint", "untrained")
# the entropy coder's tables, recomputed from the weights (``model.update(force=True)``): not part of a model's identity
DERIVED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable or not of this format."""


def is_derived(key: str) -> bool:
    """Whether a state-dict key names one of the entropy coder's derived tables."""
    return key.rsplit(".", 1)[-1] in DERIVED_BUFFERS


def identifying_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The tensors that identify a model: the derived tables left out."""
    return {k: v for k, v in state_dict.items() if not is_derived(k)}


def read_checkpoint(path: str | Path, *, checkpoint_format: str, version: int, family: str,
                    check: Callable[[dict[str, Any], str], Any], digest: Callable[[dict[str, Any], dict[str, Any]], str],
                    digest_required: bool) -> dict[str, Any]:
    """A checkpoint dict, checked: its ``format`` and ``format_version``, the family's metadata (``check``
    raises CheckpointError), a dict of tensors as ``state_dict``, and the recorded ``digest`` against the
    one recomputed from the weights (``digest(document, state_dict)``). A file may leave the digest out
    unless ``digest_required``; the returned dict carries the recomputed one."""
    import torch

    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint: {type(exc).__name__}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != checkpoint_format:
        raise CheckpointError(f"{path}: not a {family} checkpoint (its 'format' is not {checkpoint_format!r})")
    if document.get("format_version") != version:
        raise CheckpointError(f"{path}: checkpoint format version {document.get('format_version')!r}; "
                              f"this plugin reads version {version}")
    check(document, str(path))
    state = document.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'state_dict' is not a dict of tensors")
    recomputed = digest(document, state)
    recorded = document.get("digest")
    if recorded != recomputed and (digest_required or recorded is not None):
        raise CheckpointError(f"{path}: the weights do not match the digest recorded in the file (corrupt checkpoint)")
    document["digest"] = recomputed
    return document


def load_weights(model: Any, state_dict: dict[str, Any], what: str) -> None:
    """Load a checkpoint's identifying tensors into ``model`` (the derived tables may be absent); a
    CheckpointError naming ``what`` (the architecture) when they do not fit."""
    import torch

    result = torch.nn.Module.load_state_dict(model, identifying_state(state_dict), strict=False)
    missing = [k for k in result.missing_keys if not is_derived(k)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"state_dict does not fit {what}: missing {missing[:5]}, "
                              f"unexpected {result.unexpected_keys[:5]}")
