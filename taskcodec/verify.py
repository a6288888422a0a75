"""``taskcodec verify BOARD``: recompute a published board's headline numbers from its own files.

A board folder keeps what anyone needs to check it: per-image sizes and quality (``images.csv.gz``),
per-sample task outputs (``samples.csv.gz``), the config it was made from and its manifest. This
module recomputes, without a store, every row's rate and image-quality means, every task metric
(through the metric plugins the config names) and every BD-rate with its interval and BD-quality
(through the same code that published them), and compares them with ``results.csv`` and
``results.json``. With ``check_data`` it also rebuilds the dataset and compares its fingerprint, and
hashes every task-model checkpoint that is present locally.

Tolerances: the CSV files store numbers with 6 significant digits, so values recomputed from them
are compared with a relative tolerance of 2e-5 (numbers from exact counts, such as accuracies,
agree to the last digit); BD values, whose curves go through those rounded rates, within 1e-4.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .metric import ImageMetric
from .errors import PublishError, TaskcodecError
from .hashing import rate_point_key
from .schemas import SchemaError, read_json

CSV_RTOL = 2e-5
BD_ATOL = 1e-4
REFERENCE = "none"


@dataclass
class Verdict:
    """What one check found: ``subject`` (a row, a file, the data), and the problems (none = ok)."""

    subject: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _close(published: Any, recomputed: Any, rtol: float = CSV_RTOL, atol: float = 1e-12) -> bool:
    a = math.nan if published is None else float(published)
    b = math.nan if recomputed is None else float(recomputed)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def verify_board(folder: Path, registry: Any, check_data: bool = False) -> list[Verdict]:
    """Every check of the board in ``folder``; raises PublishError if it is not a board at all."""
    import pandas as pd

    folder = Path(folder)
    for name in ("results.json", "results.csv", "images.csv.gz", "config.yaml"):
        if not (folder / name).is_file():
            raise PublishError(f"{folder}: not a published board (no {name})")
    document = read_json(folder / "results.json", "results")  # malformed: refused, naming the value
    verdicts = [_check_manifest(folder, document.get("content_digest"))]
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    results = pd.read_csv(folder / "results.csv")
    images = pd.read_csv(folder / "images.csv.gz")
    samples = pd.read_csv(folder / "samples.csv.gz") if (folder / "samples.csv.gz").is_file() else None
    images = exact_rates(images)
    verdicts.append(_check_results_files(results, document))
    task_metrics = _task_metrics(raw, registry)
    verdicts += _check_rows(results, images, samples, task_metrics)
    verdicts.append(_check_bd(folder, raw, document, images, samples, task_metrics))
    if check_data:
        verdicts += _check_data(raw, document, registry)
    return verdicts


def exact_rates(images):
    """``images`` with bpp and payload_bpp recomputed exactly from the byte counts: an image's pixel
    count is recovered from its rounded bpp where every row of that image gives the same integer
    (always for face crops; a 6-digit bpp cannot pin the pixel count of a large photo, which then keeps
    its rounded bpp). The bootstrap of the BD intervals is sensitive to the last digits of the rates."""
    if images.empty or "bytes" not in images.columns:
        return images
    estimate = 8.0 * images["bytes"] / images["bpp"]
    pixels = estimate.groupby(images["image"]).transform("median").round()
    agree = (estimate - pixels).abs().lt(0.25).groupby(images["image"]).transform("all")
    images = images.copy()
    images.loc[agree, "bpp"] = 8.0 * images.loc[agree, "bytes"] / pixels[agree]
    if "payload_bpp" in images.columns:
        known = agree & images["payload_bytes"].notna()
        images.loc[known, "payload_bpp"] = 8.0 * images.loc[known, "payload_bytes"] / pixels[known]
    return images


# ------------------------------------------------------------------------------------- checks
def _check_manifest(folder: Path, digest: str | None) -> Verdict:
    from .publish import MANIFEST, manifest_problems, read_manifest

    verdict = Verdict(f"files ({MANIFEST})")
    try:
        manifest = read_manifest(folder)
    except SchemaError as exc:
        verdict.problems.append(str(exc))
        return verdict
    if manifest is None:
        verdict.problems.append(f"{folder / MANIFEST}: missing")
        return verdict
    verdict.checked = len(manifest["files"])
    verdict.problems += manifest_problems(folder, manifest)
    if manifest.get("content_digest") != digest:
        verdict.problems.append(f"{folder / MANIFEST}: content digest differs from results.json's")
    return verdict


def _check_results_files(results, document: dict[str, Any]) -> Verdict:
    """results.csv and the rows of results.json say the same."""
    verdict = Verdict("results.csv = results.json rows")
    rows = document.get("rows") or []
    if len(rows) != len(results):
        verdict.problems.append(f"results.csv has {len(results)} rows, results.json {len(rows)}")
        return verdict
    for i, (row, csv_row) in enumerate(zip(rows, results.to_dict(orient="records"))):
        for column, value in row.items():
            verdict.checked += 1
            other = csv_row.get(column)
            if isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
                if column == "rate_point":
                    same = rate_point_key(value) == rate_point_key(other)
                elif value is None:  # results.json writes NaN and infinities as null
                    same = other is None or (isinstance(other, float) and not math.isfinite(other))
                else:
                    same = _close(value, other)
            else:
                same = str(value) == str(other)
            if not same:
                verdict.problems.append(f"row {i + 1} ({row.get('codec')} {rate_point_key(row.get('rate_point'))}) "
                                        f"{column}: results.json {value!r}, results.csv {other!r}")
    return verdict


def _task_metrics(raw: dict[str, Any], registry: Any) -> list[Any]:
    """The task metric plugins the board was computed with (the config's list, else the task's defaults)."""
    names = list(raw.get("metrics") or [])
    task = raw.get("task") or None
    if not names and task:
        names = list(registry.get("task", task["name"]).target.default_metrics)
    metrics = []
    for name in names:
        cls = registry.get("metric", name).target
        if not issubclass(cls, ImageMetric):
            metrics.append(cls())
    return metrics


def _check_rows(results, images, samples, task_metrics) -> list[Verdict]:
    """Each row's rate, image metrics and task metrics, recomputed from the per-image and per-sample files."""
    images = images.assign(_key=images["rate_point"].map(rate_point_key))
    by_row = {k: g for k, g in images.groupby(["codec", "_key"], sort=False)}
    sample_groups = {}
    if samples is not None:
        samples = samples.assign(_key=samples["rate_point"].map(rate_point_key))
        sample_groups = {k: g for k, g in samples.groupby(["codec", "_key"], sort=False)}
    image_columns = [c for c in images.columns if c not in ("codec", "rate_point", "image", "bytes", "payload_bytes", "_key")]
    verdicts = []
    for row in results.to_dict(orient="records"):
        key = (row["codec"], rate_point_key(row["rate_point"]))
        verdict = Verdict(f"row {row['codec']} {key[1] or '-'}".rstrip())
        verdicts.append(verdict)
        if row["codec"] != REFERENCE:
            part = by_row.get(key)
            if part is None:
                verdict.problems.append("no per-image rows in images.csv.gz")
                continue
            _compare(verdict, "images", row.get("images"), len(part), exact=True)
            for column in image_columns:
                if column in row:
                    values = part[column].to_numpy(dtype=float)
                    finite = values[~np.isnan(values)]
                    _compare(verdict, column, row[column], float(finite.mean()) if finite.size else math.nan)
        if task_metrics:
            part = sample_groups.get(key)
            if part is None:
                verdict.problems.append("no per-sample rows in samples.csv.gz")
                continue
            records = part.drop(columns=["codec", "rate_point", "_key"]).to_dict(orient="records")
            for metric in task_metrics:
                for column, value in metric.compute(records).items():
                    if column in row:
                        _compare(verdict, column, row[column], value)
    return verdicts


