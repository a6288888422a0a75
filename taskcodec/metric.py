"""The metric interfaces: full-reference image metrics, and metrics over a task's per-sample rows."""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Sequence

import numpy as np


class ImageMetric(abc.ABC):
    """A full-reference image quality metric, computed per image and averaged over images.

    ``compute`` returns None where the metric is undefined for that image (e.g.
    MS-SSIM on images too small for its five scales).
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, original: np.ndarray, decoded: np.ndarray) -> float | None:
        """The metric of ``decoded`` against ``original`` (same shape, uint8), or None where undefined."""


class TaskMetric(abc.ABC):
    """A metric over a task's per-sample rows; returns one or more named columns."""

    name: ClassVar[str]
    task_types: ClassVar[tuple[str, ...]] = ("classification",)
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Named columns (e.g. ``{"accuracy": 0.71}``) from a task's per-sample rows (see ``Task.sample_rows``)."""
