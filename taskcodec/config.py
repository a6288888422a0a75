"""Benchmark configs: YAML mapped to frozen dataclasses, with errors that name file and key.

A config names the dataset (and its root), the task, the metrics and the codecs with
their rate points; see README.md ("Config format") for every key. Relative dataset
roots resolve against the environment variable ``TASKCODEC_DATA`` when it is set, else
against the current directory.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .api import stable_json
from .errors import ConfigError, DuplicatePluginError, TaskcodecError, UnknownPluginError

DATA_ENV = "TASKCODEC_DATA"


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    root: Path | None
    split: str
    options: dict[str, Any]


@dataclass(frozen=True)
class TaskConfig:
    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class CodecConfig:
    name: str
    label: str  # the row name in the leaderboard (defaults to name)
    settings: tuple[Any, ...]
    options: dict[str, Any]
    # overrides of task.options for this row: its outputs come from that task model
    task_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerConfig:
    workers: int | None = None  # None: all cores
    batch_size: int = 256
    device: str = "auto"  # auto | cpu | cuda


@dataclass(frozen=True)
class LeaderboardConfig:
    anchor: str = "jpeg"
    extra_anchors: tuple[str, ...] = ()
    quality_metric: str | None = None  # None: the task's first metric column, else psnr
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BenchmarkConfig:
    benchmark: str
    title: str
    dataset: DatasetConfig
    task: TaskConfig | None
    metrics: tuple[str, ...]
    codecs: tuple[CodecConfig, ...]
    reference: bool
    seed: int
    runner: RunnerConfig
    leaderboard: LeaderboardConfig
    source: str  # the file it was read from
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def key(self) -> str:
        """Identity of what this benchmark computes (not of how: runner settings excluded)."""
        raw = {k: v for k, v in self.raw.items() if k not in ("runner", "leaderboard", "title")}
        return hashlib.sha256(stable_json(raw).encode()).hexdigest()[:16]


class _Reader:
    """Walks the YAML mapping, remembering the key path for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: dict[str, bool]) -> dict[str, Any]:
        """Check ``value`` is a mapping with only ``allowed`` keys (value True = required)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping with keys {sorted(allowed)}, got {type(value).__name__} {value!r}")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail(path, f"unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")
        missing = [k for k, required in allowed.items() if required and k not in value]
        if missing:
            raise self.fail(path, f"missing required key {missing[0]!r}")
        return value

    def typed(self, value: Any, path: str, types: type | tuple[type, ...], what: str) -> Any:
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.fail(path, f"expected {what}, got {value!r}")
        if not isinstance(value, types):
            raise self.fail(path, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def name_list(self, value: Any, path: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        self.typed(value, path, list, "a list of names")
        return tuple(self.typed(v, f"{path}[{i}]", str, "a name") for i, v in enumerate(value))


def resolve_root(root: str | None) -> Path | None:
    """Absolute dataset root: relative paths resolve against $TASKCODEC_DATA (else the cwd)."""
    if root is None:
        return None
    path = Path(os.path.expanduser(str(root)))
    if not path.is_absolute():
        base = os.environ.get(DATA_ENV)
        path = (Path(base) / path) if base else (Path.cwd() / path)
    return path.resolve()


def parse_dataset(r: _Reader, value: Any, default_split: str) -> DatasetConfig:
    """The ``dataset:`` mapping of a benchmark or training config."""
    d = r.mapping(value, "dataset", {"name": True, "root": False, "split": False, "options": False})
    return DatasetConfig(
        name=r.typed(d["name"], "dataset.name", str, "a dataset plugin name"),
        root=resolve_root(r.typed(d["root"], "dataset.root", str, "a folder path") if d.get("root") is not None else None),
        split=r.typed(d.get("split", default_split), "dataset.split", str, "a split name"),
        options=dict(r.typed(d.get("options") or {}, "dataset.options", dict, "a mapping of dataset options")),
    )


def parse_task(r: _Reader, value: Any) -> TaskConfig:
    """The ``task:`` mapping of a benchmark or training config."""
    t = r.mapping(value, "task", {"name": True, "options": False})
    return TaskConfig(
        name=r.typed(t["name"], "task.name", str, "a task plugin name"),
        options=dict(r.typed(t.get("options") or {}, "task.options", dict, "a mapping of task options")),
    )


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """A YAML file's content; a missing file or bad YAML is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_config(path: str | Path, registry: Any | None = None) -> BenchmarkConfig:
    """Read and validate a benchmark config; plugin names are checked against ``registry``."""
    return parse_config(read_yaml(path), str(path), registry)


