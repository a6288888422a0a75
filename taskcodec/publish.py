"""Writes a leaderboard folder: results.csv/json, per-image and per-sample outputs,
the config snapshot, (through :mod:`taskcodec.leaderboard`) README.md and rd.png, the figures
the task metrics draw (``TaskMetric.draw_figures``, e.g. the classification metrics'
confusion.png), and ``manifest.json``, the sha256 of every file written.

Files are rendered in a staging folder and renamed into place, the manifest last, so a
folder never holds a half-written file and a kill mid-way is detected (the manifest does not
match) and rendered again; gzip members carry no timestamp, so regenerating identical
results rewrites identical bytes.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import PublishError
from .files import sha256_file, write_atomic
from .hashing import rate_point_key, stable_json
from .metric import TaskMetric
from .markdown import md_code
from .results import REFERENCE, Collected
from .schemas import SchemaError, read_json, validate

RESULTS_FORMAT = 3  # the result files schema (taskcodec/schemas/results-3.schema.json)
RESULT_COLUMNS = ("codec", "rate_point", "parameter", "images", "bpp", "payload_bpp")


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


def _csv_bytes(frame) -> bytes:
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()


def _gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as fh:
        fh.write(data)
    return buffer.getvalue()


_JSON_LEAVES = frozenset((str, int, bool, type(None)))


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity made None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    # leaves that stay as they are are kept inline, without a call each (a board holds ~10^5 of them);
    # v - v == 0 exactly when a float is finite
    if isinstance(value, dict):
        return {k: v if type(v) in _JSON_LEAVES or (type(v) is float and v - v == 0) else _json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _JSON_LEAVES or (type(v) is float and v - v == 0) else _json_safe(v) for v in value]
    return value


def quality_metric(config, results) -> tuple[str, bool]:
    """The column on the BD axis: the configured one, else the first task column, else PSNR."""
    if config.leaderboard.quality_metric:
        if config.leaderboard.quality_metric not in results.columns:
            from .errors import ConfigError

            raise ConfigError(
                f"{config.source}: leaderboard.quality_metric: {config.leaderboard.quality_metric!r} is not a result "
                f"column; columns: {', '.join(results.columns)}"
            )
        return config.leaderboard.quality_metric, True
    task_columns = [c for c in results.columns if c not in RESULT_COLUMNS and c not in ("psnr", "ms_ssim")
                    and "bpp" not in c and not c.startswith("stat_")  # codec stats are not task metrics
                    and not c.endswith("_undefined")]  # counts of images a metric has no value for
    return (task_columns[0] if task_columns else "psnr"), True


def board_hooks(metrics: Sequence[Any], method: str) -> list[Any]:
    """The task metrics whose optional board method ``method`` (see :class:`taskcodec.TaskMetric`)
    is implemented, each implementation once, in the metrics' order."""
    seen = {getattr(TaskMetric, method)}  # the default does nothing
    chosen = []
    for metric in metrics:
        implementation = getattr(type(metric), method, None)
        if implementation is not None and implementation not in seen:
            seen.add(implementation)
            chosen.append(metric)
    return chosen


def bootstrap_samples(samples, images, metrics: Sequence[Any]):
    """Per-sample scores with each sample's bpp, for the BD-rates' bootstrap intervals: ``(frame,
    score column)`` from the first task metric that scores these samples (``TaskMetric.sample_scores``),
    or ``(None, None)`` where the samples are not per image or no metric scores them."""
    if samples is None or "image" not in samples.columns or images.empty:
        return None, None
    scorers = board_hooks(metrics, "sample_scores")
    if not scorers:
        return None, None
    per_sample = samples.merge(images[["codec", "rate_point", "image", "bpp"]], on=["codec", "rate_point", "image"], how="left")
    for metric in scorers:
        scores = metric.sample_scores(per_sample)
        if scores is not None:
            column, values = scores
            per_sample[column] = values
            return per_sample, column
    return None, None


def bootstrap_inputs(samples, images, metrics: Sequence[Any], column: str) -> dict[str, Any]:
    """The keyword arguments of :func:`taskcodec.leaderboard.render_leaderboard` that give the BD-rates
    their intervals: per-sample scores (:func:`bootstrap_samples`), else the first metric's replicates of
    ``column`` (``TaskMetric.bootstrap_replicates``), else none."""
    from .leaderboard import BOOTSTRAP_N, BOOTSTRAP_SEED

    per_sample, score_column = bootstrap_samples(samples, images, metrics)
    if per_sample is not None:
        return {"per_sample": per_sample, "sample_score_column": score_column}
    if samples is None:
        return {}
    for metric in board_hooks(metrics, "bootstrap_replicates"):
        found = metric.bootstrap_replicates(samples, column, BOOTSTRAP_N, BOOTSTRAP_SEED)
        if found is not None:
            method, replicates = found
            return {"quality_replicates": (method, {(str(codec), rate_point_key(point)): values
                                                    for (codec, point), values in replicates.items()})}
    return {}


