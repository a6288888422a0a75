"""The ``taskcodec train-codec CONFIG`` config: YAML read into a
:class:`CodecTrainingRequest` for the codec plugin's :meth:`Codec.train`.

A training config names the codec, the mode, the rate points, where the models go, the
training data (a dataset plugin and split, optionally a validation split), the task whose
model the task-aware losses use, and the codec's own training options::

    train_codec:
      codec: learned
      mode: task                      # rd | task | joint
      rate_points: [0.0035, 0.0067, 0.013, 0.025]
      out: leaderboard/models/ferplus/learned-task
      options: {arch: bmshj2018-factorized, N: 64, M: 64, steps: 2000, init: ...}
    dataset: {name: ferplus, root: ferplus, split: train, options: {mode: majority}}
    val_split: val                    # optional
    task: {name: expression-cnn, options: {checkpoint: leaderboard/models/ferplus/expression-cnn-ferplus.pt}}
    seed: 0
    runner: {device: auto}

Relative dataset roots resolve against ``$TASKCODEC_DATA`` as in benchmark configs;
relative ``out`` and option paths against the current directory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from .codec_training import CodecTrainingRequest
from .config import DatasetConfig, TaskConfig, _Reader, check_option_names, parse_dataset, parse_task, read_yaml
from .dataset_builder import build_dataset
from .errors import ConfigError, TaskcodecError, UnknownPluginError
from .task import TaskContext

MODES = ("rd", "task", "joint")


@dataclass(frozen=True)
class CodecTrainingConfig:
    codec: str
    mode: str
    rate_points: tuple[Any, ...]
    out: Path
    options: dict[str, Any]
    dataset: DatasetConfig
    val_split: str | None
    task: TaskConfig | None
    seed: int
    device: str
    source: str


def load_training_config(path: str | Path) -> CodecTrainingConfig:
    return parse_training_config(read_yaml(path, "training config"), str(path))


def parse_training_config(raw: Any, source: str) -> CodecTrainingConfig:
    r = _Reader(source)
    top = r.mapping(raw, "(top level)", {"train_codec": True, "dataset": True, "val_split": False, "task": False,
                                         "seed": False, "runner": False, "title": False})
    t = r.mapping(top["train_codec"], "train_codec",
                  {"codec": True, "mode": True, "rate_points": True, "out": True, "options": False})
    mode = r.typed(t["mode"], "train_codec.mode", str, f"one of {list(MODES)}")
    if mode not in MODES:
        raise r.fail("train_codec.mode", f"expected one of {list(MODES)}, got {mode!r}")
    points = t["rate_points"] if isinstance(t["rate_points"], list) else [t["rate_points"]]
    if not points:
        raise r.fail("train_codec.rate_points", "expected at least one rate point")
    for i, p in enumerate(points):
        r.typed(p, f"train_codec.rate_points[{i}]", (int, float), "a number")
    if len(set(points)) != len(points):
        raise r.fail("train_codec.rate_points", f"duplicate rate points in {points}")
    dataset = parse_dataset(r, top["dataset"], default_split="train")
    task = parse_task(r, top["task"]) if top.get("task") is not None else None
    if mode != "rd" and task is None:
        raise r.fail("task", f"mode {mode!r} trains against a task model: the config needs a task")
    runner = r.optional_mapping(top.get("runner"), "runner", {"device": False})
    device = runner.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise r.fail("runner.device", f"expected one of 'auto', 'cpu', 'cuda', got {device!r}")
    val = top.get("val_split")
    return CodecTrainingConfig(
        codec=r.typed(t["codec"], "train_codec.codec", str, "a codec plugin name"),
        mode=mode,
        rate_points=tuple(points),
        out=Path(r.typed(t["out"], "train_codec.out", str, "a folder path")),
        options=r.options(t.get("options"), "train_codec.options", "a mapping of training options"),
        dataset=dataset,
        val_split=r.typed(val, "val_split", str, "a split name") if val is not None else None,
        task=task,
        seed=r.seed(top.get("seed", 0), "seed"),
        device=device,
        source=source,
    )


def build_request(cfg: CodecTrainingConfig, plugins: Any, store_root: Path, *, progress: bool = True,
                  log: Any = print) -> tuple[type, CodecTrainingRequest]:
    """(codec class, request): plugins looked up, datasets built, nothing trained yet."""
    from .machine import resolve_device

    r = _Reader(cfg.source)

    def lookup(kind: str, name: str, where: str):
        try:
            return plugins.registry.get(kind, name)
        except UnknownPluginError as exc:
            raise r.fail(where, str(exc)) from None

    codec_cls = lookup("codec", cfg.codec, "train_codec.codec").target
    dataset_entry = lookup("dataset", cfg.dataset.name, "dataset.name")
    check_option_names(r, dataset_entry, cfg.dataset.options, "dataset.options")
    dataset_cls = dataset_entry.target
    for where, split in (("dataset.split", cfg.dataset.split), ("val_split", cfg.val_split)):
        if split is not None and split not in dataset_cls.splits:
            raise r.fail(where, f"dataset {dataset_cls.name!r} has splits {list(dataset_cls.splits)}, got {split!r}")

    def load_split(split: str):
        return build_dataset(plugins.registry, cfg.dataset, split, cache_root=store_root / "datasets", source=cfg.source)

    task = None
    if cfg.task is not None:
        task_entry = lookup("task", cfg.task.name, "task.name")
        check_option_names(r, task_entry, cfg.task.options, "task.options")
        task = task_entry.target(**cfg.task.options)
    context = TaskContext(load_split=load_split, cache_dir=store_root / "models", device=resolve_device(cfg.device),
                          seed=cfg.seed, progress=progress, log=log)
    request = CodecTrainingRequest(
        dataset=load_split(cfg.dataset.split),
        val_dataset=load_split(cfg.val_split) if cfg.val_split else None,
        task=task, mode=cfg.mode, rate_points=cfg.rate_points, options=cfg.options, out=cfg.out,
        state_dir=store_root / "models" / "codec-training", context=context, config_source=cfg.source,
    )
    return codec_cls, request


def train_codec(config_path: str | Path, plugins: Any, store_root: Path, *, progress: bool = True,
                log: Any = print, only: Sequence[float] | None = None,
                state_dir: Path | None = None) -> dict[str, Any]:
    """Train the config's models; ``only``: a subset of its rate points (the same models, keys and
    files as a full run, so several processes can share one config); ``state_dir``: where the resumable
    training state goes instead of the store (e.g. a folder committed so that another machine continues)."""
    cfg = load_training_config(config_path)
    codec_cls, request = build_request(cfg, plugins, store_root, progress=progress, log=log)
    if only is not None:
        request = replace(request, train_only=_subset(cfg, only))
    if state_dir is not None:
        request = replace(request, state_dir=Path(state_dir))
    facts = codec_cls.train(request)
    if not isinstance(facts, dict):
        raise TaskcodecError(f"codec {cfg.codec!r}: train() returned {type(facts).__name__}, expected a dict")
    return facts


def _subset(cfg: CodecTrainingConfig, only: Sequence[float]) -> tuple[Any, ...]:
    """The config's rate points named by ``only`` (the config's own values)."""
    if cfg.mode == "joint":
        raise ConfigError(f"{cfg.source}: joint mode trains all rate points together; --rate-points does not apply")
    chosen = [p for p in cfg.rate_points if any(math.isclose(p, q, rel_tol=1e-9) for q in only)]
    unknown = [q for q in only if not any(math.isclose(p, q, rel_tol=1e-9) for p in cfg.rate_points)]
    if unknown or not chosen:
        raise ConfigError(f"{cfg.source}: rate points {unknown or list(only)} are not in train_codec.rate_points "
                          f"{list(cfg.rate_points)}")
    return tuple(chosen)
