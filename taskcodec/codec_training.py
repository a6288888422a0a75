"""What ``taskcodec train-codec`` hands to :meth:`taskcodec.Codec.train`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dataset import Dataset
from .task import Task, TaskContext


@dataclass
class CodecTrainingRequest:
    """What ``taskcodec train-codec`` hands to :meth:`Codec.train`.

    ``dataset``/``val_dataset``: the training split and an optional validation split;
    ``task``: the task plugin instance (not prepared; see :meth:`Task.differentiable`), or
    None for a plain rate-distortion training; ``mode``: ``"rd"``, ``"task"`` or ``"joint"``;
    ``rate_points``: one model per value (e.g. the lambdas); ``options``: the codec's training
    options from the config; ``out``: the folder to write the models to; ``state_dir``: a
    folder in the store for resumable training state; ``context``: device, seed, log;
    ``train_only``: the rate points to train in this run (None: all). A subset run must train
    exactly the models a whole run would (same keys, so either skips what the other did).
    """

    dataset: Dataset
    val_dataset: Dataset | None
    task: Task | None
    mode: str
    rate_points: tuple[Any, ...]
    options: dict[str, Any]
    out: Path
    state_dir: Path
    context: TaskContext
    config_source: str = ""
    train_only: tuple[Any, ...] | None = None
