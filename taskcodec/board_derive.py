"""Derived boards (``scripts/derive_board.py``): the rows a config names, taken from the files of one or more
published boards, nothing recomputed. Each row must be the same codec, with the same task options and the
same data, task and seed as where it was published; the board is then written by
:func:`taskcodec.board_merge.combine`, the mechanism bundles and merges share."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Sequence

from .board_merge import Pick, Source, combine, ran_precision, require_same, task_models_of_rows
from .errors import PublishError
from .verify import REFERENCE, rate_point_key


def git_head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def derive_board(source_folders: Sequence[Path], config_path: Path, out: Path) -> bool:
    """Publish ``config_path``'s board at ``out`` from the rows of ``source_folders`` (the first that holds a
    row supplies it); each row must be the same codec (identity, options, versions, model digests) with the
    same task options as where it was published."""
    from .config import load_config
    from .pluginmanager import get_plugin_manager

    registry = get_plugin_manager().registry
    config = load_config(config_path, registry)
    sources = [Source.read(folder) for folder in source_folders]
    for source in sources:
        _require_same_config(source, config)
        require_same(sources[0], source)
    picks = [_pick_configured(codec, sources, registry, config) for codec in config.codecs]
    provenance = dict(sources[0].provenance)
    provenance.update(
        command=f"python scripts/derive_board.py {' '.join(map(str, source_folders))} {config_path} {out}",
        config_file=str(config_path), config=config.raw, benchmark_key=config.key(),
        codecs={p.row: p.identity for p in picks},
        derived_from=[{"board": str(s.folder), "content_digest": s.document["content_digest"], "git": git_head(),
                       "rows": sorted([REFERENCE] * (i == 0) + [p.row for p in picks if p.source == i]),
                       "note": "rows copied from that board's published files; nothing recomputed"}
                      for i, s in enumerate(sources) if i == 0 or any(p.source == i for p in picks)])
    row_tasks = task_models_of_rows(sources, [p.row for p in picks])
    if row_tasks or provenance.get("row_tasks"):
        provenance["row_tasks"] = row_tasks
    return combine(sources, picks, config, registry, provenance, out)


def _task_as_run(task: dict[str, Any] | None, ran: dict[str, Any] | None) -> dict[str, Any] | None:
    """A board's configured task with ``precision`` as it ran (its task provenance records that): a board
    published with ``auto`` is the same as a config naming the precision ``auto`` resolved to there."""
    precision = ran_precision(ran)
    if not task or not precision:
        return task
    return {**task, "options": {**(task.get("options") or {}), "precision": precision}}


def _require_same_config(source: Source, config) -> None:
    old = dict(source.provenance["config"], task=_task_as_run(source.provenance["config"].get("task"),
                                                              source.provenance.get("task")))
    for key in ("dataset", "task", "seed"):
        if old.get(key) != config.raw.get(key):
            raise PublishError(f"{config.source}: {key} differs from {source.folder}'s config.yaml: "
                               f"{config.raw.get(key)!r} vs {old.get(key)!r}"
                               + (" (the precision as it ran there)" if key == "task" else ""))
    if list(old.get("metrics") or []) != list(config.raw.get("metrics") or []):
        raise PublishError(f"{config.source}: metrics {config.raw.get('metrics')} differ from {source.folder}'s "
                           f"{old.get('metrics')}")


def _set_options(identity: dict[str, Any]) -> dict[str, Any]:
    """A codec identity without its unset (None) options: an option left at its default says nothing about
    the bytes (the version and the set options do), so renaming an unset option keeps a row the same codec."""
    options = {k: v for k, v in (identity.get("options") or {}).items() if v is not None}
    return {**identity, "options": options}


def _pick_configured(codec, sources: Sequence[Source], registry, config) -> Pick:
    holders = [i for i, s in enumerate(sources) if codec.row in s.provenance["codecs"]]
    if not holders:
        raise PublishError(f"{config.source}: row {codec.row!r} is on none of the boards "
                           f"{', '.join(str(s.folder) for s in sources)}")
    source = sources[holders[0]]
    published = source.points(codec.row)
    instance = registry.get("codec", codec.name).target(**codec.options)
    points = {rate_point_key(p) for p in (codec.rate_points or instance.default_rate_points or (None,))}
    missing = sorted(points - published)
    if missing:
        raise PublishError(f"{config.source}: row {codec.row!r} rate points {missing} are not on the board "
                           f"{source.folder} (it has {sorted(published)})")
    mine = json.loads(json.dumps(instance.identity(), default=str))
    identity = source.provenance["codecs"][codec.row]
    if _set_options(mine) != _set_options(identity):
        raise PublishError(f"{config.source}: row {codec.row!r} is not the codec {source.folder} published "
                           f"(identity {mine} vs {identity})")
    old_task = source.config_entry(codec.row).get("task_options")
    if (codec.task_options or None) != (old_task or None):
        raise PublishError(f"{config.source}: row {codec.row!r} task_options {codec.task_options} differ from "
                           f"{source.folder}'s {old_task}")
    return Pick(codec.row, holders[0], points, identity)
