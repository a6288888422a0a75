"""The ``train-codec`` driver: which models to train, skipping finished ones, and what to write.

For a codec family (:class:`CodecFamily`: where a rate point's checkpoint goes, how to build and
save a model), :func:`train_rate_points` trains every rate point (one at a time; all together in
joint mode) with :class:`taskcodec_plugins.codecs.trained.training.Trainer`, skips models whose checkpoint
already carries the training key (a hash of everything the result depends on), scores them on the
validation split and writes the checkpoints, the joint task model and ``training.json``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import taskcodec
from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins.codecs.trained.training import CodecModel, Trainer, evaluate, load_data


def training_key(parts: dict[str, Any]) -> str:
    """sha256 of what a training's result depends on (options, data, initial weights, seed...)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_json(path: Path, value: Any) -> None:
    taskcodec.write_atomic(path, json.dumps(value, indent=1, sort_keys=True, default=str) + "\n")


def state_path_done(state_dir: Path, key: str) -> None:
    """Remove a finished training's resumable state (its models are written)."""
    (Path(state_dir) / f"{key[:24]}.state.pt").unlink(missing_ok=True)


@dataclass
class CodecFamily:
    """What :func:`train_rate_points` needs to know about one codec's models."""

    codec: str
    file_for: Callable[[float], Path]  # where a rate point's checkpoint goes
    build: Callable[[float], CodecModel]  # the model to train (fresh or from an init checkpoint)
    save: Callable[[CodecModel, dict[str, Any]], None]  # write a trained model with its metadata
    load_metadata: Callable[[Path], dict[str, Any]]  # a written checkpoint's metadata (raises if unreadable)
    describe: dict[str, Any]  # architecture facts for the summary
    # one model for every rate point (a variable-rate codec): all points train together, in every mode, and
    # ``save_all(models, metadata)`` writes them (build returns views of one model)
    save_all: Callable[[list[CodecModel], list[dict[str, Any]]], None] | None = None

    @property
    def one_model(self) -> bool:
        return self.save_all is not None


def hardware(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"device": device, "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
                             "cpu": taskcodec.processor_name(), "cpus": taskcodec.usable_cpus()}
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def train_rate_points(request: CodecTrainingRequest, o: dict[str, Any], points: Sequence[float],
                      family: CodecFamily, identity: dict[str, Any]) -> dict[str, Any]:
    """Train every rate point (one at a time; all together in joint mode), skip finished ones,
    score them on the validation split, write checkpoints, the joint task model and training.json.

    ``identity``: what the models depend on besides data, seed and task (options, init digests):
    part of each training's key, so changing any of it retrains."""
    mode = request.mode
    if request.task is None and (mode != "rd" or o["beta"] > 0 or o["gamma"] > 0):
        raise CodecError(f"codec {family.codec!r}: mode {mode!r} with beta/gamma needs a task in the config")
    if mode == "joint" and o["gamma"] <= 0 and o["beta"] <= 0 and o["clean_weight"] <= 0:
        raise CodecError(f"codec {family.codec!r}: joint mode without a task term (beta, gamma or clean_weight > 0) "
                         "would not train the task model")
    run = _Run.start(request, o, family, identity)
    summary: dict[str, Any] = {"out": str(run.out), "mode": mode, "trained": [], "skipped": []}
    records: dict[str, Any] = {}
    groups = _groups(request, points, family.one_model)
    for group in groups:
        _train_group(run, group, summary, records)
    records.update(_other_points_records(family, run.out / "training.json", [p for g in groups for p in g]))
    keep = ("rate_point", "mode", "loss_weights", "training", "training_data", "init", "task", "validation", "config",
            *family.describe)
    write_json(run.out / "training.json", {"codec": family.codec, "mode": mode, "config": request.config_source,
                                           "rate_points": {k: {f: v[f] for f in keep if f in v}
                                                           for k, v in sorted(records.items())}})
    return summary


@dataclass
class _Run:
    """What every group of rate points of one ``train-codec`` run shares."""

    request: CodecTrainingRequest
    o: dict[str, Any]
    family: CodecFamily
    data: Any  # the training data (TrainingData)
    val: Any  # the validation data, or None
    adapter: Any  # the task's differentiable view, or None
    out: Path
    task_out: Path  # joint mode: where the task model goes
    weights: dict[str, Any]  # the loss weights
    common: dict[str, Any]  # the training key's parts shared by all groups

    @classmethod
    def start(cls, request: CodecTrainingRequest, o: dict[str, Any], family: CodecFamily,
              identity: dict[str, Any]) -> "_Run":
        data = load_data(request.dataset)
        # with a task, rd trainings load it too: the validation reports its score on their reconstructions
        adapter = request.task.differentiable(request.context) if request.task is not None else None
        val = load_data(request.val_dataset, limit=o["val_images"]) if request.val_dataset is not None else None
        out = Path(request.out)
        # beside the codec folder, not in it: a codec reads every checkpoint in its folder as one of its models
        task_out = Path(o["task_out"]) if o["task_out"] else out.parent / f"{out.name}-task-model.pt"
        weights = {k: o[k] for k in ("alpha", "beta", "gamma", "adaptive", "clean_weight")}
        common = {**identity, "codec": family.codec, "mode": request.mode, "data": data.fingerprint,
                  "seed": request.context.seed, "task": request.task.name if request.task else None,
                  "task_options": request.task.options() if request.task else None}
        if o["adaptive"] and o["alpha"] != 1.0:
            # the objective changed with the adaptive reference (see the module doc) unless alpha is 1: retrain those
            common["adaptive_reference"] = "unweighted-mse"
        return cls(request, o, family, data, val, adapter, out, task_out, weights, common)


