"""The metric interfaces: full-reference image metrics, and metrics over a task's per-sample rows."""
from __future__ import annotations

import abc
from pathlib import Path
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
    """A metric over a task's per-sample rows; returns one or more named columns.

    Optional methods add to a published board what a metric can make of the per-sample rows:
    :meth:`sample_scores` (per-sample scores for the BD-rates' bootstrap intervals), or
    :meth:`bootstrap_replicates` for a metric that is no mean of per-sample scores, and
    :meth:`draw_figures` (figure files in the board folder). The framework calls them for the
    board's task metrics in config order, each implementation once even where several metrics
    share it (inherit it from one base class); ``taskcodec verify`` calls the first two too.
    """

    name: ClassVar[str]
    task_types: ClassVar[tuple[str, ...]] = ("classification",)
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Named columns (e.g. ``{"accuracy": 0.71}``) from a task's per-sample rows (see ``Task.sample_rows``)."""

    def sample_scores(self, samples: Any) -> tuple[str, Any] | None:
        """Optional: one score per sample, for paired-bootstrap 95% intervals of the BD-rates.

        ``samples``: a pandas DataFrame of the board's per-sample rows that have an ``image`` column
        (``codec``, ``rate_point``, the task's columns from :meth:`Task.sample_rows`, and the image's
        ``bpp``). Return ``(column name, values)``, one value per row (e.g. ``("correct", pred ==
        label)``), or None where this metric gives no per-sample score for these rows. The first
        metric that returns one supplies the scores. Default: None.
        """
        return None

    def bootstrap_replicates(self, samples: Any, column: str, n_boot: int,
                             seed: int) -> tuple[str, dict[tuple[str, Any], np.ndarray]] | None:
        """Optional: for a ``column`` that is not a mean of per-sample scores (e.g. 10-fold verification
        accuracy), that column recomputed on ``n_boot`` resamples of each row's samples, for the BD-rates'
        95% intervals; the rates stay the rows' own.

        ``samples``: a pandas DataFrame of the board's per-sample rows (``codec``, ``rate_point`` and the
        task's columns). Return ``(how the samples were resampled, in a few words; {(codec, rate_point):
        array of n_boot values}})`` for every (codec, rate point) of ``samples``, or None where this
        metric does not compute ``column`` from these rows. Resample b must draw the same samples for
        every (codec, rate point), from ``seed``, so that two curves' intervals are paired. Consulted only
        where no metric gives :meth:`sample_scores`. Default: None.
        """
        return None

    def draw_figures(self, folder: Path, results: Any, samples: Any, provenance: dict[str, Any]) -> list[str]:
        """Optional: draw figures of a board into ``folder``; return one README note per file written.

        ``results``: the board's rows (a pandas DataFrame; the uncompressed reference row has codec
        ``none``); ``samples``: its per-sample rows (a DataFrame, or None when the task wrote none);
        ``provenance``: what the board records (e.g. ``provenance["dataset"]["classes"]``). The files
        go into the board's manifest: they must be byte-identical whenever the inputs are (e.g. PNGs
        saved without a timestamp). Default: draws nothing.
        """
        return []
