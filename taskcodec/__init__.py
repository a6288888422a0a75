"""taskcodec: a plugin-based benchmark for task-aware image codecs.

The public API for plugin authors is what this module exports; everything else is
internal and may change. Heavy libraries (torch, compressai) are never imported here.
"""
from __future__ import annotations

from .api import (
    Codec,
    CodecTrainingRequest,
    Dataset,
    ImageMetric,
    Sample,
    Setting,
    Task,
    TaskContext,
    TaskMetric,
    check_image,
    image_digest,
)
from .errors import (
    CodecError,
    ConfigError,
    DatasetError,
    DuplicatePluginError,
    PluginError,
    PublishError,
    StoreError,
    TaskcodecError,
    UnknownPluginError,
)
from .download import fetch_file
from .files import sha256_file, write_atomic
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Codec",
    "CodecError",
    "CodecTrainingRequest",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DuplicatePluginError",
    "ImageMetric",
    "PluginError",
    "PublishError",
    "Sample",
    "Setting",
    "StoreError",
    "Task",
    "TaskContext",
    "TaskMetric",
    "TaskcodecError",
    "UnknownPluginError",
    "__version__",
    "check_image",
    "fetch_file",
    "sha256_file",
    "hookimpl",
    "image_digest",
    "write_atomic",
]
