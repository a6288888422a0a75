"""The confusion-matrix figure of a classification board (``confusion.png``), drawn by the
classification metrics through :meth:`taskcodec.TaskMetric.draw_figures`.

Panels: the uncompressed reference row, then each codec's lowest-rate point; rows are true classes,
columns predictions. Drawn on an Agg canvas under matplotlib's default style (as the core's
``rd.png``), so the PNG is byte-for-byte reproducible; matplotlib is imported only when drawing.
Nothing here imports taskcodec's internals.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

CONFUSION_FILE = "confusion.png"
DPI = 120  # as the core's rd.png
PLAIN_TEXT = {"text.parse_math": False}  # a '$' in a row name or class must not start mathtext
REFERENCE = "none"  # the codec name of the uncompressed reference row in a board's results
NOTE = (f"`{CONFUSION_FILE}`: confusion matrices (rows: true class, normalised per row; cell: percent "
        f"and count) of the uncompressed reference and of each codec at its lowest rate point; "
        f"`samples.csv.gz` holds every prediction.")


def draw_confusion(folder: Path, results, samples, provenance: dict[str, Any]) -> list[str]:
    """Write ``folder/confusion.png`` for per-sample rows with ``label`` and ``pred``; its README note,
    or nothing where the rows are not classifications."""
    panels = confusion_panels(samples, results, (provenance.get("dataset") or {}).get("classes") or ())
    if panels is None:
        return []
    plot_confusion(Path(folder) / CONFUSION_FILE, panels[0], panels[1])
    return [NOTE]


def _class_index(samples, classes) -> tuple[list[str], dict[Any, int]]:
    """Class names and the matrix index of each label value: the dataset's classes where the labels are
    their indices, else the values seen (sorted as text)."""
    values = list(samples["label"]) + list(samples["pred"])
    integral = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    if classes and integral and all(0 <= int(v) < len(classes) for v in values):
        return [str(c) for c in classes], {i: i for i in range(len(classes))}
    keys = sorted({v for v in values if v == v}, key=str)  # v == v drops NaN
    return [str(k) for k in keys], {k: i for i, k in enumerate(keys)}


def _chosen_rows(results) -> list[Any]:
    """The reference row(s), then each codec's lowest-rate row."""
    chosen = [r for _, r in results[results["codec"] == REFERENCE].iterrows()]
    for codec in dict.fromkeys(results["codec"]):
        rows = results[results["codec"] == codec]
        if codec != REFERENCE and len(rows):
            chosen.append(rows.loc[rows["bpp"].astype(float).idxmin()])
    return chosen


def _row_samples(samples, row) -> tuple[Any, str]:
    """The per-sample rows of one result row, and the panel's title."""
    if row["codec"] == REFERENCE:
        return samples[samples["codec"] == REFERENCE], "uncompressed (none)"
    rate_point = row["rate_point"]
    unset = rate_point is None or (isinstance(rate_point, float) and math.isnan(rate_point))
    same = samples["rate_point"].isna() if unset else samples["rate_point"] == rate_point
    title = f"{row['codec']}{'' if unset else f' {rate_point:g}'} ({float(row['bpp']):.2f} bpp)"
    return samples[(samples["codec"] == row["codec"]) & same], title


def confusion_panels(samples, results, classes) -> tuple[list[tuple[str, Any]], list[str]] | None:
    """For classification samples (``label``, ``pred`` columns): the confusion matrices to draw and the
    class names, else None. Panels: the reference row, then each codec's lowest-rate point."""
    if samples is None or not {"codec", "rate_point", "label", "pred"} <= set(samples.columns) or results.empty:
        return None
    names, index = _class_index(samples, classes)
    panels = []
    for row in _chosen_rows(results):
        part, title = _row_samples(samples, row)
        if part.empty:
            continue
        matrix = np.zeros((len(names), len(names)), dtype=np.int64)
        for t, p in zip(part["label"], part["pred"]):
            if t in index and p in index:
                matrix[index[t], index[p]] += 1
        accuracy = np.trace(matrix) / max(matrix.sum(), 1)
        panels.append((f"{title}: accuracy {100 * accuracy:.1f}%", matrix))
    return (panels, names) if panels else None


def plot_confusion(path: Path, panels: Sequence[tuple[str, np.ndarray]], classes: Sequence[str]) -> None:
    """Confusion matrices, one panel per ``(title, C)`` with ``C[true, predicted]`` counts.

    Cells are coloured by the row-normalised fraction (each true class's recall on the diagonal) and
    show it in percent with the count below; rows are true classes, columns predictions, in ``classes`` order.
    """
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(classes)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    side = max(3.6, 0.5 * n + 1.6)
    with matplotlib.style.context("default"), matplotlib.rc_context(PLAIN_TEXT):
        fig = Figure(figsize=(side * cols + 0.6, side * rows + 0.3), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        image = None
        for ax, (title, matrix) in zip(axes, panels):
            image = _draw_panel(ax, title, matrix, classes)
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        if image is not None:
            fig.colorbar(image, ax=list(axes[: len(panels)]), shrink=0.6, label="fraction of the true class")
        fig.savefig(path, dpi=DPI, metadata={"Software": None})


def _draw_panel(ax, title: str, matrix, classes: Sequence[str]):
    """One confusion matrix on ``ax``; returns its image (for the colour bar)."""
    n = len(classes)
    matrix = np.asarray(matrix, dtype=float)
    support = matrix.sum(axis=1, keepdims=True)
    frac = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            color = "white" if frac[i, j] > 0.6 else "black"
            ax.text(j, i, f"{100 * frac[i, j]:.0f}\n{int(matrix[i, j])}", ha="center", va="center",
                    fontsize=6.5 if n > 6 else 8, color=color)
    ax.set_xticks(range(n), [str(c) for c in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [str(c) for c in classes], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return image
