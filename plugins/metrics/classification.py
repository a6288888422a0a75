"""Classification metrics over per-sample rows ``{"label": ..., "pred": ...}`` (pure numpy).

``accuracy``           column ``accuracy``: fraction of rows with ``pred == label``.
``balanced-accuracy``  column ``balanced_accuracy``: mean recall over the classes that occur
                       among the labels (a class that is only predicted, never true, does not
                       enter the mean; its false positives lower other classes' recall only
                       through the rows they took). Same definition as scikit-learn's
                       ``balanced_accuracy_score`` (adjusted=False).
``macro-f1``           column ``macro_f1``: unweighted mean of per-class F1 = 2TP / (2TP + FP + FN)
                       over the classes that occur among the labels *or* the predictions (as
                       scikit-learn's ``f1_score(average="macro")`` does by default): predicting a
                       class that never occurs counts as a class with F1 = 0.

Labels and predictions may be any hashable values (class indices, names) compared with
``==``; all values are fractions in [0, 1]. Rows without ``label`` or ``pred``, or with a
``None`` label, are refused with an error naming the row; an empty row list too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

import taskcodec
from taskcodec import TaskcodecError, TaskMetric


def label_pairs(rows: Sequence[dict[str, Any]], metric: str) -> tuple[list[Any], list[Any]]:
    """The (labels, preds) columns of ``rows``, checked."""
    if len(rows) == 0:
        raise TaskcodecError(f"metric {metric!r}: no rows to score")
    labels, preds = [], []
    for i, row in enumerate(rows):
        for key in ("label", "pred"):
            if key not in row:
                raise TaskcodecError(f"metric {metric!r}: row {i} ({row.get('image', '?')!r}) has no {key!r}; "
                                     f"keys: {sorted(row)}")
        if row["label"] is None:
            raise TaskcodecError(f"metric {metric!r}: row {i} ({row.get('image', '?')!r}) has no label (None)")
        labels.append(row["label"])
        preds.append(row["pred"])
    return labels, preds


def confusion(labels: Sequence[Any], preds: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Confusion matrix C[true, predicted] over the classes seen, and those classes (first-seen order)."""
    keys = [_key(v) for v in labels] + [_key(v) for v in preds]
    index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    codes = np.fromiter((index[key] for key in keys), dtype=np.int64, count=len(keys))
    n, k = len(labels), len(index)
    matrix = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k)
    return matrix, list(index)


def _key(value: Any) -> Any:
    """Hashable key; numpy scalars compare equal to Python ones (np.int64(3) == 3)."""
    if type(value) is int:  # the common case, first
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list):
        value = tuple(value)
    return value


def accuracy(labels: Sequence[Any], preds: Sequence[Any]) -> float:
    matrix, _ = confusion(labels, preds)
    return float(np.trace(matrix) / matrix.sum())


def balanced_accuracy(labels: Sequence[Any], preds: Sequence[Any]) -> float:
    matrix, _ = confusion(labels, preds)
    support = matrix.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def macro_f1(labels: Sequence[Any], preds: Sequence[Any]) -> float:
    matrix, _ = confusion(labels, preds)
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    # every class here occurs as a label or a prediction, so 2TP + FP + FN > 0
    return float(np.mean(2 * tp / (2 * tp + fp + fn)))


class ClassificationMetric(TaskMetric):
    """A metric over ``label``/``pred`` rows: ``column`` = ``score(labels, preds)``. On a published board
    the classification metrics add a per-sample ``correct`` score (for the BD-rates' bootstrap
    intervals) and ``confusion.png``, once for all of them (they share these methods)."""

    task_types = ("classification",)
    column: ClassVar[str]
    score: ClassVar[Callable[[Sequence[Any], Sequence[Any]], float]]

    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        return {self.column: type(self).score(*label_pairs(rows, self.name))}

    def sample_scores(self, samples) -> tuple[str, Any] | None:
        """``correct``: 1.0 where ``pred == label``, for per-image rows with ``label`` and ``pred``."""
        if not {"label", "pred"} <= set(samples.columns):
            return None
        return "correct", (samples["label"] == samples["pred"]).astype(float)

    def draw_figures(self, folder: Path, results, samples, provenance: dict[str, Any]) -> list[str]:
        from taskcodec_plugins.metrics.confusion_figure import draw_confusion

        return draw_confusion(folder, results, samples, provenance)


class Accuracy(ClassificationMetric):
    name = "accuracy"
    description = "fraction of samples whose predicted class is the label"
    column = "accuracy"
    score = staticmethod(accuracy)


class BalancedAccuracy(ClassificationMetric):
    name = "balanced-accuracy"
    description = "mean per-class recall over the classes present in the labels"
    column = "balanced_accuracy"
    score = staticmethod(balanced_accuracy)


class MacroF1(ClassificationMetric):
    name = "macro-f1"
    description = "unweighted mean F1 over the classes present in labels or predictions"
    column = "macro_f1"
    score = staticmethod(macro_f1)