def _compare(verdict: Verdict, column: str, published: Any, recomputed: Any, exact: bool = False) -> None:
    verdict.checked += 1
    same = (published == recomputed) if exact else _close(published, recomputed)
    if not same:
        verdict.problems.append(f"{column}: published {published!r}, recomputed {recomputed!r}")


def _check_bd(folder: Path, raw: dict[str, Any], document: dict[str, Any], images, samples, task_metrics) -> Verdict:
    """BD-rates, their intervals, BD-quality and the rate at clean minus one point, recomputed by the
    same code that published them, from the rows and the per-sample files."""
    import pandas as pd

    from .config import parse_config
    from .leaderboard import render_leaderboard
    from .publish import bootstrap_inputs

    verdict = Verdict("BD-rates")
    published = document.get("bd") or {}
    config = parse_config(raw, str(folder / "config.yaml"))
    results = pd.DataFrame(document.get("rows") or [])
    bootstrap = bootstrap_inputs(samples, images, task_metrics, document.get("quality_metric"))
    with tempfile.TemporaryDirectory() as scratch:
        summary = render_leaderboard(
            Path(scratch), results, title=config.title, quality_metric=document.get("quality_metric"),
            higher_is_better=published.get("higher_is_better", True), anchor=config.leaderboard.anchor,
            extra_anchors=config.leaderboard.extra_anchors, **bootstrap, notes=[], provenance={})
    mine = {(r["codec"], r["anchor"]): r for r in summary["bd"]}
    theirs = {(r["codec"], r["anchor"]): r for r in published.get("bd", [])}
    if set(mine) != set(theirs):
        verdict.problems.append(f"BD pairs differ: published {sorted(theirs)}, recomputed {sorted(mine)}")
    for pair in sorted(set(mine) & set(theirs)):
        for column in ("bd_rate", "bd_quality"):
            verdict.checked += 1
            if not _close(theirs[pair][column], mine[pair][column], rtol=0, atol=BD_ATOL):
                verdict.problems.append(f"{pair[0]} vs {pair[1]} {column}: published {theirs[pair][column]!r}, "
                                        f"recomputed {mine[pair][column]!r}")
        a, b = theirs[pair].get("bd_rate_ci95"), mine[pair].get("bd_rate_ci95")
        verdict.checked += 1
        if (a is None) != (b is None) or (a is not None and not all(
                _close(x, y, rtol=0, atol=BD_ATOL) for x, y in zip(a, b))):
            verdict.problems.append(f"{pair[0]} vs {pair[1]} bd_rate_ci95: published {a!r}, recomputed {b!r}")
    drop_a, drop_b = (published.get("one_point_drop") or {}).get("bpp", {}), (summary.get("one_point_drop") or {}).get("bpp", {})
    for codec in sorted(set(drop_a) | set(drop_b)):
        verdict.checked += 1
        if not _close(drop_a.get(codec), drop_b.get(codec), rtol=BD_ATOL):
            verdict.problems.append(f"{codec} bpp at clean minus one point: published {drop_a.get(codec)!r}, "
                                    f"recomputed {drop_b.get(codec)!r}")
    if "rate_matched" in published:  # boards published before the rate-matched columns have none
        _check_rate_matched(verdict, published["rate_matched"], summary.get("rate_matched"))
    return verdict


