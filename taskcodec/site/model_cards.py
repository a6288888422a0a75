"""Model cards of a board's trained rows and task models: what each was trained on, how that data relates
to the evaluated set, and what the training cost, from the files training wrote (``training.json`` beside
a learned codec's weights) and the task model's own provenance.

A card never guesses: a fact the files do not hold is shown as unknown.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def overlap_statement(trained: dict[str, Any], evaluated: dict[str, Any]) -> str:
    """How the training data relates to the evaluated set, from their dataset names, splits and fingerprints."""
    if not trained.get("dataset"):
        return "unknown: the training data is not recorded"
    if trained.get("fingerprint") and trained.get("fingerprint") == evaluated.get("fingerprint"):
        return "TRAINED ON THE EVALUATED IMAGES (same dataset fingerprint)"
    same_dataset = str(trained["dataset"]).lower() == str(evaluated.get("name", "")).lower()
    if not same_dataset:
        return f"another dataset ({trained['dataset']}); overlap with {evaluated.get('name')} not measured"
    if trained.get("split") == evaluated.get("split"):
        return f"TRAINED ON THE EVALUATED SPLIT ({trained.get('split')})"
    return (f"another split of the same dataset ({trained.get('split')} vs the evaluated {evaluated.get('split')}): "
            "no evaluated image by the dataset's split; the people or sources may be shared")


def _codec_card(row: str, models: str, repo_root: Path, evaluated: dict[str, Any]) -> dict[str, Any]:
    path = repo_root / models / "training.json"
    card: dict[str, Any] = {"row": row, "kind": "codec", "weights": models}
    if not path.is_file():
        return {**card, "trained_on": None, "overlap": f"unknown: {models}/training.json is not in this checkout",
                "cost": None}
    record = json.loads(path.read_text(encoding="utf-8"))
    points = record.get("rate_points") or {}
    first = next(iter(points.values()), {}) if isinstance(points, dict) else {}
    data = first.get("training_data") or {}
    training = first.get("training") or {}
    hardware = training.get("hardware") or {}
    return {**card,
            "config": record.get("config"), "mode": record.get("mode"), "rate_points": len(points),
            "trained_on": data or None,
            "overlap": overlap_statement(data, evaluated),
            "cost": {"seconds": training.get("seconds"), "images_per_s": training.get("images_per_s"),
                     "steps": training.get("steps"), "batch_size": training.get("batch_size"),
                     "hardware": ", ".join(f"{k} {v}" for k, v in hardware.items()) or None}}


def _task_card(row: str, task: dict[str, Any], evaluated: dict[str, Any]) -> dict[str, Any]:
    if task.get("train_split") or task.get("train_fingerprint"):
        data = {"dataset": evaluated.get("name"), "split": task.get("train_split"),
                "fingerprint": task.get("train_fingerprint"), "images": task.get("train_images")}
        overlap = overlap_statement(data, evaluated)
        cost = {"seconds": task.get("train_time_s"), "steps": task.get("steps"), "device": task.get("device")}
    else:
        data, cost = None, None
        overlap = "pretrained outside taskcodec: see the weights' source for its training data"
    return {"row": row, "kind": "task model", "weights": task.get("weights_file") or (task.get("checkpoint") or {}).get("path"),
            "weights_sha256": task.get("weights_sha256"), "trained_on": data, "overlap": overlap, "cost": cost}


def board_model_cards(provenance: dict[str, Any], repo_root: Path) -> list[dict[str, Any]]:
    """One card per learned codec row (its ``models`` folder) and per task model (the board's, and any row's own)."""
    evaluated = provenance.get("dataset") or {}
    cards = [_task_card("(board task model)", provenance.get("task") or {}, evaluated)]
    for row, task in (provenance.get("row_tasks") or {}).items():
        cards.append(_task_card(row, task, evaluated))
    for entry in (provenance.get("config") or {}).get("codecs") or []:
        models = (entry.get("options") or {}).get("models")
        if isinstance(models, str):
            cards.append(_codec_card(entry.get("row", entry.get("name")), models, repo_root, evaluated))
    return cards
