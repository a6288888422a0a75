"""Publish a board made of rows of published boards, from those boards' files alone: nothing is recomputed.

    python scripts/derive_board.py leaderboard/ferplus configs/ferplus-small-learned/board.yaml \
        leaderboard/ferplus-small-learned
    taskcodec verify leaderboard/ferplus-small-learned
    # rows of two boards: a published one and a run of only the new rows (same data, task and metrics)
    python scripts/derive_board.py leaderboard/ferplus runs/ferplus-new configs/ferplus/board.yaml leaderboard/ferplus

With several sources, each row comes from the first that holds it; every source must have evaluated
the same images (dataset fingerprint) with the same task model, and give the same uncompressed row.

The new board's config must evaluate the same data with the same task as the source board's, and
every row it names must be in the source board with the same codec identity (the same options,
versions and model digests): then its numbers are those the source board published, and the new
board renders from them (BD-rates, intervals, plots, rate-matched columns, per-sample files). Its
provenance is the source run's, with the new config and a ``derived_from`` record (the source
board's folder, content digest and the git revision it was read at). Anything that differs is
refused with the fact named.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from taskcodec import ImageMetric
from taskcodec.config import load_config
from taskcodec.errors import PublishError
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.publish import publish
from taskcodec.results import REFERENCE, Collected
from taskcodec.schemas import read_json
from taskcodec.verify import rate_point_key


def _records(path: Path, points: dict[str, set[str]]) -> list[dict]:
    frame = pd.read_csv(path, keep_default_na=True)
    keep = [str(c) in points and rate_point_key(p) in points[str(c)] for c, p in zip(frame["codec"], frame["rate_point"])]
    records = frame[keep].to_dict(orient="records")
    for record in records:  # empty cells come back as NaN: give the renderer the None it wrote them from
        for key, value in record.items():
            if isinstance(value, float) and value != value:
                record[key] = None
    return records


def _check_same_evaluation(source: dict, config, source_folder: Path) -> None:
    old = source["provenance"]["config"]
    for key in ("dataset", "task", "seed"):
        if old.get(key) != config.raw.get(key):
            raise PublishError(f"{config.source}: {key} differs from {source_folder}'s config.yaml: "
                               f"{config.raw.get(key)!r} vs {old.get(key)!r}")
    if list(old.get("metrics") or []) != list(config.raw.get("metrics") or []):
        raise PublishError(f"{config.source}: metrics {config.raw.get('metrics')} differ from {source_folder}'s "
                           f"{old.get('metrics')}")


def _check_same_run_facts(first: dict, other: dict, first_folder: Path, other_folder: Path) -> None:
    """Two source boards evaluated the same images with the same task model."""
    for what, get in (("dataset fingerprint", lambda d: d["provenance"]["dataset"]["fingerprint"]),
                      ("task model", lambda d: d["provenance"]["task"]),
                      ("uncompressed reference row", lambda d: [r for r in d["rows"] if r["codec"] == REFERENCE])):
        if get(first) != get(other):
            raise PublishError(f"{other_folder} and {first_folder} differ in their {what}: "
                               f"{json.dumps(get(other), default=str)[:200]} vs {json.dumps(get(first), default=str)[:200]}")


def _row_source(codec, sources: list[tuple[Path, dict]], registry, config) -> tuple[int, set[str], dict]:
    """(index of the first source board holding ``codec``'s row, its rate point keys, its identity); every
    difference of rate points, codec identity or task options refused with the fact named."""
    holders = [i for i, (_, doc) in enumerate(sources) if codec.row in doc["provenance"]["codecs"]]
    if not holders:
        raise PublishError(f"{config.source}: row {codec.row!r} is on none of the boards "
                           f"{', '.join(str(folder) for folder, _ in sources)}")
    index = holders[0]
    folder, source = sources[index]
    published = {rate_point_key(r["rate_point"]) for r in source["rows"] if r["codec"] == codec.row}
    instance = registry.get("codec", codec.name).target(**codec.options)
    points = {rate_point_key(p) for p in (codec.rate_points or instance.default_rate_points or (None,))}
    missing = sorted(points - published)
    if missing:
        raise PublishError(f"{config.source}: row {codec.row!r} rate points {missing} are not on the board "
                           f"{folder} (it has {sorted(published)})")
    mine = json.loads(json.dumps(instance.identity(), default=str))
    identity = source["provenance"]["codecs"][codec.row]
    if mine != identity:
        raise PublishError(f"{config.source}: row {codec.row!r} is not the codec {folder} published "
                           f"(identity {mine} vs {identity})")
    old_codecs = source["provenance"]["config"]["codecs"]
    old_task = old_codecs[[c.get("row", c.get("name")) for c in old_codecs].index(codec.row)].get("task_options")
    if (codec.task_options or None) != (old_task or None):
        raise PublishError(f"{config.source}: row {codec.row!r} task_options {codec.task_options} differ from "
                           f"{folder}'s {old_task}")
    return index, points, identity


def _published_rows(folder: Path, source: dict, points: dict[str, set[str]]) -> list[dict]:
    """The source board's result rows of ``points``, infinities restored (results.json stores them as null,
    results.csv keeps them)."""
    def kept(r: dict) -> bool:
        return r["codec"] in points and rate_point_key(r["rate_point"]) in points[r["codec"]]

    rows = [dict(r) for r in source["rows"] if kept(r)]
    table = pd.read_csv(folder / "results.csv")
    lines = [line for _, line in table.iterrows() if kept({"codec": str(line["codec"]), "rate_point": line["rate_point"]})]
    for row, line in zip(rows, lines):
        for key, value in row.items():
            if value is None and isinstance(line.get(key), float) and abs(line[key]) == float("inf"):
                row[key] = float(line[key])
    return rows


def derive(source_folders: Path | list[Path], config_path: Path, out: Path) -> bool:
    """Publish ``config_path``'s board at ``out`` from the rows of ``source_folders`` (the first that holds a row
    supplies it; all must have evaluated the same data with the same task model)."""
    folders = [source_folders] if isinstance(source_folders, Path) else list(source_folders)
    registry = get_plugin_manager()
    config = load_config(config_path, registry.registry)
    sources = [(folder, read_json(folder / "results.json", "results")) for folder in folders]
    for folder, source in sources:
        _check_same_evaluation(source, config, folder)
        _check_same_run_facts(sources[0][1], source, sources[0][0], folder)
    wanted = {c.row for c in config.codecs}
    points: list[dict[str, set[str]]] = [{} for _ in sources]
    points[0][REFERENCE] = {""}
    identities = {}
    for codec in config.codecs:
        index, keys, identities[codec.row] = _row_source(codec, sources, registry, config)
        points[index][codec.row] = keys
    rows, images, samples = [], [], []
    for (folder, source), chosen in zip(sources, points):
        if not chosen:
            continue
        rows += _published_rows(folder, source, chosen)
        images += _records(folder / "images.csv.gz", chosen)
        if (folder / "samples.csv.gz").is_file():
            samples += _records(folder / "samples.csv.gz", chosen)
    provenance = dict(sources[0][1]["provenance"])
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    provenance.update(
        command=f"python scripts/derive_board.py {' '.join(map(str, folders))} {config_path} {out}",
        config_file=str(config_path), config=config.raw, benchmark_key=config.key(), codecs=identities,
        derived_from=[{"board": str(folder), "content_digest": source["content_digest"], "git": git,
                       "rows": sorted(chosen), "note": "rows copied from that board's published files; nothing "
                       "recomputed"} for (folder, source), chosen in zip(sources, points) if chosen])
    row_tasks = {r: t for _, source in sources for r, t in (source["provenance"].get("row_tasks") or {}).items()}
    if row_tasks or provenance.get("row_tasks"):
        provenance["row_tasks"] = {r: t for r, t in row_tasks.items() if r in wanted}
    task_metrics = [cls() for cls in (registry.get("metric", name).target for name in config.metrics)
                    if not issubclass(cls, ImageMetric)]
    return publish(Collected(rows, images, samples, provenance, task_metrics), config, out)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    try:
        changed = derive([Path(a) for a in sys.argv[1:-2]], Path(sys.argv[-2]), Path(sys.argv[-1]))
    except PublishError as exc:
        sys.exit(f"derive_board: {exc}")
    print(f"derive_board: {sys.argv[-1]} {'written' if changed else 'already up to date'}")