def _check_rate_matched(verdict: Verdict, published: Any, recomputed: Any) -> None:
    verdict.checked += 1
    if (published is None) != (recomputed is None):
        verdict.problems.append(f"rate-matched columns: published {published!r}, recomputed {recomputed!r}")
        return
    if published is None:
        return
    if published.get("bpp") != recomputed.get("bpp") or set(published["quality"]) != set(recomputed["quality"]):
        verdict.problems.append(f"rate-matched columns: published rates/codecs {published.get('bpp')} "
                                f"{sorted(published['quality'])}, recomputed {recomputed.get('bpp')} "
                                f"{sorted(recomputed['quality'])}")
        return
    for codec, values in sorted(published["quality"].items()):
        for rate, a, b in zip(published["bpp"], values, recomputed["quality"][codec]):
            verdict.checked += 1
            if (a is None) != (b is None) or (a is not None and not _close(a, b, rtol=BD_ATOL)):
                verdict.problems.append(f"{codec} quality at {rate:g} bpp: published {a!r}, recomputed {b!r}")


def _check_data(raw: dict[str, Any], document: dict[str, Any], registry: Any) -> list[Verdict]:
    """The dataset's fingerprint, and the sha256 of every task checkpoint found locally."""
    from .dataset import samples_fingerprint
    from .hashing import image_digest
    from .config import parse_dataset, _Reader
    from .dataset_builder import build_dataset
    from .files import sha256_file

    provenance = document.get("provenance") or {}
    data = Verdict("dataset fingerprint")
    try:
        d = parse_dataset(_Reader("config.yaml"), raw["dataset"], default_split="test")
        with tempfile.TemporaryDirectory(prefix="taskcodec-verify-") as scratch:  # derived data, e.g. landmarks
            samples = list(build_dataset(registry, d, d.split, cache_root=Path(scratch), source="config.yaml"))
        fingerprint = samples_fingerprint(samples, [image_digest(s.image) for s in samples])
        data.checked = 1
        expected = (provenance.get("dataset") or {}).get("fingerprint")
        if fingerprint != expected:
            data.problems.append(f"dataset {d.name!r} split {d.split!r} here has fingerprint {fingerprint[:16]}..., "
                                 f"the board was made from {str(expected)[:16]}...")
    except TaskcodecError as exc:
        data.problems.append(f"cannot build the dataset here: {exc}")
    weights = Verdict("task weights")
    tasks = {"task": provenance.get("task") or {}, **{f"row {k}": v for k, v in (provenance.get("row_tasks") or {}).items()}}
    for who, facts in tasks.items():
        recorded = facts.get("checkpoint") if isinstance(facts.get("checkpoint"), dict) else {}
        path = recorded.get("path") or (facts.get("options") or {}).get("checkpoint")
        expected = recorded.get("file_sha256")  # the file's hash ("weights_sha256" hashes the tensors)
        if not path or not expected or not Path(path).is_file():
            continue
        weights.checked += 1
        if sha256_file(path) != expected:
            weights.problems.append(f"{who}: {path} has another sha256 than the board's {expected[:16]}...")
    return [data, weights]
