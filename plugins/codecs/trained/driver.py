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
import os
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


def hardware(device: str) -> dict[str, Any]:
    import platform

    import torch

    facts: dict[str, Any] = {"device": device, "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
                             "cpu": _cpu_name() or platform.processor() or platform.machine(),
                             "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def train_rate_points(request: CodecTrainingRequest, o: dict[str, Any], points: Sequence[float],
                      family: CodecFamily, identity: dict[str, Any]) -> dict[str, Any]:
    """Train every rate point (one at a time; all together in joint mode), skip finished ones,
    score them on the validation split, write checkpoints, the joint task model and training.json.

    ``identity``: what the models depend on besides data, seed and task (options, init digests):
    part of each training's key, so changing any of it retrains."""
    log, device, seed = request.context.log, request.context.device, request.context.seed
    mode = request.mode
    if request.task is None and (mode != "rd" or o["beta"] > 0 or o["gamma"] > 0):
        raise CodecError(f"codec {family.codec!r}: mode {mode!r} with beta/gamma needs a task in the config")
    if mode == "joint" and o["gamma"] <= 0 and o["beta"] <= 0 and o["clean_weight"] <= 0:
        raise CodecError(f"codec {family.codec!r}: joint mode without a task term (beta, gamma or clean_weight > 0) "
                         "would not train the task model")
    data = load_data(request.dataset)
    # with a task, rd trainings load it too: the validation reports its score on their reconstructions
    adapter = request.task.differentiable(request.context) if request.task is not None else None
    val = load_data(request.val_dataset, limit=o["val_images"]) if request.val_dataset is not None else None
    out = Path(request.out)
    # beside the codec folder, not in it: a codec reads every checkpoint in its folder as one of its models
    task_out = Path(o["task_out"]) if o["task_out"] else out.parent / f"{out.name}-task-model.pt"
    weights = {k: o[k] for k in ("alpha", "beta", "gamma", "adaptive", "clean_weight")}
    common = {**identity, "codec": family.codec, "mode": mode, "data": data.fingerprint, "seed": seed,
              "task": request.task.name if request.task else None,
              "task_options": request.task.options() if request.task else None}
    if o["adaptive"] and o["alpha"] != 1.0:
        # the objective changed with the adaptive reference (see the module doc) unless alpha is 1: retrain those
        common["adaptive_reference"] = "unweighted-mse"
    groups = [tuple(points)] if mode == "joint" else [(p,) for p in points]
    if request.train_only is not None:  # keys stay those of the whole config (init digests of all points)
        wanted = [float(p) for p in request.train_only]
        groups = [g for g in groups if all(any(math.isclose(p, q, rel_tol=1e-9) for q in wanted) for p in g)]
    summary: dict[str, Any] = {"out": str(out), "mode": mode, "trained": [], "skipped": []}
    records: dict[str, Any] = {}
    for group in groups:
        key = training_key({**common, "points": list(group)})
        files = {p: family.file_for(p) for p in group}
        done = {p: _metadata_if_trained(family, f, key) for p, f in files.items()}
        if all(done.values()) and (mode != "joint" or task_out.is_file()):
            log(f"train-codec: {', '.join(str(f) for f in files.values())}: already trained with these settings")
            summary["skipped"] += [str(f) for f in files.values()]
            records.update({f"{p:g}": done[p] for p in group})
            continue
        models = [family.build(p) for p in group]
        log(f"train-codec: {family.codec} {mode} {family.describe} rate points {', '.join(f'{p:g}' for p in group)}: "
            f"{o['steps']} steps x {o['batch_size']} on {len(data.ids)} images")
        facts = Trainer(request, o, models, data, key, adapter).run()
        metrics = evaluate(models, val, adapter, device) if val is not None else {}
        for m in models:
            meta = {
                "training_key": key, "loss_weights": weights, "training": {
                    **{k: facts[k] for k in ("steps", "batch_size", "seconds", "images_per_s")},
                    "joint_rate_points": list(group) if mode == "joint" else None, "hardware": hardware(device),
                    "lr": o["lr"], "task_lr": o["task_lr"] if mode == "joint" else None},
                "training_data": {"dataset": type(request.dataset).__name__,
                                  "split": getattr(request.dataset, "split", None), "images": len(data.ids),
                                  "fingerprint": data.fingerprint},
                "task": common["task"], "task_options": common["task_options"],
                "validation": metrics.get(m.point), "history": facts["history"][-5:], "config": request.config_source,
            }
            meta = json.loads(json.dumps(meta, default=str))  # plain types: checkpoints are read with weights_only
            family.save(m, meta)
            records[f"{m.point:g}"] = {**meta, **family.describe, "rate_point": m.point, "mode": mode}
            log(f"train-codec: wrote {files[m.point]}" + (f"  validation {metrics[m.point]}" if m.point in metrics else ""))
        if mode == "joint":
            adapter.save(task_out, {"training_key": key, "rate_points": list(group), "loss_weights": weights,
                                    "steps": facts["steps"], "seconds": facts["seconds"], "seed": seed,
                                    "codec": family.codec, "config": request.config_source})
            log(f"train-codec: wrote the jointly trained task model {task_out}")
            summary["task_model"] = str(task_out)
        summary["trained"] += [str(f) for f in files.values()]
        state_path_done(request.state_dir, key)
    records.update(_other_points_records(family, out / "training.json", [p for g in groups for p in g]))
    keep = ("rate_point", "mode", "loss_weights", "training", "training_data", "init", "task", "validation", "config",
            *family.describe)
    write_json(out / "training.json", {"codec": family.codec, "mode": mode, "config": request.config_source,
                                       "rate_points": {k: {f: v[f] for f in keep if f in v}
                                                       for k, v in sorted(records.items())}})
    return summary


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
