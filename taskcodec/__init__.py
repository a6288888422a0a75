"""taskcodec: a plugin-based benchmark for task-aware image codecs.

The public API for plugin authors is exactly ``__all__``: plugins import these names from
``taskcodec`` itself, never from its submodules, which are internal and may change
(``tests/test_public_api.py`` enforces both, and that every name here is used by a plugin).
Heavy libraries (torch, compressai) are never imported here.
"""
from __future__ import annotations

from .codec import Codec
from .codec_training import CodecTrainingRequest
from .dataset import Dataset, Sample
from .differentiable_task import DifferentiableTask
from .download import fetch_file
from .errors import CodecError, ConfigError, DatasetError, TaskcodecError
from .files import sha256_file, write_atomic
from .hashing import stable_json
from .hookspecs import hookimpl
from .lazy_version import LazyVersion
from .machine import processor_name, usable_cpus
from .metric import ImageMetric, TaskMetric
from .options import Accept, invalid_option, read_option, read_options, unknown_options
from .task import Task, TaskContext, TaskTrainingRequest
from .torch_compat import ensure_torchvision

__version__ = "0.1.0"

__all__ = [
    "Accept",
    "Codec",
    "CodecError",
    "CodecTrainingRequest",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DifferentiableTask",
    "ImageMetric",
    "LazyVersion",
    "Sample",
    "Task",
    "TaskContext",
    "TaskTrainingRequest",
    "TaskMetric",
    "TaskcodecError",
    "ensure_torchvision",
    "fetch_file",
    "hookimpl",
    "invalid_option",
    "processor_name",
    "read_option",
    "read_options",
    "sha256_file",
    "stable_json",
    "unknown_options",
    "usable_cpus",
    "write_atomic",
]
