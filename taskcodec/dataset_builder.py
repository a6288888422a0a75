"""Builds a dataset plugin from a config's ``dataset`` section: the one way the runner, the
codec-training config and ``taskcodec verify --data`` construct datasets, so that a config's
dataset means the same data, and fails with the same errors, in all three."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .dataset import Dataset
from .config import DatasetConfig
from .errors import ConfigError, DuplicatePluginError, UnknownPluginError


def build_dataset(registry: Any, config: DatasetConfig, split: str, *, cache_root: Path, source: str) -> Dataset:
    """The dataset ``config`` names, for ``split``, as ``cls(root=..., split=..., **options)``.

    A dataset class with ``wants_cache_dir`` also gets ``cache_dir=cache_root/<dataset name>`` (derived
    data such as detected landmarks). Errors name the config ``source`` and the key at fault: an unknown
    or ambiguous dataset name (``dataset.name``), options its constructor rejects (``dataset.options``);
    the plugin's own errors (a missing file, a malformed label) pass through as they are.
    """
    try:
        cls = registry.get("dataset", config.name).target
    except (UnknownPluginError, DuplicatePluginError) as exc:
        raise ConfigError(f"{source}: dataset.name: {exc}") from None
    extra = {"cache_dir": Path(cache_root) / cls.name} if cls.wants_cache_dir else {}
    try:
        return cls(root=config.root, split=split, **extra, **config.options)
    except TypeError as exc:
        raise ConfigError(f"{source}: dataset.options: dataset {cls.name!r} rejected its options: {exc}") from None
