"""``taskcodec train-codec`` for the ``learned`` codec: one CompressAI model per lambda.

Writes ``<out>/lambda-<lambda>.pt`` (the codec's checkpoint format, metadata: mode, loss weights,
training data fingerprint, seed, steps, time, throughput, hardware, validation metrics) and
``<out>/training.json`` (the same facts for every rate point, for leaderboards). Joint mode also
writes the jointly trained task model (``task_out``, default ``<out>/task-model.pt``).

Training options (besides :data:`taskcodec_plugins.codec_training.TRAIN_DEFAULTS`):
``arch``, ``N``, ``M`` (the architecture; taken from ``init`` checkpoints when given) and
``in_channels`` (default: the training images' channels).
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins import codec_training as ct
from taskcodec_plugins import learned_models as lm

EXTRA_OPTIONS = {"arch": "bmshj2018-factorized", "N": 64, "M": 96, "in_channels": None}


def hardware(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"device": device, "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
                             "cpu": platform.processor() or platform.machine(),
                             "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def _init_documents(init: Any, points: tuple[float, ...]) -> dict[float, dict[str, Any]]:
    """The checkpoint each rate point starts from: a file (all points) or a folder (same lambda)."""
    if init is None:
        return {}
    path = Path(init)
    try:
        if path.is_file():
            doc = lm.load_checkpoint(path)
            return {p: doc for p in points}
        if path.is_dir():
            by_lambda = {}
            for file in sorted(path.glob("*" + lm.CHECKPOINT_SUFFIX)):
                doc = lm.load_checkpoint(file)
                by_lambda[doc["lambda"]] = doc
            missing = [p for p in points if not any(abs(p - q) <= 1e-9 * max(1.0, p) for q in by_lambda)]
            if missing:
                raise CodecError(f"codec 'learned': init folder {path} has no checkpoint for lambda {missing} "
                                 f"(it has {sorted(by_lambda)})")
            return {p: next(d for q, d in by_lambda.items() if abs(p - q) <= 1e-9 * max(1.0, p)) for p in points}
    except lm.CheckpointError as exc:
        raise CodecError(f"codec 'learned': init: {exc}") from None
    raise CodecError(f"codec 'learned': init={str(init)!r} is neither a checkpoint file nor a folder")


def _build(o: dict[str, Any], doc: dict[str, Any] | None, seed: int, point: float) -> Any:
    import torch

    if doc is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return lm.build_model(o["arch"], o["N"], o["M"], o["in_channels"])
    model = lm.build_model(doc["arch"], doc["N"], doc["M"], doc["in_channels"])
    state = {k: v for k, v in doc["state_dict"].items() if k.rsplit(".", 1)[-1] not in lm.DERIVED_BUFFERS}
    torch.nn.Module.load_state_dict(model, state, strict=False)
    return model


def train_learned(request: CodecTrainingRequest) -> dict[str, Any]:
    o = ct.training_options(request.options, EXTRA_OPTIONS, "learned")
    points = tuple(sorted(float(p) for p in request.rate_points))
    if any(p <= 0 for p in points):
        raise CodecError(f"codec 'learned': rate points are lambdas > 0, got {list(points)}")
    log, device, seed = request.context.log, request.context.device, request.context.seed
    data = ct.load_data(request.dataset)
    channels = int(data.images.shape[1])
    inits = _init_documents(o["init"], points)
    if inits:
        doc = next(iter(inits.values()))
        for key in ("arch", "N", "M", "in_channels"):
            if key in request.options and request.options[key] != doc[key]:
                raise CodecError(f"codec 'learned': training option {key}={request.options[key]!r} but the init "
                                 f"checkpoint has {doc[key]!r}")
            o[key] = doc[key]
    if o["in_channels"] is None:
        o["in_channels"] = channels
    if o["arch"] not in lm.ARCHITECTURES:
        raise CodecError(f"codec 'learned': arch {o['arch']!r} is not one of {sorted(lm.ARCHITECTURES)}")
    if o["in_channels"] != channels:
        raise CodecError(f"codec 'learned': the model takes {o['in_channels']}-channel images, the training data "
                         f"has {channels} channels")
    if request.task is None and (request.mode != "rd" or o["beta"] > 0 or o["gamma"] > 0):
        raise CodecError(f"codec 'learned': mode {request.mode!r} with beta/gamma needs a task in the config")
    # with a task, rd trainings load it too: the validation reports its score on their reconstructions
    adapter = request.task.differentiable(request.context) if request.task is not None else None
    if request.mode == "joint" and o["gamma"] <= 0 and o["beta"] <= 0 and o["clean_weight"] <= 0:
        raise CodecError("codec 'learned': joint mode without a task term (beta, gamma or clean_weight > 0) "
                         "would not train the task model")
    val = ct.load_data(request.val_dataset, limit=o["val_images"]) if request.val_dataset is not None else None
    out = Path(request.out)
    # beside the codec folder, not in it: the codec reads every *.pt in its folder as one of its models
    task_out = Path(o["task_out"]) if o["task_out"] else out.parent / f"{out.name}-task-model.pt"
    spec = lm.ARCHITECTURES[o["arch"]]
    describe = {k: o[k] for k in ("arch", "N", "M", "in_channels")}
    weights = {k: o[k] for k in ("alpha", "beta", "gamma", "adaptive", "clean_weight")}
    common = {
        "codec": "learned", "mode": request.mode, "options": {k: v for k, v in o.items() if k != "init"},
        "init_digests": {str(p): d["digest"] for p, d in inits.items()}, "data": data.fingerprint, "seed": seed,
        "task": request.task.name if request.task else None,
        "task_options": request.task.options() if request.task else None, "version": 1,
    }
    groups = [points] if request.mode == "joint" else [(p,) for p in points]
    summary: dict[str, Any] = {"out": str(out), "mode": request.mode, "trained": [], "skipped": []}
    records: dict[str, Any] = {}
    for group in groups:
        key = ct.training_key({**common, "points": list(group)})
        files = {p: out / f"lambda-{p:g}{lm.CHECKPOINT_SUFFIX}" for p in group}
        if _finished(files, key) and (request.mode != "joint" or task_out.is_file()):
            log(f"train-codec: {', '.join(str(f) for f in files.values())}: already trained with these settings")
            summary["skipped"] += [str(f) for f in files.values()]
            for p, f in files.items():
                records[f"{p:g}"] = {k: v for k, v in lm.load_checkpoint(f).items() if k not in ("state_dict",)}
            continue
        models = [ct.CodecModel(p, _build(o, inits.get(p), seed, p), ct.compressai_rate_bits, spec.downsampling)
                  for p in group]
        log(f"train-codec: learned {request.mode} {o['arch']} N={o['N']} M={o['M']} lambda "
            f"{', '.join(f'{p:g}' for p in group)}: {o['steps']} steps x {o['batch_size']} on {len(data.ids)} images")
        facts = ct.Trainer(request, o, models, data, key, adapter).run()
        metrics = ct.evaluate(models, val, adapter, device) if val is not None else {}
        for m in models:
            meta = {
                "training_key": key, "loss_weights": weights, "training": {
                    **{k: facts[k] for k in ("steps", "batch_size", "seconds", "images_per_s")},
                    "joint_rate_points": list(group) if request.mode == "joint" else None,
                    "hardware": hardware(device), "lr": o["lr"], "task_lr": o["task_lr"] if request.mode == "joint" else None},
                "training_data": {"dataset": type(request.dataset).__name__, "split": getattr(request.dataset, "split", None),
                                  "images": len(data.ids), "fingerprint": data.fingerprint},
                "init": {"digest": inits[m.point]["digest"], "mode": inits[m.point]["mode"]} if m.point in inits else None,
                "task": common["task"], "task_options": common["task_options"],
                "validation": metrics.get(m.point), "history": facts["history"][-5:], "config": request.config_source,
            }
            meta = json.loads(json.dumps(meta, default=str))  # plain types: the file is read with weights_only=True
            lm.save_checkpoint(files[m.point], m.model, **describe, lmbda=m.point, mode=request.mode, seed=seed, **meta)
            records[f"{m.point:g}"] = {**meta, **describe, "lambda": m.point, "mode": request.mode}
            log(f"train-codec: wrote {files[m.point]}" + (f"  validation {metrics[m.point]}" if m.point in metrics else ""))
        if request.mode == "joint":
            adapter.save(task_out, {"training_key": key, "rate_points": list(group), "loss_weights": weights,
                                    "steps": facts["steps"], "seconds": facts["seconds"], "seed": seed})
            log(f"train-codec: wrote the jointly trained task model {task_out}")
            summary["task_model"] = str(task_out)
        summary["trained"] += [str(f) for f in files.values()]
        ct.state_path_done(request.state_dir, key)
    ct.write_json(out / "training.json", {"mode": request.mode, "config": request.config_source,
                                          "rate_points": {k: _brief(v) for k, v in sorted(records.items())}})
    return summary


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("lambda", "mode", "arch", "N", "M", "in_channels", "digest", "loss_weights", "training", "training_data",
            "init", "task", "validation", "config")
    return {k: record[k] for k in keep if k in record}


def _finished(files: dict[float, Path], key: str) -> bool:
    for f in files.values():
        if not f.is_file():
            return False
        try:
            if lm.load_checkpoint(f).get("training_key") != key:
                return False
        except lm.CheckpointError:
            return False
    return True