def content_digest(collected: Collected, config) -> str:
    """sha256 of everything a leaderboard folder is rendered from (numbers, provenance, config)."""
    content = [collected.rows, collected.images, collected.samples, collected.provenance, config.raw,
               list(config.leaderboard.notes)]
    return hashlib.sha256(json.dumps(_json_safe(content), sort_keys=True, default=str).encode()).hexdigest()


def up_to_date(folder: Path, digest: str) -> dict[str, Any] | None:
    """The folder's BD summary if it was rendered from exactly this content and every file its manifest
    lists is there with the recorded sha256 (a missing, truncated, stale or malformed file means: render again)."""
    try:
        manifest = read_manifest(folder)
    except SchemaError:
        return None
    if manifest is None or manifest.get("content_digest") != digest or manifest_problems(folder, manifest):
        return None
    try:
        document = read_json(folder / "results.json", "results")
    except SchemaError:
        return None
    return document.get("bd") or {}


def boards_in(folder: Path) -> list[Path]:
    """``folder`` itself if it is a published board (holds results.json), else the boards directly inside it."""
    folder = Path(folder)
    if (folder / "results.json").is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / "results.json").is_file())


def require_clean_tree(boards_dir: str, boards_may_change: bool = False) -> None:
    """Published boards record the git revision that made them: it must be a real, committed one (when
    boards are only rendered again, uncommitted renders under ``boards_dir`` do not count)."""
    from .provenance import git_revision

    git = git_revision(outside=boards_dir if boards_may_change else None)
    if git is None:
        raise PublishError("--publish needs taskcodec run from a git checkout (the board records its revision); "
                           "use --out DIR to write a board elsewhere")
    if git["dirty"]:
        raise PublishError(f"publishing refused: the git tree at revision {git['revision'][:12]} has uncommitted "
                           f"changes to tracked files (see `git status`); commit them (and restore the board "
                           f"folder with `git checkout {boards_dir}/<benchmark>`) so that the board names a clean "
                           f"revision, or use --out DIR")