def _groups(request: CodecTrainingRequest, points: Sequence[float], one_model: bool) -> list[tuple[float, ...]]:
    """The trainings: one per rate point, or all together in joint mode or for a variable-rate model; only
    those asked for (``train_only``)."""
    groups = [tuple(points)] if request.mode == "joint" or one_model else [(p,) for p in points]
    if request.train_only is not None:  # keys stay those of the whole config (init digests of all points)
        wanted = [float(p) for p in request.train_only]
        groups = [g for g in groups if all(any(math.isclose(p, q, rel_tol=1e-9) for q in wanted) for p in g)]
    return groups


def _train_group(run: _Run, group: tuple[float, ...], summary: dict[str, Any], records: dict[str, Any]) -> None:
    """Train one group of rate points (or skip it when its checkpoints carry its key), write its models and
    record them in ``summary`` and ``records``."""
    request, o, family, mode, log = run.request, run.o, run.family, run.request.mode, run.request.context.log
    key = training_key({**run.common, "points": list(group)})
    files = {p: family.file_for(p) for p in group}
    done = {p: _metadata_if_trained(family, f, key) for p, f in files.items()}
    if all(done.values()) and (mode != "joint" or run.task_out.is_file()):
        log(f"train-codec: {', '.join(str(f) for f in files.values())}: already trained with these settings")
        summary["skipped"] += [str(f) for f in files.values()]
        records.update({f"{p:g}": done[p] for p in group})
        return
    models = [family.build(p) for p in group]
    log(f"train-codec: {family.codec} {mode} {family.describe} rate points {', '.join(f'{p:g}' for p in group)}: "
        f"{o['steps']} steps x {o['batch_size']} on {len(run.data.ids)} images")
    facts = Trainer(request, o, models, run.data, key, run.adapter).run()
    metrics = evaluate(models, run.val, run.adapter, request.context.device) if run.val is not None else {}
    metas = [_checkpoint_metadata(run, key, group, facts, metrics.get(m.point)) for m in models]
    if family.save_all is not None:
        family.save_all(models, metas)
    else:
        for m, meta in zip(models, metas):
            family.save(m, meta)
    for m, meta in zip(models, metas):
        records[f"{m.point:g}"] = {**meta, **family.describe, "rate_point": m.point, "mode": mode}
        log(f"train-codec: wrote {files[m.point]}" + (f"  validation {metrics[m.point]}" if m.point in metrics else ""))
    if mode == "joint":
        run.adapter.save(run.task_out, {"training_key": key, "rate_points": list(group), "loss_weights": run.weights,
                                        "steps": facts["steps"], "seconds": facts["seconds"],
                                        "seed": request.context.seed, "codec": family.codec,
                                        "config": request.config_source})
        log(f"train-codec: wrote the jointly trained task model {run.task_out}")
        summary["task_model"] = str(run.task_out)
    summary["trained"] += [str(f) for f in files.values()]
    state_path_done(request.state_dir, key)


def _checkpoint_metadata(run: _Run, key: str, group: tuple[float, ...], facts: dict[str, Any],
                         validation: Any) -> dict[str, Any]:
    """What a trained model's checkpoint records besides its weights (plain types: read with weights_only)."""
    request, o = run.request, run.o
    meta = {
        "training_key": key, "loss_weights": run.weights, "training": {
            **{k: facts[k] for k in ("steps", "batch_size", "seconds", "images_per_s")},
            "joint_rate_points": list(group) if request.mode == "joint" else None,
            "hardware": hardware(request.context.device),
            "lr": o["lr"], "task_lr": o["task_lr"] if request.mode == "joint" else None},
        "training_data": {"dataset": type(request.dataset).__name__,
                          "split": getattr(request.dataset, "split", None), "images": len(run.data.ids),
                          "fingerprint": run.data.fingerprint},
        "task": run.common["task"], "task_options": run.common["task_options"],
        "validation": validation, "history": facts["history"][-5:], "config": request.config_source,
    }
    return json.loads(json.dumps(meta, default=str))


def _other_points_records(family: CodecFamily, summary: Path, points: Sequence[float]) -> dict[str, Any]:
    """The records of the folder's other rate points (a run of a subset of them): read from their
    checkpoints, so an entry stays only while its model is there."""
    try:
        listed = json.loads(summary.read_text())["rate_points"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found = {}
    for name in listed:
        try:
            point = float(name)
        except ValueError:
            continue
        if any(math.isclose(point, p, rel_tol=1e-9) for p in points) or not family.file_for(point).is_file():
            continue
        try:
            found[f"{point:g}"] = family.load_metadata(family.file_for(point))
        except Exception:  # unreadable: leave it out, as a full run would retrain it
            continue
    return found


def _metadata_if_trained(family: CodecFamily, file: Path, key: str) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        meta = family.load_metadata(file)
    except Exception:  # unreadable or foreign: train again, the new file replaces it
        return None
    return meta if meta.get("training_key") == key else None
