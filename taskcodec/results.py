"""What a run is made of, read back from the store: the rows (one per codec and rate point), the
per-image and per-sample records, and the provenance; the Runner computes, this collects."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .codec import Codec
from .dataset import samples_fingerprint
from .errors import StoreError
from .metric import TaskMetric
from .store import Store, reference_key
from .task import Task

REFERENCE = "none"
UNDEFINED_SUFFIX = "_undefined"  # results.csv column <metric>_undefined: images for which the metric gave None


@dataclass
class Cell:
    """One leaderboard row: a codec at one rate point."""

    row: str
    codec: Codec
    identity: dict[str, Any]
    rate_point: Any
    keys: list[str] = field(default_factory=list)  # one per sample, in dataset order
    task: Task | None = None  # the model this row is evaluated with (codecs[i].task_options: not the main one)
    task_id: str | None = None  # f"{task.name}:{task.fingerprint()}": its outputs' key in the store


@dataclass
class Collected:
    """Everything a leaderboard is made of, straight from the store."""

    rows: list[dict[str, Any]]  # one per (row, rate point): headline numbers
    images: list[dict[str, Any]]  # one per (row, rate point, image): rate and quality
    samples: list[dict[str, Any]]  # one per (row, rate point, task sample): task outputs
    provenance: dict[str, Any]
    # the rows' task metrics: their optional board methods (TaskMetric.sample_scores, .draw_figures)
    # add per-sample scores and figures to the published board
    task_metrics: list[TaskMetric] = field(default_factory=list)


class ResultCollector:
    """Builds a :class:`Collected` from the store for the cells of one config."""

    def __init__(self, store: Store, config: Any, plugins: Any) -> None:
        self.store, self.config, self.plugins = store, config, plugins

    def collect(self, dataset, samples, digests, cells, image_metrics, task, task_metrics, task_id, run_info) -> Collected:
        """The rows, per-image and per-sample records and provenance of a run whose results are all stored."""
        from .provenance import build_provenance

        rows, images, sample_rows = [], [], []
        ids = [s.id for s in samples]
        columns = {m.name: m.name.replace("-", "_") for m in image_metrics}  # metric name -> result column
        if self.config.reference:
            rows.append(self._reference_row(dataset, samples, digests, cells, columns, task, task_metrics, task_id,
                                            sample_rows))
        for cell in cells:
            row, cell_images, stat_values = self._codec_row(cell, ids, columns)
            images += cell_images
            if cell.task is not None:
                outputs = self._outputs(cell.task_id, cell.keys, ids, cell.row)
                row.update(self._task_columns(cell.task, task_metrics, dataset, outputs, cell.row, cell.rate_point,
                                              cell.codec.rate_parameter, sample_rows))
            # a stat becomes a row column only when every image of the row has it
            row.update({c: float(np.mean(v)) for c, v in stat_values.items() if len(v) == len(cell.keys)})
            rows.append(row)
        fingerprint = samples_fingerprint(samples, digests)
        provenance = build_provenance(self.config, dataset, fingerprint, cells, run_info, self.plugins)
        return Collected(rows=rows, images=images, samples=sample_rows, provenance=provenance,
                         task_metrics=list(task_metrics))

    def _reference_row(self, dataset, samples, digests, cells, columns, task, task_metrics, task_id,
                       sample_rows) -> dict[str, Any]:
        """The uncompressed row: its rate, and its task columns (which also hand every model its clean outputs)."""
        # the uncompressed rate of each image (8 bits per sample: 8 gray, 24 RGB), averaged over
        # images like every codec row; a folder mixing gray and RGB images gets the mean of both
        uncompressed = [8.0 * (1 if len(s.shape) == 2 else s.shape[2]) for s in samples]
        row = {"codec": REFERENCE, "rate_point": None, "parameter": None, "images": len(samples),
               "bpp": float(np.mean(uncompressed)), "payload_bpp": math.nan}
        row.update({columns[m]: math.nan for m in columns})
        if task is not None:
            ids = [s.id for s in samples]
            ref_keys = [reference_key(d) for d in digests]
            outputs = self._outputs(task_id, ref_keys, ids, REFERENCE)
            task.reference_outputs(dataset, outputs)
            # A row evaluated with another model compares with that model's clean outputs (e.g. a
            # verification threshold fixed on the clean images), not with the main model's.
            others = {id(c.task): c for c in cells if c.task is not task}
            for c in others.values():
                clean = self._outputs(c.task_id, ref_keys, ids, f"{REFERENCE} (model of {c.row})")
                c.task.reference_outputs(dataset, clean)
            row.update(self._task_columns(task, task_metrics, dataset, outputs, REFERENCE, None, None, sample_rows))
        return row

    def _codec_row(self, cell: Cell, ids: list[str], columns: dict[str, str]):
        """``(row, image rows, stat values)`` of one cell from the store: the row's mean rate and image
        metrics, one row per image, and each codec stat's per-image values (result column -> values)."""
        encoded = self.store.get_sizes(cell.keys)
        missing = [ids[i] for i, k in enumerate(cell.keys) if k not in encoded]
        if missing:
            raise StoreError(
                f"row {cell.row!r} at {cell.rate_point!r}: {len(missing)} images not in the store "
                f"(e.g. {missing[0]!r}): run `taskcodec run` to compute them"
            )
        image_rows, stat_values = self._image_rows(cell, ids, encoded, columns)
        row = {"codec": cell.row, "rate_point": cell.rate_point, "parameter": cell.codec.rate_parameter,
               "images": len(ids), "bpp": float(np.mean([r["bpp"] for r in image_rows])),
               "payload_bpp": float(np.mean([r["payload_bpp"] for r in image_rows]))}
        for column in columns.values():
            values = [r[column] for r in image_rows]
            finite = [v for v in values if not math.isnan(v)]
            row[column] = float(np.mean(finite)) if finite else math.nan
            if len(finite) < len(values):  # the mean is over fewer images: say how many lack a value
                row[column + UNDEFINED_SUFFIX] = len(values) - len(finite)
        return row, image_rows, stat_values

    def _image_rows(self, cell: Cell, ids: list[str], encoded: dict[str, tuple[int, int | None, int, int]],
                    columns: dict[str, str]):
        """One row per image of the cell (bytes, rates, image metrics, codec stats), and each stat's values."""
        measured = self.store.get_image_metrics(cell.keys, list(columns))
        stats = self.store.get_image_stats(cell.keys)
        image_rows, stat_values = [], {}
        for sid, key in zip(ids, cell.keys):
            n_bytes, payload_bytes, height, width = encoded[key]
            pixels = height * width
            payload = math.nan if payload_bytes is None else 8.0 * payload_bytes / pixels
            image_row = {"codec": cell.row, "rate_point": cell.rate_point, "image": sid, "bytes": n_bytes,
                         "payload_bytes": payload_bytes, "bpp": 8.0 * n_bytes / pixels, "payload_bpp": payload}
            for m, column in columns.items():
                v = measured.get((key, m))
                image_row[column] = math.nan if v is None else v
            for name, value in sorted(stats.get(key, {}).items()):
                column, value = stat_column(name, value, pixels)
                image_row[column] = value
                stat_values.setdefault(column, []).append(value)
            image_rows.append(image_row)
        return image_rows, stat_values

    def _outputs(self, task_id: str, keys: list[str], ids: list[str], row: str) -> dict[str, Any]:
        found = self.store.get_task_outputs(task_id, keys)
        missing = [sid for sid, k in zip(ids, keys) if k not in found]
        if missing:
            raise StoreError(
                f"row {row!r}: task outputs for {len(missing)} images are not in the store "
                f"(e.g. {missing[0]!r}): run `taskcodec run` to compute them"
            )
        return {sid: found[k] for sid, k in zip(ids, keys)}

    def _task_columns(self, task, task_metrics, dataset, outputs, row, rate_point, parameter, sample_rows) -> dict[str, float]:
        per_sample = task.sample_rows(dataset, outputs)
        for r in per_sample:
            sample_rows.append({"codec": row, "rate_point": rate_point, **r})
        columns: dict[str, float] = {}
        for metric in task_metrics:
            columns.update(metric.compute(per_sample))
        return columns

def stat_column(name: str, value: float, pixels: int) -> tuple[str, float]:
    """Result column and per-image value of a codec stat (see ``Codec.encode_with_stats``):
    ``estimated_bits`` becomes ``estimated_bpp`` (bits / pixels of the original), any other
    stat ``stat_<name>`` unchanged."""
    if name == "estimated_bits":
        return "estimated_bpp", value / pixels
    return "stat_" + name.replace("-", "_"), value
