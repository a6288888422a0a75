"""Publish a board made of rows of a published board, from that board's files alone: nothing is recomputed.

    python scripts/derive_board.py leaderboard/ferplus configs/ferplus-small-learned/board.yaml \
        leaderboard/ferplus-small-learned
    taskcodec verify leaderboard/ferplus-small-learned

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


def derive(source_folder: Path, config_path: Path, out: Path) -> bool:
    registry = get_plugin_manager()
    config = load_config(config_path, registry.registry)
    source = json.loads((source_folder / "results.json").read_text())
    _check_same_evaluation(source, config, source_folder)
    identities = source["provenance"]["codecs"]
    wanted = {c.row for c in config.codecs}
    published = {}
    for r in source["rows"]:
        published.setdefault(r["codec"], set()).add(rate_point_key(r["rate_point"]))
    points = {REFERENCE: {""}}
    for codec in config.codecs:
        if codec.row not in identities:
            raise PublishError(f"{config.source}: row {codec.row!r} is not on the board {source_folder}")
        instance = registry.get("codec", codec.name).target(**codec.options)
        points[codec.row] = {rate_point_key(p) for p in (codec.rate_points or instance.default_rate_points or (None,))}
        missing = sorted(points[codec.row] - published[codec.row])
        if missing:
            raise PublishError(f"{config.source}: row {codec.row!r} rate points {missing} are not on the board "
                               f"{source_folder} (it has {sorted(published[codec.row])})")
        mine = json.loads(json.dumps(instance.identity(), default=str))
        if mine != identities[codec.row]:
            raise PublishError(f"{config.source}: row {codec.row!r} is not the codec {source_folder} published "
                               f"(identity {mine} vs {identities[codec.row]})")
        old_task = (source["provenance"]["config"]["codecs"][[c.get("row", c.get("name"))
                                                              for c in source["provenance"]["config"]["codecs"]]
                                                             .index(codec.row)].get("task_options"))
        if (codec.task_options or None) != (old_task or None):
            raise PublishError(f"{config.source}: row {codec.row!r} task_options {codec.task_options} differ from "
                               f"{source_folder}'s {old_task}")
    def kept(r: dict) -> bool:
        return r["codec"] in points and rate_point_key(r["rate_point"]) in points[r["codec"]]

    rows = [dict(r) for r in source["rows"] if kept(r)]
    # results.json stores infinities (a lossless row's PSNR) as null; results.csv keeps them
    table = pd.read_csv(source_folder / "results.csv")
    lines = [line for _, line in table.iterrows() if kept({"codec": str(line["codec"]), "rate_point": line["rate_point"]})]
    for row, line in zip(rows, lines):
        for key, value in row.items():
            if value is None and isinstance(line.get(key), float) and abs(line[key]) == float("inf"):
                row[key] = float(line[key])
    images = _records(source_folder / "images.csv.gz", points)
    samples = _records(source_folder / "samples.csv.gz", points) if (source_folder / "samples.csv.gz").is_file() else []
    provenance = dict(source["provenance"])
    provenance.update(
        command=f"python scripts/derive_board.py {source_folder} {config_path} {out}",
        config_file=str(config_path), config=config.raw, benchmark_key=config.key(),
        codecs={row: identity for row, identity in identities.items() if row in wanted},
        derived_from={"board": str(source_folder), "content_digest": source["content_digest"],
                      "git": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
                      "note": "rows copied from that board's published files; nothing recomputed"})
    if provenance.get("row_tasks"):
        provenance["row_tasks"] = {r: t for r, t in provenance["row_tasks"].items() if r in wanted}
    task_metrics = [cls() for cls in (registry.get("metric", name).target for name in config.metrics)
                    if not issubclass(cls, ImageMetric)]
    return publish(Collected(rows, images, samples, provenance, task_metrics), config, out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    try:
        changed = derive(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    except PublishError as exc:
        sys.exit(f"derive_board: {exc}")
    print(f"derive_board: {sys.argv[3]} {'written' if changed else 'already up to date'}")