def check_writable(folder: Path) -> None:
    """PublishError unless ``folder`` can be created and written: checked before any work is done,
    so that an unwritable ``--out`` costs nothing and touches nothing."""
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise PublishError(f"cannot write the leaderboard folder {folder}: {probe_dir} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".taskcodec-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PublishError(f"cannot write the leaderboard folder {folder}: {exc}") from None


def publish(collected: Collected, config, folder: Path, *, force: bool = False) -> bool:
    """Write the leaderboard folder for ``collected``; False if it was already up to date.

    A folder already rendered from identical content is left as it is (unless ``force``). Every file is
    rendered into a staging folder beside ``folder`` first, then renamed into place one by one; the
    manifest (each file's sha256) is written last, so a kill at any point leaves a folder whose
    manifest does not match, which the next run renders again. Files the folder holds that this
    renderer did not write (e.g. model checkpoints) are left alone.
    """
    digest = content_digest(collected, config)
    if not force and up_to_date(folder, digest) is not None:
        return False
    check_writable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{folder.name}.staging-*"):  # left by a killed render
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging-"))
    try:
        files = _render(collected, config, staging, digest)
        try:
            old = read_manifest(folder)
        except SchemaError:  # damaged: render anew; files only it listed may stay behind
            old = None
        for name in files:
            os.replace(staging / name, folder / name)
        for name in (old or {}).get("files", {}):
            if name not in files and (folder / name).is_file():  # no longer rendered: would be stale
                (folder / name).unlink()
        manifest = {"format": MANIFEST_FORMAT, "content_digest": digest, "files": files}
        _write_manifest(folder, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def _render(collected: Collected, config, out: Path, digest: str) -> dict[str, str]:
    """Write every file of the leaderboard into ``out``; returns {file name: sha256}."""
    from .leaderboard import render_leaderboard

    results = _frame(collected.rows)
    images = _frame(collected.images)
    samples = _frame(collected.samples) if collected.samples else None
    metric, higher = quality_metric(config, results)
    collected = dataclasses.replace(collected, provenance=with_model_cards(collected.provenance))
    bootstrap = bootstrap_inputs(samples, images, collected.task_metrics, metric)
    notes = _notes(collected, config)
    for figures in board_hooks(collected.task_metrics, "draw_figures"):  # e.g. confusion matrices
        notes += figures.draw_figures(out, results, samples, collected.provenance)
    summary = render_leaderboard(
        out,
        results,
        title=config.title,
        quality_metric=metric,
        higher_is_better=higher,
        anchor=config.leaderboard.anchor,
        extra_anchors=config.leaderboard.extra_anchors,
        **bootstrap,
        notes=notes,
        provenance=collected.provenance,
    )
    _write_data_files(out, collected, config, digest, results, images, samples, metric, summary)
    return {path.name: sha256_file(path) for path in sorted(out.iterdir()) if path.is_file()}


def with_model_cards(provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` with the model cards of its task models and learned rows (taskcodec/model_cards.py),
    made from the files in this checkout (model paths are relative to the working directory, as in configs)."""
    from .model_cards import board_model_cards, registry_relation
    from .pluginmanager import get_plugin_manager

    cards = board_model_cards(provenance, Path.cwd(), registry_relation(get_plugin_manager().registry))
    # a card the given provenance already holds (e.g. a merged row's, made where its model was trained)
    # stands where this checkout lacks the model's training files
    known = {(c["row"], c["kind"]): c for c in provenance.get("model_cards") or [] if c.get("trained_on")}
    cards = [c if c.get("trained_on") else known.get((c["row"], c["kind"]), c) for c in cards]
    return {**provenance, "model_cards": cards}


def _notes(collected: Collected, config) -> list[str]:
    """The README notes: an untrained-model warning first, the config's notes, then which rows are
    evaluated with another task model than the main one."""
    notes = list(config.leaderboard.notes)
    # rows evaluated with another model than the main task's: say which, next to the numbers
    row_tasks = collected.provenance.get("row_tasks") or {}
    for c in config.codecs:
        if c.task_options:
            fingerprint = (row_tasks.get(c.row) or {}).get("fingerprint")
            notes.append(f"row {md_code(c.row)} is evaluated with task {md_code(config.task.name)} options "
                         f"{md_code(stable_json(c.task_options))} over `task.options`"
                         + (f" (model {md_code(fingerprint)})" if fingerprint else "")
                         + "; the other rows and `none` with the main task model.")
    untrained = sorted(row for row, identity in collected.provenance.get("codecs", {}).items()
                       if isinstance(identity, dict) and identity.get("untrained"))
    if untrained:  # a pipeline check, never a result: say so where nobody can miss it
        notes.insert(0, f"**WARNING: rows {', '.join(map(md_code, untrained))} use UNTRAINED models (pipeline "
                        "check only); their numbers say nothing about the method.**")
    return notes


def _write_data_files(out: Path, collected: Collected, config, digest: str, results, images, samples, metric: str,
                      summary: dict[str, Any]) -> None:
    """results.csv/json, images.csv.gz, samples.csv.gz (when the task wrote per-sample rows), config.yaml."""
    (out / "results.csv").write_bytes(_csv_bytes(results))
    document = {
        "format": RESULTS_FORMAT,
        "content_digest": digest,
        "rows": _json_safe(results.to_dict(orient="records")),
        "quality_metric": metric,
        "bd": _json_safe(summary),
        "provenance": _json_safe(collected.provenance),
    }
    text = json.dumps(document, indent=1, sort_keys=False, default=str) + "\n"
    validate(json.loads(text), "results", f"results.json rendered from {config.source}")  # as a reader sees it
    (out / "results.json").write_bytes(text.encode())
    (out / "images.csv.gz").write_bytes(_gzip_bytes(_csv_bytes(images)))
    if samples is not None:
        (out / "samples.csv.gz").write_bytes(_gzip_bytes(_csv_bytes(samples)))
    (out / "config.yaml").write_bytes(yaml.safe_dump(config.raw, sort_keys=False).encode())
    if config.leaderboard.notes_file:  # beside config.yaml, where that config reads it
        notes_file = config.leaderboard.notes_file
        (out / notes_file).write_bytes((Path(config.source).parent / notes_file).read_bytes())


# ------------------------------------------------------------------------------------ manifest
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest (``{"format", "content_digest", "files": {name: sha256}}``), or None if
    absent; one that does not match its schema raises SchemaError."""
    if not (folder / MANIFEST).is_file():
        return None
    return read_json(folder / MANIFEST, "manifest")


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    validate(manifest, "manifest", folder / MANIFEST)
    write_atomic(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def certify_manifest(folder: Path) -> dict[str, Any]:
    """Write the manifest of a board rendered before manifests existed, from its files as they are
    (``taskcodec verify --write-manifest``, which first recomputes every number in them)."""
    document = read_json(folder / "results.json", "results")
    figures = sorted(p.name for p in folder.glob("*.png") if p.name != "rd.png")  # drawn by task metrics
    names = ["README.md", "rd.png", *figures, "results.csv", "results.json", "images.csv.gz", "samples.csv.gz",
             "config.yaml"]
    files = {name: sha256_file(folder / name) for name in names if (folder / name).is_file()}
    manifest = {"format": MANIFEST_FORMAT, "content_digest": document.get("content_digest"), "files": files}
    _write_manifest(folder, manifest)
    return manifest


def manifest_problems(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """One line per file the manifest lists that is missing or whose sha256 differs."""
    problems = []
    for name, expected in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing (the manifest lists it)")
        elif sha256_file(path) != expected:
            problems.append(f"{path}: sha256 {sha256_file(path)[:12]}..., the manifest records {str(expected)[:12]}...")
    return problems


__all__ = ["publish", "REFERENCE"]