def parse_config(raw: Any, source: str, registry: Any | None = None) -> BenchmarkConfig:
    r = _Reader(source)
    top = r.mapping(
        raw,
        "(top level)",
        {
            "benchmark": True, "title": False, "dataset": True, "task": False, "metrics": False,
            "codecs": True, "reference": False, "seed": False, "runner": False, "leaderboard": False,
        },
    )
    benchmark = r.typed(top["benchmark"], "benchmark", str, "a benchmark name (used as the leaderboard folder name)")
    if not benchmark or "/" in benchmark or benchmark.startswith("."):
        raise r.fail("benchmark", f"expected a plain folder name, got {benchmark!r}")

    dataset = parse_dataset(r, top["dataset"], default_split="test")
    task = parse_task(r, top["task"]) if top.get("task") is not None else None

    codecs_raw = r.typed(top["codecs"], "codecs", list, "a list of codecs")
    if not codecs_raw:
        raise r.fail("codecs", "expected at least one codec")
    codecs = []
    for i, c in enumerate(codecs_raw):
        where = f"codecs[{i}]"
        if isinstance(c, str):
            c = {"name": c}
        c = r.mapping(c, where, {"name": True, "label": False, "settings": False, "options": False, "task_options": False})
        name = r.typed(c["name"], f"{where}.name", str, "a codec plugin name")
        # not `or {}`: a falsy non-mapping (an empty list) must be an error, not silently no override
        task_options = c.get("task_options")
        task_options = dict(r.typed({} if task_options is None else task_options, f"{where}.task_options", dict,
                                    "a mapping of task options (merged over task.options for this row)"))
        if "task_options" in c and task is None:
            raise r.fail(f"{where}.task_options", "the config has no task: task_options override task.options")
        settings = c.get("settings")
        if settings is not None and not isinstance(settings, list):
            settings = [settings]
        codecs.append(
            CodecConfig(
                name=name,
                label=r.typed(c.get("label", name), f"{where}.label", str, "a row name"),
                settings=tuple(settings) if settings is not None else (),
                options=dict(r.typed(c.get("options") or {}, f"{where}.options", dict, "a mapping of codec options")),
                task_options=task_options,
            )
        )
    labels = [c.label for c in codecs]
    for i, label in enumerate(labels):
        if label == "none":
            raise r.fail(f"codecs[{i}].label", "'none' is reserved for the uncompressed reference row")
        if labels.index(label) != i:
            raise r.fail(f"codecs[{i}]", f"duplicate row name {label!r}: give one of them a distinct 'label'")

    rn = r.mapping(top.get("runner") or {}, "runner", {"workers": False, "batch_size": False, "device": False})
    workers = rn.get("workers")
    if workers is not None and (r.typed(workers, "runner.workers", int, "a positive integer") < 1):
        raise r.fail("runner.workers", f"expected a positive integer, got {workers!r}")
    batch = r.typed(rn.get("batch_size", 256), "runner.batch_size", int, "a positive integer")
    if batch < 1:
        raise r.fail("runner.batch_size", f"expected a positive integer, got {batch!r}")
    device = rn.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise r.fail("runner.device", f"expected one of 'auto', 'cpu', 'cuda', got {device!r}")

    lb = r.mapping(
        top.get("leaderboard") or {}, "leaderboard",
        {"anchor": False, "extra_anchors": False, "quality_metric": False, "notes": False},
    )
    leaderboard = LeaderboardConfig(
        anchor=r.typed(lb.get("anchor", "jpeg"), "leaderboard.anchor", str, "a codec row name"),
        extra_anchors=r.name_list(lb.get("extra_anchors", []), "leaderboard.extra_anchors"),
        quality_metric=r.typed(lb["quality_metric"], "leaderboard.quality_metric", str, "a result column")
        if lb.get("quality_metric") is not None else None,
        notes=r.name_list(lb.get("notes", []), "leaderboard.notes"),
    )

    seed = r.typed(top.get("seed", 0), "seed", int, "an integer seed")
    config = BenchmarkConfig(
        benchmark=benchmark,
        title=r.typed(top.get("title", benchmark), "title", str, "a title"),
        dataset=dataset,
        task=task,
        metrics=r.name_list(top.get("metrics", []), "metrics"),
        codecs=tuple(codecs),
        reference=bool(r.typed(top.get("reference", True), "reference", bool, "true or false")),
        seed=seed,
        runner=RunnerConfig(workers=workers, batch_size=batch, device=device),
        leaderboard=leaderboard,
        source=source,
        raw=raw,
    )
    if registry is not None:
        validate_plugins(config, registry, r)
    return config


def validate_plugins(config: BenchmarkConfig, registry: Any, r: _Reader | None = None) -> None:
    """Check every plugin name, option and rate point against what is registered."""
    r = r or _Reader(config.source)

    def lookup(kind: str, name: str, path: str):
        try:
            return registry.get(kind, name)
        except (UnknownPluginError, DuplicatePluginError) as exc:
            raise r.fail(path, str(exc)) from None

    ds = lookup("dataset", config.dataset.name, "dataset.name").target
    if config.dataset.split not in ds.splits:
        raise r.fail("dataset.split", f"dataset {ds.name!r} has splits {list(ds.splits)}, got {config.dataset.split!r}")
    if ds.needs_root and config.dataset.root is None:
        raise r.fail("dataset.root", f"dataset {ds.name!r} needs a root folder (relative roots resolve against ${DATA_ENV})")
    if config.task is not None:
        lookup("task", config.task.name, "task.name")
    for i, name in enumerate(config.metrics):
        lookup("metric", name, f"metrics[{i}]")
    for i, c in enumerate(config.codecs):
        cls = lookup("codec", c.name, f"codecs[{i}].name").target
        try:
            codec = cls(**c.options)
        except TaskcodecError as exc:
            raise r.fail(f"codecs[{i}].options", str(exc)) from None
        except TypeError as exc:
            raise r.fail(f"codecs[{i}].options", f"codec {c.name!r} rejected its options: {exc}") from None
        for j, s in enumerate(c.settings):
            try:
                codec.validate_setting(s)
            except TaskcodecError as exc:
                raise r.fail(f"codecs[{i}].settings[{j}]", str(exc)) from None
