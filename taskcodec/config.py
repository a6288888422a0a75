"""Benchmark configs: YAML mapped to frozen dataclasses, with errors that name file and key.

A config names the dataset (and its root), the task, the metrics and the codecs with
their rate points; see README.md ("Config format") for every key. Relative dataset
roots resolve against the environment variable ``TASKCODEC_DATA`` when it is set, else
against the current directory.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, DuplicatePluginError, TaskcodecError, UnknownPluginError
from .hashing import stable_json
from .options import option_names

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
    row: str  # the row's name in the leaderboard (defaults to the codec name)
    rate_points: tuple[Any, ...]
    options: dict[str, Any]
    # overrides of task.options for this row: its outputs come from that task model
    task_options: dict[str, Any] = field(default_factory=dict)


EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class RunnerConfig:
    workers: int | None = None  # None: all cores
    batch_size: int = 256
    device: str = "auto"  # auto | cpu | cuda
    executor: str = "local"  # local (worker processes here) | dask (taskcodec/dask_executor.py)
    scheduler: str | None = None  # a Dask scheduler's address; None with dask: a LocalCluster here


@dataclass(frozen=True)
class LeaderboardConfig:
    anchor: str = "jpeg"
    extra_anchors: tuple[str, ...] = ()
    quality_metric: str | None = None  # None: the task's first metric column, else psnr
    notes: tuple[str, ...] = ()  # those of notes_file, then those of notes
    notes_file: str | None = None  # a file name in the config's folder


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
        """Identity of what this benchmark computes (not of how: runner settings excluded).

        Hashed under the key names configs had before ``rate_points`` and ``row`` (``settings``,
        ``label``), so that the runs a store recorded before the rename keep their keys.
        """
        raw = {k: v for k, v in self.raw.items() if k not in ("runner", "leaderboard", "title")}
        if isinstance(raw.get("codecs"), list):
            raw["codecs"] = [_hashed_codec_entry(c) for c in raw["codecs"]]
        return hashlib.sha256(stable_json(raw).encode()).hexdigest()[:16]


# keys of a codec entry renamed in schema 3 of configs; the old name gives an error naming the new one
RENAMED_CODEC_KEYS = {"settings": "rate_points", "label": "row"}


def _hashed_codec_entry(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    old_name = {new: old for old, new in RENAMED_CODEC_KEYS.items()}
    return {old_name.get(k, k): v for k, v in entry.items()}


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

    def options(self, value: Any, path: str, what: str) -> dict[str, Any]:
        """An options mapping; null or absent is no options (not `or {}`: `[]` or `""` must fail)."""
        return dict(self.typed({} if value is None else value, path, dict, what))

    def optional_mapping(self, value: Any, path: str, allowed: dict[str, bool]) -> dict[str, Any]:
        """A section that may be omitted or null (runner:, leaderboard:), else a mapping."""
        return self.mapping({} if value is None else value, path, allowed)

    def unique(self, names: tuple[str, ...], path: str, what: str) -> tuple[str, ...]:
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise self.fail(f"{path}[{i}]", f"{what} {name!r} is listed twice")
        return names

    def text(self, value: Any, path: str, what: str) -> str:
        """A one-line name shown in tables and headings: non-empty, no control characters
        (a newline or tab would break the leaderboard's tables), no edge whitespace."""
        self.typed(value, path, str, what)
        bad = [c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")]  # control chars, line breaks
        if not value.strip() or value != value.strip() or bad:
            raise self.fail(path, f"expected {what} on one line, without control characters or leading/trailing "
                                  f"spaces, got {value!r}")
        return value

    def seed(self, value: Any, path: str) -> int:
        seed = self.typed(value, path, int, "an integer seed >= 0")
        if seed < 0:  # numpy's generators refuse negative seeds
            raise self.fail(path, f"expected an integer seed >= 0, got {seed}")
        return seed


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
    root = d.get("root")
    if root is not None and (not isinstance(root, str) or not root.strip()):
        # an empty root would silently mean the current directory
        raise r.fail("dataset.root", f"expected a folder path (or null for none), got {root!r}")
    return DatasetConfig(
        name=r.typed(d["name"], "dataset.name", str, "a dataset plugin name"),
        root=resolve_root(root),
        split=r.typed(d.get("split", default_split), "dataset.split", str, "a split name"),
        options=r.options(d.get("options"), "dataset.options", "a mapping of dataset options"),
    )


def parse_task(r: _Reader, value: Any) -> TaskConfig:
    """The ``task:`` mapping of a benchmark or training config."""
    t = r.mapping(value, "task", {"name": True, "options": False})
    return TaskConfig(
        name=r.typed(t["name"], "task.name", str, "a task plugin name"),
        options=r.options(t.get("options"), "task.options", "a mapping of task options"),
    )


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping gives one key twice (PyYAML would keep the last value silently)."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"duplicate key {key!r} (first given at line {first_line}); each key may appear once "
                         f"per mapping")
        self.line = line


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate mapping keys, naming the line of the second one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self._check_unique_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _check_unique_keys(self, node: yaml.MappingNode) -> None:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; keys given explicitly may override merged ones
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_lines:
                    raise DuplicateKeyError(key, line, first_lines[key])
                first_lines[key] = line
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """A YAML file's content; a missing file, bad YAML or a key given twice is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        return yaml.load(path.read_text(), Loader=UniqueKeyLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc}") from None
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
    benchmark = r.text(top["benchmark"], "benchmark", "a benchmark name (used as the leaderboard folder name)")
    if "/" in benchmark or "\\" in benchmark or benchmark.startswith("."):
        raise r.fail("benchmark", f"expected a plain folder name, got {benchmark!r}")

    dataset = parse_dataset(r, top["dataset"], default_split="test")
    task = parse_task(r, top["task"]) if top.get("task") is not None else None
    codecs = parse_codecs(r, top["codecs"], task)
    rows = [c.row for c in codecs]

    rn = r.optional_mapping(top.get("runner"), "runner", {"workers": False, "batch_size": False, "device": False,
                                                           "executor": False, "scheduler": False})
    workers = rn.get("workers")
    if workers is not None and (r.typed(workers, "runner.workers", int, "a positive integer") < 1):
        raise r.fail("runner.workers", f"expected a positive integer, got {workers!r}")
    batch = r.typed(rn.get("batch_size", 256), "runner.batch_size", int, "a positive integer")
    if batch < 1:
        raise r.fail("runner.batch_size", f"expected a positive integer, got {batch!r}")
    device = rn.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise r.fail("runner.device", f"expected one of 'auto', 'cpu', 'cuda', got {device!r}")
    executor = rn.get("executor", "local")
    if executor not in EXECUTORS:
        raise r.fail("runner.executor", f"expected one of {', '.join(map(repr, EXECUTORS))}, got {executor!r}")
    scheduler = rn.get("scheduler")
    if scheduler is not None:
        r.text(scheduler, "runner.scheduler", "a Dask scheduler address such as tcp://host:8786")
        if executor != "dask":
            raise r.fail("runner.scheduler", "a scheduler address needs runner.executor: dask")

    config = BenchmarkConfig(
        benchmark=benchmark,
        title=r.text(top.get("title", benchmark), "title", "a title"),
        dataset=dataset,
        task=task,
        metrics=r.unique(r.name_list(top.get("metrics", []), "metrics"), "metrics", "metric"),
        codecs=codecs,
        reference=r.typed(top.get("reference", True), "reference", bool, "true or false"),
        seed=r.seed(top.get("seed", 0), "seed"),
        runner=RunnerConfig(workers=workers, batch_size=batch, device=device, executor=executor, scheduler=scheduler),
        leaderboard=parse_leaderboard(r, top.get("leaderboard"), rows),
        source=source,
        raw=raw,
    )
    if registry is not None:
        validate_plugins(config, registry, r)
    return config


def parse_codecs(r: _Reader, value: Any, task: TaskConfig | None) -> tuple[CodecConfig, ...]:
    """The ``codecs:`` list: one row each, with distinct row names."""
    codecs_raw = r.typed(value, "codecs", list, "a list of codecs")
    if not codecs_raw:
        raise r.fail("codecs", "expected at least one codec")
    codecs = tuple(parse_codec(r, c, f"codecs[{i}]", task) for i, c in enumerate(codecs_raw))
    rows = [c.row for c in codecs]
    for i, row in enumerate(rows):
        if row == "none":
            raise r.fail(f"codecs[{i}].row", "'none' is reserved for the uncompressed reference row")
        if rows.index(row) != i:
            raise r.fail(f"codecs[{i}]", f"duplicate row name {row!r}: give one of them a distinct 'row'")
    return codecs


def parse_codec(r: _Reader, value: Any, where: str, task: TaskConfig | None) -> CodecConfig:
    c = {"name": value} if isinstance(value, str) else value
    for old, new in RENAMED_CODEC_KEYS.items():
        if isinstance(c, dict) and old in c:
            raise r.fail(f"{where}.{old}", f"key {old!r} is now called {new!r}")
    c = r.mapping(c, where, {"name": True, "row": False, "rate_points": False, "options": False, "task_options": False})
    name = r.typed(c["name"], f"{where}.name", str, "a codec plugin name")
    task_options = r.options(c.get("task_options"), f"{where}.task_options",
                             "a mapping of task options (merged over task.options for this row)")
    if "task_options" in c and task is None:
        raise r.fail(f"{where}.task_options", "the config has no task: task_options override task.options")
    return CodecConfig(
        name=name,
        row=r.text(c.get("row", name), f"{where}.row", "a row name"),
        rate_points=parse_rate_points(r, c.get("rate_points"), f"{where}.rate_points"),
        options=r.options(c.get("options"), f"{where}.options", "a mapping of codec options"),
        task_options=task_options,
    )


def parse_rate_points(r: _Reader, value: Any, path: str) -> tuple[Any, ...]:
    """A row's rate points: null or absent = the codec's defaults (an empty tuple), a single value
    = one point; an empty list and a point given twice (10 and 10.0 count as one) are errors."""
    if value is None:
        return ()
    rate_points = value if isinstance(value, list) else [value]
    if not rate_points:
        raise r.fail(path, "expected at least one rate point; omit 'rate_points' (or set it to null) to use the "
                           "codec's default rate points")
    for j, s in enumerate(rate_points):
        if any(_same_point(s, earlier) for earlier in rate_points[:j]):
            raise r.fail(f"{path}[{j}]", f"rate point {s!r} is listed twice in {rate_points}")
    return tuple(rate_points)


def _same_point(a: Any, b: Any) -> bool:
    # True == 1 in Python: a bool is never the same point as a number (validate_rate_point rejects it anyway)
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not dict and a == b


def parse_leaderboard(r: _Reader, value: Any, row_names: list[str]) -> LeaderboardConfig:
    """``leaderboard:``; the anchors, where given, must be row names of the config's codecs."""
    lb = r.optional_mapping(value, "leaderboard", {"anchor": False, "extra_anchors": False, "quality_metric": False,
                                                   "notes": False, "notes_file": False})
    rows = ", ".join(row_names)
    anchor = r.typed(lb.get("anchor", "jpeg"), "leaderboard.anchor", str, "a codec row name")
    if "anchor" in lb and anchor not in row_names:
        raise r.fail("leaderboard.anchor", f"{anchor!r} is not a row of this config; its codec rows are: {rows}")
    extra = r.unique(r.name_list(lb.get("extra_anchors", []), "leaderboard.extra_anchors"),
                     "leaderboard.extra_anchors", "anchor")
    for i, name in enumerate(extra):
        if name not in row_names:
            raise r.fail(f"leaderboard.extra_anchors[{i}]",
                         f"{name!r} is not a row of this config; its codec rows are: {rows}")
        if name == anchor:
            raise r.fail(f"leaderboard.extra_anchors[{i}]", f"{name!r} is already leaderboard.anchor")
    notes_file, notes_from_file = None, ()
    if lb.get("notes_file") is not None:
        notes_file = r.text(lb["notes_file"], "leaderboard.notes_file", "a file name")
        if (Path(notes_file).name != notes_file or notes_file.startswith(".") or not notes_file.endswith(".md")
                or notes_file == "README.md"):
            raise r.fail("leaderboard.notes_file", f"expected the name of a Markdown file (not README.md) in the "
                                                   f"config's folder, where the published board keeps it beside its "
                                                   f"config.yaml; got {notes_file!r}")
        path = Path(r.source).parent / notes_file
        try:
            notes_from_file = read_notes_file(path)
        except OSError as exc:
            raise r.fail("leaderboard.notes_file", f"cannot read {path}: {exc.strerror or exc}") from None
    return LeaderboardConfig(
        anchor=anchor,
        extra_anchors=extra,
        quality_metric=r.typed(lb["quality_metric"], "leaderboard.quality_metric", str, "a result column")
        if lb.get("quality_metric") is not None else None,
        notes=(*notes_from_file, *r.name_list(lb.get("notes", []), "leaderboard.notes")),
        notes_file=notes_file,
    )

def read_notes_file(path: Path) -> tuple[str, ...]:
    """A board's notes file: Markdown, one note per list item (a line starting with ``- ``); the
    item's following lines, indented, continue it (joined with one space); blank lines are ignored.
    Any other line is a ConfigError naming the file and line."""
    notes: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("- "):
            notes.append(line[2:].strip())
        elif line.startswith((" ", "\t")) and notes:
            notes[-1] += " " + line.strip()
        else:
            raise ConfigError(f"{path}:{number}: expected a note (a line starting with '- ') or its indented "
                              f"continuation, got {line[:60]!r}")
    return tuple(notes)


def validate_plugins(config: BenchmarkConfig, registry: Any, r: _Reader | None = None) -> None:
    """Check every plugin name, option name and rate point against what is registered."""
    r = r or _Reader(config.source)

    def lookup(kind: str, name: str, path: str):
        try:
            return registry.get(kind, name)
        except (UnknownPluginError, DuplicatePluginError) as exc:
            raise r.fail(path, str(exc)) from None

    ds_entry = lookup("dataset", config.dataset.name, "dataset.name")
    ds = ds_entry.target
    if config.dataset.split not in ds.splits:
        raise r.fail("dataset.split", f"dataset {ds.name!r} has splits {list(ds.splits)}, got {config.dataset.split!r}")
    if ds.needs_root and config.dataset.root is None:
        raise r.fail("dataset.root", f"dataset {ds.name!r} needs a root folder (relative roots resolve against ${DATA_ENV})")
    check_option_names(r, ds_entry, config.dataset.options, "dataset.options")
    if config.task is not None:
        task_entry = lookup("task", config.task.name, "task.name")
        check_option_names(r, task_entry, config.task.options, "task.options")
        for i, c in enumerate(config.codecs):
            check_option_names(r, task_entry, c.task_options, f"codecs[{i}].task_options")
    for i, name in enumerate(config.metrics):
        lookup("metric", name, f"metrics[{i}]")
    for i, c in enumerate(config.codecs):
        entry = lookup("codec", c.name, f"codecs[{i}].name")
        check_option_names(r, entry, c.options, f"codecs[{i}].options")
        codec = build_codec(r, entry.target, c, f"codecs[{i}]")
        canonical: list[Any] = []
        for j, s in enumerate(c.rate_points):
            try:
                canonical.append(codec.validate_rate_point(s))
            except TaskcodecError as exc:
                raise r.fail(f"codecs[{i}].rate_points[{j}]", str(exc)) from None
            if canonical.index(canonical[-1]) != j:
                raise r.fail(f"codecs[{i}].rate_points[{j}]", f"rate point {s!r} is the same as "
                                                           f"{c.rate_points[canonical.index(canonical[-1])]!r} for codec "
                                                           f"{c.name!r}; list each rate point once")


def build_codec(r: _Reader, cls: type, c: CodecConfig, where: str) -> Any:
    """The row's codec instance (cheap for every built-in codec); its option errors name the row."""
    try:
        return cls(**c.options)
    except TaskcodecError as exc:
        raise r.fail(f"{where}.options", str(exc)) from None
    except TypeError as exc:
        raise r.fail(f"{where}.options", f"codec {c.name!r} rejected its options: {exc}") from None


def check_option_names(r: _Reader, entry: Any, options: dict[str, Any], path: str) -> None:
    """Every key of ``options`` must be an option the plugin class accepts (see options.option_names)."""
    accepted = option_names(entry.target, entry.kind)
    if accepted is None:
        return  # the plugin does not declare its options: only its constructor can judge them
    for key in options:
        if key in accepted:
            continue
        close = difflib.get_close_matches(str(key), accepted, n=2, cutoff=0.6)
        hint = f". Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        if entry.kind == "dataset" and key in ("root", "split"):
            hint = f". Set dataset.{key} instead."
        raise r.fail(path, f"unknown option {key!r} for {entry.kind} {entry.name!r} (plugin {entry.plugin!r}); "
                           f"accepted options: {', '.join(accepted) or '(none)'}{hint}")
